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
