package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicksPerSecond is Linux's USER_HZ, the unit of the CPU times in
// /proc/PID/stat. It is 100 on every architecture Go supports on Linux, and
// reading it properly (sysconf) would need cgo.
const clockTicksPerSecond = 100

// procSample is one reading of a process's resource use.
type procSample struct {
	at       time.Time
	cpu      time.Duration // user + system time since the process started
	rssBytes int64         // resident set size now (VmRSS)
	hwmBytes int64         // peak resident set size (VmHWM)
}

// readProc reads pid's CPU time and memory from /proc.
func readProc(pid int) (procSample, error) {
	now := time.Now()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}, err
	}
	cpu, err := parseProcStatCPU(stat)
	if err != nil {
		return procSample{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, err
	}
	rss, hwm, err := parseProcStatusMemory(status)
	if err != nil {
		return procSample{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return procSample{at: now, cpu: cpu, rssBytes: rss, hwmBytes: hwm}, nil
}

// parseProcStatCPU returns utime + stime from the contents of /proc/PID/stat.
// The second field, the command name, is in parentheses and may itself hold
// spaces and parentheses, so fields are counted from the last ")".
func parseProcStatCPU(stat []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("no command name in %q", stat)
	}
	// After ")": state is field 3, so utime (14) and stime (15) are the
	// 12th and 13th fields here.
	fields := strings.Fields(string(stat[end+1:]))
	const utimeIdx, stimeIdx = 14 - 3, 15 - 3
	if len(fields) <= stimeIdx {
		return 0, fmt.Errorf("only %d fields after the command name", len(fields))
	}
	var ticks int64
	for _, i := range []int{utimeIdx, stimeIdx} {
		n, err := strconv.ParseInt(fields[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("field %d: %w", i+3, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicksPerSecond, nil
}

// parseProcStatusMemory returns VmRSS and VmHWM, in bytes, from the contents
// of /proc/PID/status (where they are given in kB, meaning KiB).
func parseProcStatusMemory(status []byte) (rss, hwm int64, err error) {
	rss, hwm = -1, -1
	for line := range strings.SplitSeq(string(status), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("%s: unexpected value %q", name, value)
		}
		kib, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", name, err)
		}
		if name == "VmRSS" {
			rss = kib << 10
		} else {
			hwm = kib << 10
		}
	}
	if rss < 0 || hwm < 0 {
		return 0, 0, fmt.Errorf("no VmRSS or VmHWM (a kernel thread, or a process that has exited?)")
	}
	return rss, hwm, nil
}

// procUsage is a process's resource use over the measured window.
type procUsage struct {
	PID          int     `json:"pid"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	CPUCores     float64 `json:"cpu_cores"` // CPU seconds per wall second: 2.0 is both cores
	RSSBytes     int64   `json:"rss_bytes"`
	RSSPeakBytes int64   `json:"rss_peak_bytes"`
	// CPUMicrosPerRequest is CPU time per request answered in the window:
	// what one request costs this process, whatever else the machine ran.
	CPUMicrosPerRequest float64 `json:"cpu_us_per_request,omitempty"`
}

// perRequest sets CPUMicrosPerRequest from requestsPerSec, the rate the
// process served (the server) or sent (the generator) in the same window.
func (u *procUsage) perRequest(requestsPerSec float64) {
	if u != nil && requestsPerSec > 0 {
		u.CPUMicrosPerRequest = u.CPUCores * 1e6 / requestsPerSec
	}
}

// usageBetween turns two samples into the use over the time between them.
func usageBetween(pid int, a, b procSample) procUsage {
	u := procUsage{PID: pid, CPUSeconds: (b.cpu - a.cpu).Seconds(), RSSBytes: b.rssBytes, RSSPeakBytes: b.hwmBytes}
	if wall := b.at.Sub(a.at); wall > 0 {
		u.CPUCores = u.CPUSeconds / wall.Seconds()
	}
	return u
}

// loadAverage returns the 1-minute load average from /proc/loadavg, or -1
// when it cannot be read. The machine is shared, so the report says how busy
// it was: a run at load 4 on two cores is not comparable with one at 0.5.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
