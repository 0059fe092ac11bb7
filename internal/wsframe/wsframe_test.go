package wsframe

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/gobwas/ws"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestAppendMatchesGobwas checks every length class, masked or not, FIN or
// not, against gobwas/ws's own header writer.
func TestAppendMatchesGobwas(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	for _, n := range []int64{0, 1, 125, 126, 127, 0xFFFF, 0x10000, 1 << 40} {
		for _, masked := range []bool{false, true} {
			for _, fin := range []bool{false, true} {
				t.Run(fmt.Sprintf("n=%d/masked=%v/fin=%v", n, masked, fin), func(t *testing.T) {
					h := ws.Header{Fin: fin, OpCode: ws.OpBinary, Length: n, Masked: masked, Mask: key}
					var want bytes.Buffer
					if err := ws.WriteHeader(&want, h); err != nil {
						t.Fatal(err)
					}
					b0 := byte(ws.OpBinary)
					if fin {
						b0 |= 0x80
					}
					var mask *[4]byte
					if masked {
						mask = &key
					}
					if got := Append([]byte("x"), b0, uint64(n), mask); !bytes.Equal(got[1:], want.Bytes()) || got[0] != 'x' {
						t.Fatalf("Append = % x, want x then % x", got, want.Bytes())
					}
					if fin && !masked {
						if got := AppendHeader(nil, ws.OpBinary, int(n)); !bytes.Equal(got, want.Bytes()) {
							t.Fatalf("AppendHeader = % x, want % x", got, want.Bytes())
						}
					}
				})
			}
		}
	}
}

func TestAppendHeaderAllocatesNothing(t *testing.T) {
	buf := make([]byte, 0, 16)
	if n := testing.AllocsPerRun(100, func() { buf = AppendHeader(buf[:0], ws.OpText, 300) }); n != 0 {
		t.Fatalf("%v allocations per AppendHeader into a buffer with room", n)
	}
}

// TestNewText: the server text frame has a minimal, final, unmasked text
// header and room for its payload.
func TestNewText(t *testing.T) {
	for _, n := range []int{0, 125, 126, 0xFFFF, 0x10000, 1 << 20} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			f := NewText(n)
			defer f.Release()
			if room := cap(f.B) - len(f.B); room < n {
				t.Fatalf("room for %d payload bytes, want %d", room, n)
			}
			r := bytes.NewReader(f.B)
			h, err := ws.ReadHeader(r)
			if err != nil {
				t.Fatal(err)
			}
			if want := (ws.Header{Fin: true, OpCode: ws.OpText, Length: int64(n)}); h != want {
				t.Fatalf("header %+v, want %+v", h, want)
			}
			if hn := ws.HeaderSize(h); hn != len(f.B) || r.Len() != 0 {
				t.Fatalf("header is %d bytes, want minimal %d", len(f.B), hn)
			}
		})
	}
}
