package peerutil

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestValidTopic(t *testing.T) {
	for s, want := range map[string]bool{
		"a": true, "A-z_0.9:x": true, strings.Repeat("x", 128): true,
		"": false, strings.Repeat("x", 129): false, "a b": false, "a/b": false,
		"a,b": false, "é": false, "a\x00": false,
	} {
		if got := ValidTopic(s); got != want {
			t.Errorf("ValidTopic(%q) = %v", s, got)
		}
	}
}

func TestParseTopics(t *testing.T) {
	got, err := ParseTopics("a,b,a,c")
	if err != nil || strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("got %v %v", got, err)
	}
	for _, bad := range []string{"", ",", "a,", "a,,b", "a b"} {
		if _, err := ParseTopics(bad); err == nil {
			t.Errorf("ParseTopics(%q) accepted", bad)
		}
	}
}

func TestAppendMessage(t *testing.T) {
	for _, seq := range []uint64{0, 1, 9, 10, 99, 100, 1<<64 - 1} {
		data := []byte(`{"x": [1, 2]}`)
		got := AppendMessage([]byte("pre"), "t:1", seq, data)
		var d struct {
			Topic string          `json:"topic"`
			Seq   uint64          `json:"seq"`
			Data  json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(got[3:], &d); err != nil || d.Topic != "t:1" || d.Seq != seq || !bytes.Equal(d.Data, data) {
			t.Fatalf("seq %d: %q -> %+v %v", seq, got, d, err)
		}
		if n := MessageLen("t:1", seq, data); n != len(got)-3 {
			t.Fatalf("seq %d: MessageLen %d, len %d", seq, n, len(got)-3)
		}
	}
}

type fakePub struct{ topic, data string }

func (f *fakePub) Publish(topic string, data []byte) (uint64, int, error) {
	f.topic, f.data = topic, string(data)
	return 17, 3, nil
}

func TestAPIHandler(t *testing.T) {
	p := &fakePub{}
	h := APIHandler(p, 1024)
	do := func(method, path, body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
		return rec
	}
	rec := do("POST", PublishPath, `{"topic":"a","data": {"k" : [1,2]} }`)
	if rec.Code != 200 || rec.Body.String() != "{\"seq\":17,\"recipients\":3}\n" || p.data != `{"k" : [1,2]}` {
		t.Fatalf("ok publish: %d %q data %q", rec.Code, rec.Body, p.data)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", PublishPath, "", http.StatusMethodNotAllowed},
		{"POST", "/api/other", "{}", http.StatusNotFound},
		{"POST", PublishPath, `{"topic":"a","data":"` + strings.Repeat("x", 2000) + `"}`, http.StatusRequestEntityTooLarge},
		{"POST", PublishPath, `{"topic":"a","data":tru}`, http.StatusBadRequest},
	} {
		rec := do(tc.method, tc.path, tc.body)
		var e struct{ Error string }
		if rec.Code != tc.status || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
			t.Errorf("%s %s: %d %q, want %d with JSON error", tc.method, tc.path, rec.Code, rec.Body, tc.status)
		}
	}
}
