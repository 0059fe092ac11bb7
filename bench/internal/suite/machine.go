package suite

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Machine describes where a suite ran.
type Machine struct {
	// CPUs is the number of usable CPUs (nproc).
	CPUs int `json:"cpus"`
	// CPUModel is /proc/cpuinfo's model name.
	CPUModel string `json:"cpu_model,omitempty"`
	// MemoryBytes is MemTotal.
	MemoryBytes int64 `json:"memory_bytes"`
	// Kernel is the kernel release.
	Kernel string `json:"kernel"`
	// GoVersion is the Go that built bench (and, with make, the servers).
	GoVersion string `json:"go_version"`
	// FDSoft and FDHard are the open-file limits.
	FDSoft uint64 `json:"fd_limit_soft"`
	// FDHard is the hard open-file limit.
	FDHard uint64 `json:"fd_limit_hard"`
}

// ReadMachine reads this machine's description.
func ReadMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.MemoryBytes = procValue("/proc/meminfo", "MemTotal") * 1024
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil {
		m.FDSoft, m.FDHard = rl.Cur, rl.Max
	}
	return m
}

// procValue returns the first number after "key:" in a /proc file (0 if absent).
func procValue(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		if f := strings.Fields(v); len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			return n
		}
	}
	return 0
}
