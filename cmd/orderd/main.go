// Command orderd is the order state machine server: every order an actor,
// every accepted transition in Kafka before the client hears yes.
//
//	orderd [flags]          the server (on its embedded broker unless --kafka-brokers)
//	orderd broker [flags]   the embedded broker alone, as its own process
//	orderd healthcheck      exit 0 only if the server's /readyz answers 200
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run is main with an exit code: 0 done, 1 failed, 2 misconfigured.
func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) > 0 && args[0] == "healthcheck" {
		return runHealthcheck(ctx, args[1:], os.Getenv, os.Stderr)
	}
	if len(args) > 0 && args[0] == "broker" {
		cfg, err := parseBrokerConfig(args[1:], os.Getenv, os.Stderr)
		if code, done := configured(err); done {
			return code
		}
		return finish(runBroker(ctx, cfg, newLogger("info")))
	}
	cfg, err := ParseConfig(args, os.Getenv, os.Stderr)
	if code, done := configured(err); done {
		return code
	}
	return finish(NewMain(cfg, newLogger(cfg.LogLevel)).Run(ctx))
}

// configured turns a configuration error into an exit code.
func configured(err error) (code int, done bool) {
	switch {
	case errors.Is(err, flagHelp):
		return 0, true
	case err != nil:
		fmt.Fprintln(os.Stderr, "orderd:", err)
		return 2, true
	}
	return 0, false
}

func finish(err error) int {
	if err != nil {
		slog.Error("orderd stopped", "err", err)
		return 1
	}
	return 0
}

// newLogger writes structured key=value logs to stderr and makes them the
// default, so libraries that log through slog land in the same stream.
func newLogger(level string) *slog.Logger {
	l, _ := parseLevel(level) // validated with the rest of the configuration
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
	slog.SetDefault(log)
	return log
}
