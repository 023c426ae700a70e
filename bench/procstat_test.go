package main

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func TestParseProcStatCPU(t *testing.T) {
	// A command name with a space and a parenthesis, as a process may have.
	stat := []byte("4242 (my (orderd) x) S 1 4242 4242 0 -1 4194560 1303 0 0 0 250 37 0 0 20 0 9 0 123 1234567 2345 18446744073709551615\n")
	got, err := parseProcStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2870 * time.Millisecond; got != want { // (250 + 37) ticks of 10 ms
		t.Fatalf("cpu %v, want %v", got, want)
	}
	for _, bad := range []string{"", "4242 no parens", "4242 (x) S 1 2"} {
		if _, err := parseProcStatCPU([]byte(bad)); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestParseProcStatusMemory(t *testing.T) {
	status := []byte("Name:\torderd\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t9\n")
	rss, hwm, err := parseProcStatusMemory(status)
	if err != nil {
		t.Fatal(err)
	}
	if rss != 40<<20 || hwm != 50<<20 {
		t.Fatalf("rss %d hwm %d", rss, hwm)
	}
	if _, _, err := parseProcStatusMemory([]byte("Name:\tkthreadd\n")); err == nil {
		t.Fatal("a status without memory lines parsed")
	}
}

func TestReadProcOfThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	a, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if a.rssBytes <= 0 || a.hwmBytes < a.rssBytes {
		t.Fatalf("rss %d hwm %d", a.rssBytes, a.hwmBytes)
	}
	b := a
	b.cpu += 3 * time.Second
	b.at = a.at.Add(2 * time.Second)
	u := usageBetween(42, a, b)
	if u.CPUSeconds != 3 || u.CPUCores != 1.5 || u.PID != 42 {
		t.Fatalf("usage %+v", u)
	}
}
