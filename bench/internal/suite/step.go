package suite

// Running one scenario step: a bench subprocess, its report, its log.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/wspush/wspush/bench/internal/report"
	"github.com/wspush/wspush/bench/internal/serverstat"
)

// StepResult is what one bench run gave.
type StepResult struct {
	// Report is its --json report (nil: none).
	Report *report.Report
	// Exit is its exit status (-1: unknown).
	Exit int
	// CPU is its user+system time with its reaped children's, seconds.
	CPU float64
}

// StepRunner runs bench with args (writing its report to jsonPath and its
// output to logPath, bounded by timeout); the error says why there is no
// report.
type StepRunner func(ctx context.Context, exe string, args []string, jsonPath, logPath string, timeout time.Duration) (StepResult, error)

// runBench is the StepRunner of real bench subprocesses.
func runBench(ctx context.Context, exe string, args []string, jsonPath, logPath string, timeout time.Duration) (StepResult, error) {
	res := StepResult{Exit: -1}
	_ = os.Remove(jsonPath)
	logf, err := os.Create(logPath)
	if err != nil {
		return res, err
	}
	defer logf.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	runErr := cmd.Run()
	if ps := cmd.ProcessState; ps != nil {
		// wait4's rusage covers the child and the children it reaped
		// (bench's --procs client processes).
		res.Exit, res.CPU = ps.ExitCode(), (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	res.Report, err = ReadReport(jsonPath)
	if err != nil {
		return res, fmt.Errorf("no report (%v; %v): %s", runErr, err, lastLine(logPath))
	}
	return res, nil
}

// ReadReport reads a report written by bench --json.
func ReadReport(path string) (*report.Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r report.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// lastLine returns the last non-empty line of a file (for error messages).
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// fetchProfile saves a CPU profile of seconds from a --pprof server.
func fetchProfile(ctx context.Context, api string, seconds int, path string) error {
	var buf bytes.Buffer
	endpoint := fmt.Sprintf("profile?seconds=%d", seconds)
	if err := serverstat.Pprof(ctx, api, endpoint, time.Duration(seconds+30)*time.Second, &buf); err != nil {
		return err
	}
	return writeFile(path, func(w io.Writer) error {
		_, err := buf.WriteTo(w)
		return err
	})
}
