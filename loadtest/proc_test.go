package loadtest

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseProcFiles(t *testing.T) {
	status := "Name:\ttandem\nVmPeak:\t  900 kB\nVmRSS:\t   12345 kB\nThreads:\t5\n"
	if got, err := parseVmRSS([]byte(status)); err != nil || got != 12345 {
		t.Errorf("parseVmRSS = %d, %v; want 12345", got, err)
	}
	if _, err := parseVmRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("parseVmRSS without VmRSS: no error")
	}
	// The command name may hold spaces and parentheses.
	stat := "4242 (tan dem) (x)) S 1 4242 4242 0 -1 4194304 97 0 0 0 250 130 0 0 20 0 7 0 217565 3133440 356"
	if got, err := parseStatCPU([]byte(stat)); err != nil || got != 3800*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v; want 3.8s (380 ticks)", got, err)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("parseStatCPU of a short line: no error")
	}
}

func TestReadProcOfThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.rssKiB <= 0 {
		t.Errorf("RSS %d KiB", s.rssKiB)
	}
	if _, err := machineBusy(); err != nil {
		t.Errorf("machineBusy: %v", err)
	}
	if _, err := readProc(1 << 30); err == nil || !strings.Contains(err.Error(), "process") {
		t.Errorf("readProc of no process: %v", err)
	}
}
