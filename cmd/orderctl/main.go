// Command orderctl is the command-line client of orderd: it creates, moves and
// reads orders over the HTTP API, prints the lifecycle diagram, and tails the
// audit topic in Kafka. Its tail command is the reference consumer of the
// audit log (see tail.go): a notification or analytics service can copy it.
//
// Run `orderctl -h` for the commands, flags and exit codes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// Exit codes. Scripts branch on them, so they are part of the interface and
// listed in the usage text; never renumber one.
const (
	exitOK = 0
	// exitRefused: the server answered the request with a refusal (4xx
	// other than 404: invalid transition, version mismatch, order exists,
	// bad request, unauthorized, reused idempotency key), or the command
	// failed in another way that retrying will not fix.
	exitRefused = 1
	// exitUsage: the command line is wrong; nothing was sent.
	exitUsage = 2
	// exitUnavailable: the server or the broker cannot be reached or
	// answered 5xx; for creates and transitions, nothing was applied.
	// Retrying later may work.
	exitUnavailable = 3
	// exitNotFound: the order, SKU or checkout (or, for tail, the topic)
	// does not exist.
	exitNotFound = 4
	// exitOutcomeUnknown: a create or transition may or may not have been
	// applied (503 outcome-unknown, a timeout or a connection lost after the
	// request was sent). Retry with the same --idempotency-key to learn
	// which; orderctl prints the key it used.
	exitOutcomeUnknown = 5
)

// Defaults of the global flags (DESIGN §7).
const (
	urlDefault     = "http://127.0.0.1:8080"
	timeoutDefault = 10 * time.Second
	// timeoutMax keeps a typo (--timeout 5h) from hanging a script.
	timeoutMax = 10 * time.Minute
)

// Environment variables orderctl reads. The token is never printed.
const (
	envURL   = "ORDERD_URL"
	envToken = "ORDERD_TOKEN"
)

// usageText is `orderctl -h`.
const usageText = `orderctl is the command-line client of orderd.

Usage:
  orderctl [global flags] <command> [arguments] [flags]

Commands:
  create [--id ID] [--customer C] [--currency CUR --item SKU:QTY:PRICE...] [--meta K=V...] [--idempotency-key K]
        create an order (the server chooses a sortable ID without --id);
        --item and --meta repeat, prices in minor units (cents)
  transition ID STATE [--reason R] [--meta K=V...] [--if-match VERSION] [--idempotency-key K]
        move an order to STATE (Created, Paid, Shipped, Delivered, Cancelled,
        Returned; case-insensitive). --if-match makes it conditional on the
        version you read (a number, or * for any).
  get ID
        the order's current state and version
  inventory get SKU
        a SKU's stock: on hand, reserved, available, version
  inventory set SKU N [--if-match VERSION] [--idempotency-key K]
        set the units on hand (refused below what is reserved)
  history ID
        every accepted transition of the order, oldest first
  list [--state S] [--customer C] [--limit N] [--all] [--cursor C]
        orders in ID order, a page at a time (100 by default, at most 1000);
        --all follows every page, --cursor resumes where a page ended
  machine [--format text|json|mermaid|dot]
        the lifecycle: a table, the JSON, or a Mermaid or Graphviz diagram
  checkout --customer C --currency CUR --item SKU:QTY:PRICE... --token T [--id ID] [--idempotency-key K]
        buy: reserve the stock, create the order, authorise the payment, pay
        (a saga; a failed step is undone). Exit 1 when it was compensated
        (declined, or out of stock). One still running at the server's
        deadline is read until it ends, within --timeout: exit 5 if it
        has not, with its ID for checkout get.
  checkout get ID
        a checkout and its steps (exit 1 when it was compensated)
  tail --brokers HOST:PORT[,...] [--topic T] [--group NAME | --from-beginning]
       [--order ID] [--until-end] [--no-progress] [--tls ...] [--sasl-...]
        print the audit topic's transitions as they happen (Kafka consumer).
        Without --group or --from-beginning it starts at the end: new
        transitions only. See 'orderctl tail -h'.
  help
        this text

Global flags (also accepted after the command):
  --url URL         orderd's base URL (env ORDERD_URL; default http://127.0.0.1:8080)
  --timeout DUR     deadline of each request to orderd or the broker (default 10s)
  --json            machine-readable output: the server's JSON document, or one
                    JSON object per line for tail. Errors still go to stderr
                    as text; the problem document goes to stdout as well.

Environment:
  ORDERD_URL        as --url
  ORDERD_TOKEN      sent as 'Authorization: Bearer <token>' when set; never printed
  ORDERD_KAFKA_BROKERS, ORDERD_TOPIC
                    defaults of tail's --brokers and --topic, as for orderd
  ORDERD_KAFKA_TLS, ORDERD_KAFKA_TLS_*, ORDERD_KAFKA_SASL_*
                    defaults of tail's --tls, --tls-* and --sasl-* flags,
                    as for orderd
  ORDERD_KAFKA_SASL_PASSWORD
                    tail's SASL password (or --sasl-password-file; no flag
                    takes it); never printed

Writes without --idempotency-key get a fresh random key, so that a write
whose outcome is unknown can be retried safely: orderctl prints the key.

Exit codes:
  0  done
  1  refused by the server (4xx other than 404), or failed otherwise
  2  usage error: nothing was sent
  3  orderd or the broker unreachable, or a 5xx: nothing was applied; retry later
  4  not found (the order, SKU or checkout, or tail's topic)
  5  outcome unknown: the write may or may not have been applied; retry with
     the same --idempotency-key (printed) to learn which
`

// globals are the flags every command accepts.
type globals struct {
	url     string
	timeout time.Duration
	json    bool
}

// app is one invocation: where output goes and what the environment says.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	g              globals
}

// run is main with its effects passed in, so that tests run orderctl in
// process. It ends on SIGINT or SIGTERM (tail's only way to stop when it
// follows the topic).
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args, stdout, stderr, getenv)
}

// runContext is run with the context that ends it.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	a.g = globals{url: urlDefault, timeout: timeoutDefault}
	if u := getenv(envURL); u != "" {
		a.g.url = u
	}
	fs := a.flagSet("orderctl")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usageText)
			return exitOK
		}
		return a.usageError("%v", err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return a.usageError("no command given")
	}
	name, cmdArgs := rest[0], rest[1:]
	if name == "help" {
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	cmd, ok := commands[name]
	if !ok {
		return a.usageError("unknown command %q", name)
	}
	return cmd(ctx, a, cmdArgs)
}

// commands are the subcommands. Each parses its own arguments.
var commands = map[string]func(ctx context.Context, a *app, args []string) int{
	"create":     cmdCreate,
	"transition": cmdTransition,
	"get":        cmdGet,
	"history":    cmdHistory,
	"list":       cmdList,
	"machine":    cmdMachine,
	"inventory":  cmdInventory,
	"tail":       cmdTail,
	"checkout":   cmdCheckout,
}

// flagSet returns a flag set with the global flags, their defaults being
// what is already set (so that `orderctl --json get X` and
// `orderctl get X --json` mean the same). It prints nothing itself: parse
// errors and help are reported by the caller.
func (a *app) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.g.url, "url", a.g.url, "orderd's base URL (env "+envURL+")")
	fs.DurationVar(&a.g.timeout, "timeout", a.g.timeout, "deadline of each request")
	fs.BoolVar(&a.g.json, "json", a.g.json, "machine-readable output")
	return fs
}

// parseCommand parses a subcommand's flags and positional arguments, which
// may be interleaved (`transition o-1 Paid --if-match 1`); everything after
// `--` is positional. It checks the global flags too. done is true when the
// caller should return code: after -h (0) or a usage error (2).
func (a *app) parseCommand(fs *flag.FlagSet, synopsis string, args []string, nArgs int) (pos []string, code int, done bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				a.commandHelp(a.stdout, fs, synopsis)
				return nil, exitOK, true
			}
			return nil, a.commandUsageError(fs, synopsis, "%v", err), true
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) != nArgs {
		return nil, a.commandUsageError(fs, synopsis, "want %d argument(s), got %d", nArgs, len(pos)), true
	}
	if err := a.checkGlobals(); err != nil {
		return nil, a.commandUsageError(fs, synopsis, "%v", err), true
	}
	return pos, exitOK, false
}

// checkGlobals validates the global flags once they are all parsed.
func (a *app) checkGlobals() error {
	a.g.url = strings.TrimRight(a.g.url, "/")
	u, err := url.Parse(a.g.url)
	switch {
	case err != nil:
		return fmt.Errorf("--url: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("--url %q: want an http:// or https:// URL", a.g.url)
	case u.Host == "":
		return fmt.Errorf("--url %q: no host", a.g.url)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("--url %q: want a base URL without query or fragment", a.g.url)
	}
	if a.g.timeout <= 0 || a.g.timeout > timeoutMax {
		return fmt.Errorf("--timeout %v: want more than 0 and at most %v", a.g.timeout, timeoutMax)
	}
	return nil
}

func (a *app) commandHelp(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "Usage:\n  orderctl %s\n\nFlags:\n", synopsis)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprint(w, "\nRun 'orderctl -h' for the global flags, environment and exit codes.\n")
}

func (a *app) commandUsageError(fs *flag.FlagSet, synopsis, format string, args ...any) int {
	fmt.Fprintf(a.stderr, "orderctl %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fmt.Fprintf(a.stderr, "usage: orderctl %s (see 'orderctl %s -h')\n", synopsis, fs.Name())
	return exitUsage
}

func (a *app) usageError(format string, args ...any) int {
	fmt.Fprintf(a.stderr, "orderctl: %s\n", fmt.Sprintf(format, args...))
	fmt.Fprint(a.stderr, "usage: orderctl [global flags] <command> [arguments] [flags]; 'orderctl -h' for help\n")
	return exitUsage
}

// errorf reports a failure that is not a usage error on stderr.
func (a *app) errorf(format string, args ...any) {
	fmt.Fprintf(a.stderr, "orderctl: %s\n", fmt.Sprintf(format, args...))
}
