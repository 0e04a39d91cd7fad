package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go runs on (the kernel fixes it for
// user space whatever its internal HZ).
const clockTicks = 100

// procSample is a look at the server process.
type procSample struct {
	at     time.Time
	rssKiB int64
	cpu    time.Duration // user + system
}

// readProc reads the resident set size (/proc/PID/status VmRSS) and the CPU
// time (/proc/PID/stat utime + stime) of process pid.
func readProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("server process %d: %w", pid, err)
	}
	if s.rssKiB, err = parseVmRSS(status); err != nil {
		return s, fmt.Errorf("server process %d: %w", pid, err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("server process %d: %w", pid, err)
	}
	if s.cpu, err = parseStatCPU(stat); err != nil {
		return s, fmt.Errorf("server process %d: %w", pid, err)
	}
	return s, nil
}

// parseVmRSS returns the VmRSS line of /proc/PID/status in KiB.
func parseVmRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) != 2 || string(fields[1]) != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", bytes.TrimSpace(line))
		}
		return strconv.ParseInt(string(fields[0]), 10, 64)
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// parseStatCPU returns utime + stime of /proc/PID/stat. The fields are
// counted after the command name, which is in parentheses and may itself
// hold spaces and parentheses.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	// After ") ": field 3 (state) onwards; utime is field 14, stime 15.
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed /proc/PID/stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// machineBusy returns the CPU time all processors of the machine have spent
// busy (not idle or waiting for I/O), from the first line of /proc/stat.
func machineBusy() (time.Duration, error) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	fields := bytes.Fields(line)
	if len(fields) < 8 || string(fields[0]) != "cpu" {
		return 0, errors.New("malformed /proc/stat")
	}
	var busy int64
	// user nice system idle iowait irq softirq steal …: all but idle (4)
	// and iowait (5); guest time is already counted in user.
	for i, f := range fields[1:min(len(fields), 9)] {
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed /proc/stat: %w", err)
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}
