package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
)

// The baseline is the ceiling of any Fiber server on this machine with this
// load generator: a bare Fiber v2 handler that answers every request with a
// canned order document, no parsing, no actors, no log. orderd's throughput
// as a fraction of the baseline's, measured in the same run, is the figure
// that survives a noisy machine better than either number alone.

// baselineCommand is the hidden first argument that makes the harness's own
// binary serve the baseline, so that it runs as a process of its own, as
// orderd does, and its CPU and memory are measured the same way.
const baselineCommand = "serve-baseline"

// baselineShutdownTimeout bounds the baseline's graceful stop.
const baselineShutdownTimeout = 5 * time.Second

// cannedOrder is about the size and shape of orderd's answer, so the
// generator parses the same amount of JSON from both servers.
var cannedOrder = []byte(`{"id":"baseline-order-0000000000001","state":"Paid","version":2,` +
	`"created_at":"2026-11-23T12:00:00.123456789Z","updated_at":"2026-11-23T12:00:00.223456789Z"}`)

// newBaselineApp returns the bare Fiber app: the server options that matter
// for speed are orderd's (http/server.go), the handler does nothing.
func newBaselineApp() *fiber.App {
	app := fiber.New(fiber.Config{
		Immutable:             true, // orderd pays for this copy; so does the baseline
		Prefork:               false,
		CaseSensitive:         true,
		BodyLimit:             16 << 10,
		ReadTimeout:           5 * time.Second,
		WriteTimeout:          5 * time.Second,
		IdleTimeout:           60 * time.Second,
		DisableStartupMessage: true,
	})
	app.Use(func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		if c.Method() == fiber.MethodPost && c.Path() == "/v1/orders" {
			c.Status(fiber.StatusCreated)
		}
		return c.Send(cannedOrder)
	})
	return app
}

// serveBaseline is the baseline child's main: it listens on --addr, logs the
// address the way orderd does, and serves until SIGTERM or SIGINT.
func serveBaseline(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(baselineCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Error("listen", "err", err)
		return exitSetup
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := newBaselineApp()
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	log.Info("listening", "addr", ln.Addr().String())
	select {
	case <-ctx.Done():
	case err := <-served:
		log.Error("serve", "err", err)
		return exitSetup
	}
	if err := app.ShutdownWithTimeout(baselineShutdownTimeout); err != nil {
		log.Error("shutdown", "err", err)
		return exitSetup
	}
	return exitOK
}

// startBaseline runs the baseline as a child: this very binary, re-executed
// with baselineCommand.
func startBaseline(ctx context.Context) (*childServer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the harness binary to run the baseline: %w", err)
	}
	return startChild(ctx, "fiber-baseline", exec.Command(self, baselineCommand, "--addr", "127.0.0.1:0"), "")
}
