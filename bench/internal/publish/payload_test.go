package publish

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"testing"

	"github.com/wspush/wspush/bench/internal/check"
)

// TestAppendJSON: every size gives valid JSON of exactly that size, with
// "t" where check.SentTime finds it, the same bytes for the same message
// and different ones for the next.
func TestAppendJSON(t *testing.T) {
	const sent = int64(1764000000123456789)
	for size := 100; size <= 5000; size += 7 {
		b := AppendJSON([]byte("prefix"), sent, size, size)
		d := b[len("prefix"):]
		if len(d) != size || !json.Valid(d) || check.SentTime(d) != sent {
			t.Fatalf("size %d: %d bytes, valid %v, t %d: %s", size, len(d), json.Valid(d), check.SentTime(d), d)
		}
		var v struct {
			Items []struct {
				Sym string  `json:"sym"`
				Bid float64 `json:"bid"`
				Ask float64 `json:"ask"`
			} `json:"items"`
		}
		if err := json.Unmarshal(d, &v); err != nil {
			t.Fatal(err)
		}
		if size >= 1024 && len(v.Items) < 5 {
			t.Fatalf("size %d: %d items", size, len(v.Items))
		}
		for _, it := range v.Items {
			if it.Sym == "" || it.Bid <= 0 || it.Ask <= it.Bid {
				t.Fatalf("size %d: item %+v", size, it)
			}
		}
	}
	a, b := AppendJSON(nil, sent, 1024, 7), AppendJSON(nil, sent, 1024, 7)
	if !bytes.Equal(a, b) {
		t.Fatal("message 7 differs between two calls")
	}
	if bytes.Equal(a, AppendJSON(nil, sent, 1024, 8)) {
		t.Fatal("messages 7 and 8 are the same")
	}
	if small := AppendJSON(nil, sent, 10, 1); !json.Valid(small) || check.SentTime(small) != sent {
		t.Fatalf("a size below the fixed fields: %s", small)
	}
}

// TestAppendJSONCompresses: the objects compress like market data (a few
// times), not like padding (a hundred times).
func TestAppendJSONCompresses(t *testing.T) {
	for _, size := range []int{1024, 4096} {
		d := AppendJSON(nil, 1764000000123456789, size, 3)
		var z bytes.Buffer
		fw, _ := flate.NewWriter(&z, flate.DefaultCompression)
		fw.Write(d)
		fw.Flush()
		ratio := float64(size) / float64(z.Len())
		t.Logf("%d B -> %d B deflated (%.2f×)", size, z.Len(), ratio)
		if ratio < 1.5 || ratio > 6 {
			t.Errorf("%d B: compresses %.2f×, want a market-data-like 1.5-6×", size, ratio)
		}
	}
}

func TestParsePayload(t *testing.T) {
	for in, want := range map[string]Payload{"": PayloadPad, "pad": PayloadPad, "json": PayloadJSON} {
		if got, err := ParsePayload(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	if _, err := ParsePayload("json:1024"); err == nil {
		t.Error("json:1024 accepted")
	}
}

// TestPublishJSON publishes realistic JSON through the fake API, which
// checks it carries "t".
func TestPublishJSON(t *testing.T) {
	api, stop := fakeAPI(t, nil)
	defer stop()
	c := NewClient(api, 2048, 1)
	c.Payload = PayloadJSON
	defer c.Close()
	r, err := c.Run(context.Background(), Plan{Topics: []string{"q"}, Count: 3}, nil)
	if err != nil || r.Sent != 3 {
		t.Fatalf("%+v %v", r, err)
	}
}
