package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreTheOriginalRequirements(t *testing.T) {
	c, err := parseConfig(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.minTPS != 1000 || c.maxP99 != 100*time.Millisecond {
		t.Fatalf("check thresholds %v transitions/s, p99 %v", c.minTPS, c.maxP99)
	}
	if c.load.openLoop() || c.load.clients != defaultClients || c.load.duration != defaultDuration || !c.verify {
		t.Fatalf("defaults %+v", c)
	}
	if !strings.HasPrefix(c.load.idPrefix, "bench-") {
		t.Fatalf("id prefix %q", c.load.idPrefix)
	}
}

func TestBadFlagsAreRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--duration", "0"}, "every run must end by itself"},
		{[]string{"--clients", "0"}, "--clients"},
		{[]string{"--clients", "100000"}, "--clients"},
		{[]string{"--rate", "-1"}, "--rate"},
		{[]string{"--max-outstanding", "0"}, "--max-outstanding"},
		{[]string{"--cancel", "1.5"}, "--cancel"},
		{[]string{"--read", "-0.1"}, "--read"},
		{[]string{"--warmup", "10s", "--duration", "5s"}, "nothing of --duration"},
		{[]string{"--url", "http://10.1.2.3:8080"}, "not a loopback"},
		{[]string{"--url", "http://example.com"}, "not a loopback"},
		{[]string{"--baseline", "--baseline-only"}, "exclude each other"},
		{[]string{"--start-server", "--server-pid", "12"}, "--server-pid"},
		{[]string{"--restart"}, "--restart needs --start-server"},
		{[]string{"--start-server", "--baseline-only", "--restart"}, "--restart needs --start-server"},
		{[]string{"--start-server", "--restart", "--restart-signal", "hup"}, "--restart-signal \"hup\""},
		{[]string{"--start-server", "--restart-signal", "kill"}, "--restart-signal kill needs --restart"},
		{[]string{"--verify-workers", "-1"}, "--verify-workers"},
		{[]string{"--verify-workers", "33"}, "--verify-workers"},
		{[]string{"stray"}, "unexpected arguments"},
	} {
		var stderr bytes.Buffer
		if _, err := parseConfig(c.args, &stderr); err == nil || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: err %v, stderr %q, want it to mention %q", c.args, err, stderr.String(), c.want)
		}
	}
}

func TestRestartSignal(t *testing.T) {
	for args, kill := range map[string]bool{
		"--start-server --restart":                       false,
		"--start-server --restart --restart-signal term": false,
		"--start-server --restart --restart-signal kill": true,
	} {
		c, err := parseConfig(strings.Fields(args), &bytes.Buffer{})
		if err != nil || c.restartKill != kill {
			t.Errorf("%s: err %v, kill %v, want %v", args, err, c.restartKill, kill)
		}
	}
}

func TestVerifyWorkers(t *testing.T) {
	for args, want := range map[string]int{
		"--clients 64":                    64, // verifyFinal caps it at verifyWorkersMax
		"--clients 64 --verify-workers 4": 4,
		"--clients 2 --verify-workers 8":  8,
	} {
		c, err := parseConfig(strings.Fields(args), &bytes.Buffer{})
		if err != nil || c.verifyReaders(c.load.clients) != want {
			t.Errorf("%s: err %v, %d readers, want %d", args, err, c.verifyReaders(c.load.clients), want)
		}
	}
}

func TestLoopbackAndRemoteURLs(t *testing.T) {
	for _, args := range [][]string{
		{"--url", "http://127.0.0.1:9"},
		{"--url", "http://localhost:9"},
		{"--url", "http://[::1]:9"},
		{"--url", "http://10.1.2.3:8080", "--allow-remote"},
		{"--url", "http://10.1.2.3:8080", "--start-server"}, // the URL is not used
	} {
		if _, err := parseConfig(args, &bytes.Buffer{}); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var stderr bytes.Buffer
	if _, err := parseConfig([]string{"-h"}, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err %v", err)
	}
	for _, want := range []string{"Usage: go run ./bench", "-start-server", "-rate", "-check", "-baseline", "-json", "-min-tps", "-max-p99", "-checkout", "-skus", "-stock", "-decline-rate"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("-h does not mention %q", want)
		}
	}
	if code := run(t.Context(), []string{"-h"}, &bytes.Buffer{}, &bytes.Buffer{}); code != exitOK {
		t.Fatalf("-h exits %d", code)
	}
}

func TestUnreachableServerIsASetupError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	// Port 9 (discard) on loopback: nothing listens there.
	code := run(t.Context(), []string{"--url", "http://127.0.0.1:9", "--orders", "1", "--timeout", "2s"}, &stdout, &stderr)
	if code != exitSetup || !strings.Contains(stderr.String(), "readyz") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestCheckoutFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--skus", "10"}, "--skus needs --checkout"},
		{[]string{"--stock", "10"}, "--stock needs --checkout"},
		{[]string{"--decline-rate", "0.1"}, "--decline-rate needs --checkout"},
		{[]string{"--checkout", "--skus", "0"}, "--skus 0"},
		{[]string{"--checkout", "--skus", "10001"}, "--skus 10001"},
		{[]string{"--checkout", "--stock", "-1"}, "--stock -1"},
		{[]string{"--checkout", "--stock", "1000000001"}, "--stock 1000000001"},
		{[]string{"--checkout", "--decline-rate", "1.5"}, "--decline-rate 1.5"},
		{[]string{"--checkout", "--create-only"}, "--create-only shapes the order lifecycle load"},
		{[]string{"--checkout", "--cancel", "0.2"}, "--cancel shapes the order lifecycle load"},
		{[]string{"--checkout", "--read", "0"}, "--read shapes the order lifecycle load"},
		{[]string{"--checkout", "--baseline"}, "answers no checkouts"},
		{[]string{"--checkout", "--baseline-only"}, "answers no checkouts"},
		{[]string{"--checkout", "--start-server", "--restart"}, "--restart verifies order lifecycles"},
		{[]string{"--checkout", "--rate", "100"}, "closed loop only"},
		{[]string{"--checkout", "--check"}, "--check: --check's thresholds are for transitions/s"},
		{[]string{"--checkout", "--max-p99", "1s"}, "--max-p99: --check's thresholds"},
	} {
		var stderr bytes.Buffer
		if _, err := parseConfig(c.args, &stderr); err == nil || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: err %v, stderr %q, want it to mention %q", c.args, err, stderr.String(), c.want)
		}
	}
	for _, args := range [][]string{
		{"--checkout"},
		{"--checkout", "--skus", "1", "--stock", "0", "--decline-rate", "1", "--clients", "8", "--orders", "100", "--duration", "0"},
		{"--checkout", "--start-server", "--warmup", "1s", "--verify=false", "--verify-workers", "4"},
	} {
		c, err := parseConfig(args, &bytes.Buffer{})
		if err != nil || !c.checkout.enabled {
			t.Errorf("%v: err %v, checkout %+v", args, err, c.checkout)
		}
	}
}
