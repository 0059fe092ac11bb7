package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/internal/testutil"
)

// binary is wspushd, built once by TestMain.
var binary string

// screenshot is where TestDemo saves a PNG of the demo page (empty: none).
var screenshot = flag.String("screenshot", "", "save a PNG of the demo page with a few deliveries to this `file` (TestDemo)")

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "wspush-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "wspushd")
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", binary, "./cmd/wspushd")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build wspushd: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// goleak exits through Cleanup, after its check, so the binary goes too.
	goleak.VerifyTestMain(m, append(testutil.LeakOptions(), goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))...)
}
