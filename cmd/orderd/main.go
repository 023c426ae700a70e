// Command orderd is the order state machine server: every order an actor,
// every accepted transition in Kafka before the client hears yes.
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
	cfg, err := ParseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flagHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "orderd:", err)
		os.Exit(2)
	}
	level, _ := parseLevel(cfg.LogLevel) // validated by ParseConfig
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := NewMain(cfg, log).Run(ctx); err != nil {
		log.Error("orderd stopped", "err", err)
		os.Exit(1)
	}
}
