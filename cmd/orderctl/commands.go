package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orderd/orderd/order"
)

// API paths (README, HTTP API).
const (
	ordersPath  = "/v1/orders"
	machinePath = "/v1/machine"
)

// Client-side limits, checked before sending so that a typo is a usage error
// (exit 2, nothing sent) rather than a 400. The server checks them again.
const (
	// idempotencyKeyLenMax is the API's limit on Idempotency-Key.
	idempotencyKeyLenMax = 255
	// reasonLenMax is the API's limit on a transition's reason.
	reasonLenMax = 1024
)

// orderView is an order as the API returns it.
type orderView struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	Version   uint64 `json:"version"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`

	// What the order carries, each only when the server sent it.
	CustomerID string            `json:"customer_id"`
	Currency   string            `json:"currency"`
	Items      []itemBody        `json:"items"`
	Total      int64             `json:"total"`
	Metadata   map[string]string `json:"metadata"`
}

// historyView is GET /v1/orders/{id}/history.
type historyView struct {
	ID          string           `json:"id"`
	Transitions []transitionView `json:"transitions"`
}

type transitionView struct {
	EventID   string  `json:"event_id"`
	Version   uint64  `json:"version"`
	From      *string `json:"from"`
	To        string  `json:"to"`
	At        string  `json:"at"`
	Reason    string  `json:"reason"`
	Principal string  `json:"principal"`
	RequestID string  `json:"request_id"`
}

// machineView is GET /v1/machine.
type machineView struct {
	States      []string            `json:"states"`
	Initial     string              `json:"initial"`
	Terminal    []string            `json:"terminal"`
	Transitions map[string][]string `json:"transitions"`
}

func cmdCreate(ctx context.Context, a *app, args []string) int {
	const synopsis = "create [--id ID] [--customer C] [--currency CUR --item SKU:QTY:PRICE...] [--meta K=V...] [--idempotency-key K]"
	fs := a.flagSet("create")
	id := fs.String("id", "", "the order's ID (letters, digits, -._~; at most 128 bytes); default: the server generates one")
	key := fs.String("idempotency-key", "", "Idempotency-Key: retrying with the same key creates the order at most once (default: a random key)")
	customer := fs.String("customer", "", "the customer's ID (visible ASCII, at most 128 bytes)")
	currency := fs.String("currency", "", "ISO 4217 code of the item prices (EUR); required with --item")
	var items itemFlags
	fs.Var(&items, "item", "an item as SKU:QUANTITY:UNIT_PRICE, the price in minor units (cents); repeatable")
	meta := metaFlags{}
	fs.Var(meta, "meta", "metadata as KEY=VALUE; repeatable")
	if _, code, done := a.parseCommand(fs, synopsis, args, 0); done {
		return code
	}
	body := map[string]any{}
	if *id != "" {
		if err := order.ValidateID(*id); err != nil {
			return a.commandUsageError(fs, synopsis, "--id: %v", err)
		}
		body["id"] = *id
	}
	if err := contentsBody(body, *customer, *currency, items); err != nil {
		return a.commandUsageError(fs, synopsis, "%v", err)
	}
	if err := checkMeta(meta); err != nil {
		return a.commandUsageError(fs, synopsis, "%v", err)
	}
	if len(meta) > 0 {
		body[order.FieldMetadata] = meta
	}
	k, err := idempotencyKey(*key)
	if err != nil {
		return a.commandUsageError(fs, synopsis, "%v", err)
	}
	req := request{method: http.MethodPost, path: ordersPath, body: body, write: true,
		header: map[string]string{"Idempotency-Key": k}, idempotencyKey: k}
	return a.orderCall(ctx, req, http.StatusCreated)
}

func cmdTransition(ctx context.Context, a *app, args []string) int {
	const synopsis = "transition ID STATE [--reason R] [--meta K=V...] [--if-match VERSION] [--idempotency-key K]"
	fs := a.flagSet("transition")
	reason := fs.String("reason", "", "why, recorded in the audit log (at most 1024 bytes)")
	meta := metaFlags{}
	fs.Var(meta, "meta", "metadata as KEY=VALUE, merged into the order (a tracking number on Shipped); repeatable")
	ifMatch := fs.String("if-match", "", "apply only if the order is at this version (a number, or * for any)")
	key := fs.String("idempotency-key", "", "Idempotency-Key: retrying with the same key applies the step at most once (default: a random key)")
	pos, code, done := a.parseCommand(fs, synopsis, args, 2)
	if done {
		return code
	}
	id, to := pos[0], pos[1]
	if err := order.ValidateID(id); err != nil {
		return a.commandUsageError(fs, synopsis, "ID: %v", err)
	}
	state, ok := parseStateFold(to)
	if !ok {
		return a.commandUsageError(fs, synopsis, "%q is not a state (%s)", to, stateNames())
	}
	if len(*reason) > reasonLenMax {
		return a.commandUsageError(fs, synopsis, "--reason is %d bytes, at most %d allowed", len(*reason), reasonLenMax)
	}
	if err := checkMeta(meta); err != nil {
		return a.commandUsageError(fs, synopsis, "%v", err)
	}
	k, err := idempotencyKey(*key)
	if err != nil {
		return a.commandUsageError(fs, synopsis, "%v", err)
	}
	header := map[string]string{"Idempotency-Key": k}
	if *ifMatch != "" {
		etag, err := parseIfMatch(*ifMatch)
		if err != nil {
			return a.commandUsageError(fs, synopsis, "%v", err)
		}
		header["If-Match"] = etag
	}
	body := struct {
		To       string            `json:"to"`
		Reason   string            `json:"reason,omitempty"`
		Metadata map[string]string `json:"metadata,omitempty"`
	}{To: state.String(), Reason: *reason, Metadata: meta}
	req := request{method: http.MethodPost, path: orderPath(id) + "/transitions", body: body,
		header: header, write: true, idempotencyKey: k}
	return a.orderCall(ctx, req, http.StatusOK)
}

func cmdGet(ctx context.Context, a *app, args []string) int {
	const synopsis = "get ID"
	fs := a.flagSet("get")
	pos, code, done := a.parseCommand(fs, synopsis, args, 1)
	if done {
		return code
	}
	if err := order.ValidateID(pos[0]); err != nil {
		return a.commandUsageError(fs, synopsis, "ID: %v", err)
	}
	return a.orderCall(ctx, request{method: http.MethodGet, path: orderPath(pos[0])}, http.StatusOK)
}

func cmdHistory(ctx context.Context, a *app, args []string) int {
	const synopsis = "history ID"
	fs := a.flagSet("history")
	pos, code, done := a.parseCommand(fs, synopsis, args, 1)
	if done {
		return code
	}
	if err := order.ValidateID(pos[0]); err != nil {
		return a.commandUsageError(fs, synopsis, "ID: %v", err)
	}
	req := request{method: http.MethodGet, path: orderPath(pos[0]) + "/history"}
	resp, code := a.do(ctx, req)
	if code != exitOK {
		return code
	}
	if resp.status != http.StatusOK {
		return a.failed(req, resp)
	}
	if a.g.json {
		writeLine(a.stdout, resp.body)
		return exitOK
	}
	var h historyView
	if err := json.Unmarshal(resp.body, &h); err != nil {
		return a.unexpected(resp, err)
	}
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tAT\tFROM\tTO\tBY\tREASON")
	for _, t := range h.Transitions {
		from := "-"
		if t.From != nil {
			from = *t.From
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", t.Version, shortTime(t.At), from, t.To, orDash(t.Principal), printable(t.Reason))
	}
	_ = tw.Flush()
	// tabwriter pads the cell before an empty reason: trim it.
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(a.stdout, strings.TrimRight(line, " \n"))
	}
	return exitOK
}

func cmdMachine(ctx context.Context, a *app, args []string) int {
	const synopsis = "machine [--format text|json|mermaid|dot]"
	fs := a.flagSet("machine")
	format := fs.String("format", "text", "text (a table), json, mermaid or dot")
	if _, code, done := a.parseCommand(fs, synopsis, args, 0); done {
		return code
	}
	if a.g.json {
		*format = "json"
	}
	query := ""
	switch *format {
	case "text", "json":
	case "mermaid", "dot":
		query = "?format=" + *format
	default:
		return a.commandUsageError(fs, synopsis, "--format %q: want text, json, mermaid or dot", *format)
	}
	req := request{method: http.MethodGet, path: machinePath + query}
	resp, code := a.do(ctx, req)
	if code != exitOK {
		return code
	}
	if resp.status != http.StatusOK {
		return a.failed(req, resp)
	}
	if *format != "text" {
		writeLine(a.stdout, resp.body)
		return exitOK
	}
	var m machineView
	if err := json.Unmarshal(resp.body, &m); err != nil {
		return a.unexpected(resp, err)
	}
	printMachine(a.stdout, m)
	return exitOK
}

// printMachine writes the lifecycle as a table:
//
//	Created    -> Paid, Cancelled   (initial)
//	Cancelled  (terminal)
func printMachine(w io.Writer, m machineView) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range m.States {
		next := m.Transitions[s]
		line := "(terminal)"
		if len(next) > 0 {
			line = "-> " + strings.Join(next, ", ")
		}
		if s == m.Initial {
			line += "  (initial)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", s, line)
	}
	_ = tw.Flush()
}

// orderCall sends a request answered with an order and prints the order.
func (a *app) orderCall(ctx context.Context, req request, want int) int {
	resp, code := a.do(ctx, req)
	if code != exitOK {
		return code
	}
	if resp.status != want {
		if resp.status >= 200 && resp.status < 300 {
			return a.unexpected(resp, fmt.Errorf("status %d, want %d", resp.status, want))
		}
		return a.failed(req, resp)
	}
	if a.g.json {
		writeLine(a.stdout, resp.body)
		return exitOK
	}
	var o orderView
	if err := json.Unmarshal(resp.body, &o); err != nil {
		return a.unexpected(resp, err)
	}
	fmt.Fprintln(a.stdout, formatOrder(o))
	return exitOK
}

// formatOrder is the readable form of an order: `order-1  Paid  v2  2026-11-23T12:06:54Z`
// (the time of its last change), then, indented, what it carries:
//
//	customer  cus-42
//	item      mug-blue × 2 at 1250
//	total     2500 EUR (minor units)
//	metadata  channel=web
//
// Prices stay in minor units, as the API has them: orderctl does not know
// each currency's decimals.
func formatOrder(o orderView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s  v%d  %s", o.ID, o.State, o.Version, shortTime(o.UpdatedAt))
	line := func(label, value string) { fmt.Fprintf(&b, "\n  %-8s  %s", label, value) }
	if o.CustomerID != "" {
		line("customer", printable(o.CustomerID))
	}
	for _, it := range o.Items {
		line("item", fmt.Sprintf("%s × %d at %d", printable(it.SKU), it.Quantity, it.UnitPrice))
	}
	if len(o.Items) > 0 {
		line("total", strings.TrimSpace(fmt.Sprintf("%d %s (minor units)", o.Total, printable(o.Currency))))
	}
	for _, k := range slices.Sorted(maps.Keys(o.Metadata)) {
		line("metadata", printable(k)+"="+printable(o.Metadata[k]))
	}
	return b.String()
}

// unexpected reports a 2xx answer orderctl cannot read: a server that is not
// the orderd it knows.
func (a *app) unexpected(resp response, err error) int {
	a.errorf("unexpected answer from %s (%v): %s", a.g.url, err, snippet(resp.body))
	return exitRefused
}

// orderPath is the path of one order; IDs are validated, but escape anyway.
func orderPath(id string) string { return ordersPath + "/" + url.PathEscape(id) }

// shortTime writes an RFC 3339 time to the second, in UTC, for reading; the
// --json output keeps the server's full precision.
func shortTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format(time.RFC3339)
}

// printable quotes s if it holds anything that would break a table row.
func printable(s string) string {
	if s == "" {
		return ""
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || r == '"' {
			return strconv.Quote(s)
		}
	}
	return s
}

// parseStateFold reads a state name ignoring case: people type "paid". The
// request carries the exact spelling the server requires.
func parseStateFold(name string) (order.State, bool) {
	for _, s := range order.States() {
		if strings.EqualFold(s.String(), name) {
			return s, true
		}
	}
	return 0, false
}

func stateNames() string {
	names := make([]string, 0, len(order.States()))
	for _, s := range order.States() {
		names = append(names, s.String())
	}
	return strings.Join(names, ", ")
}

// parseIfMatch turns `3`, `"3"` or `*` into the If-Match header value.
func parseIfMatch(v string) (string, error) {
	if v == "*" {
		return v, nil
	}
	n, err := strconv.ParseUint(strings.Trim(v, `"`), 10, 64)
	if err != nil || n == 0 {
		return "", fmt.Errorf("--if-match %q: want a version (1, 2, ...) or *", v)
	}
	return strconv.Quote(strconv.FormatUint(n, 10)), nil
}

// idempotencyKey checks a given key, or makes a fresh random one: every
// write carries a key, so that one whose answer was lost can be retried
// with the key orderctl prints and be applied at most once.
func idempotencyKey(given string) (string, error) {
	if given == "" {
		return rand.Text(), nil
	}
	if len(given) > idempotencyKeyLenMax {
		return "", fmt.Errorf("--idempotency-key is %d bytes, at most %d allowed", len(given), idempotencyKeyLenMax)
	}
	for i := 0; i < len(given); i++ {
		if c := given[i]; c <= ' ' || c > '~' {
			return "", fmt.Errorf("--idempotency-key: only visible ASCII characters are allowed")
		}
	}
	return given, nil
}
