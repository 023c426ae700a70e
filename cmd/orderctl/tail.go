package main

// `orderctl tail` is the reference consumer of orderd's audit topic: what a
// notification or analytics service does to follow orders, written out so
// that it can be copied. What a consumer must know:
//
//   - One record per accepted transition, the creation included (version 1,
//     `from` null). Key: the order ID. Value: the JSON event of DESIGN §4.
//     Headers: CloudEvents in binary mode (ce_specversion, ce_id = event_id,
//     ce_source, ce_type = orderd.order.transitioned, ce_subject = order ID,
//     ce_time, content-type), so a router can dispatch on them without
//     parsing the value.
//
//   - Per-order ordering: every record of an order is in one partition (the
//     key is hashed with murmur2, as the Java client does), in version order.
//     A consumer group gives each partition to one member at a time, so one
//     order is only ever handled by one consumer, in order. There is no order
//     across orders (different partitions), and none is needed.
//
//   - At-least-once delivery: commit an offset only after the record has
//     been acted on (here: printed). A crash between the two redelivers the
//     records since the last commit. Kafka can also hold a record twice
//     (orderd's producer may retry a write), and, in a split-brain moment,
//     two different records at one version of which orderd applied only the
//     first. So deduplicate: per order, act only on version = last applied +
//     1 (orderTracker, in dedup.go), and use event_id as the idempotency key
//     of side effects.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
)

// Defaults and environment of tail, the same as orderd's.
const (
	topicDefault = "orders.transitions"
	envBrokers   = "ORDERD_KAFKA_BROKERS"
	envTopic     = "ORDERD_TOPIC"
)

// The CloudEvents attributes orderd writes (README, "The audit log").
const (
	headerCEType = "ce_type"
	headerCEID   = "ce_id"
	ceTypeOrderd = "orderd.order.transitioned"
)

// clientID names orderctl to the brokers (their logs and quotas).
const clientID = "orderctl"

// Reader settings. Set explicitly: kafka-go's defaults do not suit a tool
// that must stop promptly.
const (
	// readerMaxWait is how long the broker may hold a fetch open when
	// there is nothing new. kafka-go also uses it as the fetch's read
	// deadline, and Reader.Close waits out a fetch in progress (FACTS.md),
	// so it bounds how long stopping takes. Half a second keeps a
	// following tail from polling busily.
	readerMaxWait = 500 * time.Millisecond
	// readerMaxBytes bounds one fetch response: about 3,000 records.
	readerMaxBytes = 1 << 20
	// commitBatchMax: while records keep arriving, commit at least every
	// this many. Committing each record costs a round trip to the group
	// coordinator; committing rarely means more redeliveries after a
	// crash.
	commitBatchMax = 500
	// commitIdle: when no record has arrived for this long, tail commits
	// what it has printed. A following tail thus commits each transition
	// within about this time of printing it.
	commitIdle = 50 * time.Millisecond
	// deliveriesBuffered lets the readers run ahead of the printing loop.
	deliveriesBuffered = 256
	// notesMax bounds the lines about skipped records, so that a topic
	// full of foreign records does not flood stderr.
	notesMax = 100
	// tickEvery is how often the loop wakes without records, to redraw the
	// progress bar.
	tickEvery = 100 * time.Millisecond
)

// tailConfig is what tail's flags say.
type tailConfig struct {
	brokers       []string
	topic         string
	group         string
	fromBeginning bool
	untilEnd      bool
	orderID       string
	noProgress    bool
	security      *persistence.Security // TLS and SASL; nil: neither
}

const tailSynopsis = "tail --brokers HOST:PORT[,...] [--topic T] [--group NAME | --from-beginning] [--order ID] [--until-end] [--no-progress] [--tls] [--tls-ca-file F] [--tls-cert-file F --tls-key-file F] [--tls-server-name N] [--sasl-mechanism M --sasl-username U [--sasl-password-file F]]"

func cmdTail(ctx context.Context, a *app, args []string) int {
	cfg, code, done := a.parseTail(args)
	if done {
		return code
	}
	// kafka-go's readers report errors from their own goroutines: from here
	// on, every write to stderr takes a lock.
	rawStderr := a.stderr
	a = &app{stdout: a.stdout, stderr: &lockedWriter{w: rawStderr}, getenv: a.getenv, g: a.g}
	// One transport for the metadata, offsets and commit requests; the
	// readers dial their own connections.
	tctx, stopTransport := context.WithCancel(context.Background())
	transport := &kafka.Transport{
		DialTimeout:    a.g.timeout,
		ClientID:       clientID,
		MetadataTopics: []string{cfg.topic},
		Context:        tctx,
		// TLS in the dial function, as the readers' (below) must have
		// it; nil without TLS: kafka-go's own dialer.
		Dial: cfg.security.Dial(nil),
		SASL: cfg.security.SASL(),
	}
	defer func() {
		transport.CloseIdleConnections()
		stopTransport()
	}()
	client := &kafka.Client{Addr: kafka.TCP(cfg.brokers...), Timeout: a.g.timeout, Transport: transport}

	plan, code := a.planTail(ctx, client, cfg)
	if code != exitOK {
		return code
	}
	if cfg.untilEnd && len(plan.pending) == 0 {
		return exitOK // nothing between the start and the end offsets
	}
	t := &tailer{a: a, cfg: cfg, plan: plan, tracker: newOrderTracker(), out: bufio.NewWriter(a.stdout)}
	if !cfg.noProgress && (cfg.fromBeginning || cfg.group != "") && isTerminal(rawStderr, a.getenv) {
		t.bar = newProgressBar(a.stderr, plan.total, isTerminal(a.stdout, a.getenv), time.Now())
	}
	return t.run(ctx)
}

// parseTail reads tail's flags.
func (a *app) parseTail(args []string) (cfg tailConfig, code int, done bool) {
	fs := a.flagSet("tail")
	brokers := fs.String("brokers", a.getenv(envBrokers), "comma-separated Kafka bootstrap brokers (env "+envBrokers+"); with orderd's embedded broker, the address given to its --embedded-kafka-addr, else the one in its log: msg=\"using Kafka\" mode=embedded broker=...")
	topic := fs.String("topic", cmpOr(a.getenv(envTopic), topicDefault), "the audit topic (env "+envTopic+")")
	fs.StringVar(&cfg.group, "group", "", "consume as this consumer group: resume from its committed offsets (a new group starts at the beginning) and commit after printing")
	fs.BoolVar(&cfg.fromBeginning, "from-beginning", false, "read every partition from its first offset, without a group")
	fs.BoolVar(&cfg.untilEnd, "until-end", false, "stop at the end offsets seen at start instead of following the topic (with --group: assumes no other member of the group is running)")
	fs.StringVar(&cfg.orderID, "order", "", "print only this order's transitions (without --group only its partition is read; with --group the other records are still committed as consumed)")
	fs.BoolVar(&cfg.noProgress, "no-progress", false, "no progress bar on stderr (it is shown only when stderr is a terminal and reading up to the end offsets takes a while)")
	security := a.securityFlags(fs)
	if _, code, done := a.parseCommand(fs, tailSynopsis, args, 0); done {
		return cfg, code, true
	}
	sc, err := security()
	if err == nil {
		cfg.security, err = sc.Load()
	}
	if err != nil {
		return cfg, a.commandUsageError(fs, tailSynopsis, "%v", err), true
	}
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.brokers = append(cfg.brokers, b)
		}
	}
	cfg.topic = *topic
	switch {
	case len(cfg.brokers) == 0:
		return cfg, a.commandUsageError(fs, tailSynopsis, "--brokers is required (or %s)", envBrokers), true
	case cfg.topic == "":
		return cfg, a.commandUsageError(fs, tailSynopsis, "--topic is empty"), true
	case cfg.group != "" && cfg.fromBeginning:
		return cfg, a.commandUsageError(fs, tailSynopsis, "--group and --from-beginning exclude each other: a new group starts at the beginning anyway"), true
	}
	if cfg.orderID != "" {
		if err := order.ValidateID(cfg.orderID); err != nil {
			return cfg, a.commandUsageError(fs, tailSynopsis, "--order: %v", err), true
		}
	}
	return cfg, exitOK, false
}

func cmpOr(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// tailPlan is where each partition's read starts and, for --until-end, ends.
type tailPlan struct {
	partitions []int         // to read without a group (a group reads what it is assigned)
	start      map[int]int64 // first offset to read
	end        map[int]int64 // the end offsets at start (one past the last record)
	// pending are the partitions with records between start and end: with
	// --until-end, tail stops once it has read up to end in each of them.
	pending map[int]bool
	total   int64 // records between start and end, for the progress bar
}

// planTail asks the broker for the topic's partitions and offsets (and, with
// --group, the group's committed offsets).
func (a *app) planTail(ctx context.Context, client *kafka.Client, cfg tailConfig) (tailPlan, int) {
	ctx, cancel := context.WithTimeout(ctx, a.g.timeout)
	defer cancel()
	n, code := a.topicPartitions(ctx, client, cfg)
	if code != exitOK {
		return tailPlan{}, code
	}
	all := make([]int, n)
	for p := range all {
		all[p] = p
	}
	parts := all
	if cfg.orderID != "" && cfg.group == "" {
		// The order's records are all in one partition: read only that
		// one. Any client finds it with murmur2 of the key, as the Java
		// client's default partitioner does.
		parts = []int{persistence.PartitionOf(cfg.orderID, n)}
	}
	first, err := listOffsets(ctx, client, cfg.topic, parts, kafka.FirstOffsetOf)
	if err == nil {
		var end map[int]int64
		if end, err = listOffsets(ctx, client, cfg.topic, parts, kafka.LastOffsetOf); err == nil {
			plan := tailPlan{partitions: parts, start: first, end: end, pending: map[int]bool{}}
			if err = a.chooseStart(ctx, client, cfg, &plan); err == nil {
				return plan, exitOK
			}
		}
	}
	return tailPlan{}, a.brokerError(cfg, err)
}

// chooseStart sets where each partition is read from: its first offset (from
// the beginning), its end (new records only), or the group's committed offset.
func (a *app) chooseStart(ctx context.Context, client *kafka.Client, cfg tailConfig, plan *tailPlan) error {
	switch {
	case cfg.group != "":
		committed, err := committedOffsets(ctx, client, cfg.group, cfg.topic, plan.partitions)
		if err != nil {
			return err
		}
		for p, c := range committed {
			// A new group starts at the first offset (the reader's
			// StartOffset); a commit below it was deleted by retention.
			plan.start[p] = max(c, plan.start[p])
		}
	case !cfg.fromBeginning:
		maps.Copy(plan.start, plan.end)
	}
	for _, p := range plan.partitions {
		if n := plan.end[p] - plan.start[p]; n > 0 {
			plan.pending[p] = true
			plan.total += n
		}
	}
	return nil
}

// topicPartitions returns the topic's partition count.
func (a *app) topicPartitions(ctx context.Context, client *kafka.Client, cfg tailConfig) (int, int) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{cfg.topic}})
	if err != nil {
		return 0, a.brokerError(cfg, err)
	}
	for _, t := range md.Topics {
		if t.Name != cfg.topic {
			continue
		}
		if t.Error != nil {
			return 0, a.brokerError(cfg, t.Error)
		}
		if len(t.Partitions) == 0 {
			break
		}
		return len(t.Partitions), exitOK
	}
	return 0, a.brokerError(cfg, kafka.UnknownTopicOrPartition)
}

// brokerError reports a failed request to the broker.
func (a *app) brokerError(cfg tailConfig, err error) int {
	if errors.Is(err, kafka.UnknownTopicOrPartition) {
		a.errorf("topic %q does not exist on %s (orderd creates it when it starts; see --topic)", cfg.topic, strings.Join(cfg.brokers, ","))
		return exitNotFound
	}
	if errors.Is(err, kafka.InvalidMessage) {
		// From the sanitizing connection (or a broker): the next batch
		// has a wrong CRC or offsets no broker assigns. Reading it again
		// gives the same answer.
		a.errorf("Kafka at %s: %v; the next record batch of a partition of %q cannot be read safely (a wrong CRC: a damaged log; or impossible offsets: a broken broker), and tail stops before it", strings.Join(cfg.brokers, ","), err, cfg.topic)
		return exitRefused
	}
	// A refusal of the credentials reaches kafka-go as a bare EOF from
	// some brokers: this says what it is.
	ctx, cancel := context.WithTimeout(context.Background(), a.g.timeout)
	defer cancel()
	err = cfg.security.ExplainBrokerError(ctx, nil, cfg.brokers[0], err)
	a.errorf("Kafka at %s: %v", strings.Join(cfg.brokers, ","), err)
	return exitUnavailable
}

// listOffsets returns the first or end offset of each partition.
func listOffsets(ctx context.Context, client *kafka.Client, topic string, parts []int, which func(int) kafka.OffsetRequest) (map[int]int64, error) {
	reqs := make([]kafka.OffsetRequest, len(parts))
	for i, p := range parts {
		reqs[i] = which(p)
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{topic: reqs},
		// orderd writes no transactions, and kafka-go's ReadCommitted
		// is broken (FACTS.md).
		IsolationLevel: kafka.ReadUncommitted,
	})
	if err != nil {
		return nil, fmt.Errorf("listing offsets: %w", err)
	}
	out := make(map[int]int64, len(parts))
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("listing offsets of partition %d: %w", po.Partition, po.Error)
		}
		if reqs[0].Timestamp == kafka.FirstOffset {
			out[po.Partition] = po.FirstOffset
		} else {
			out[po.Partition] = po.LastOffset
		}
	}
	for _, p := range parts {
		if _, ok := out[p]; !ok {
			return nil, fmt.Errorf("listing offsets: no answer for partition %d", p)
		}
	}
	return out, nil
}

// committedOffsets returns the group's committed offset of each partition,
// -1 where it has none.
func committedOffsets(ctx context.Context, client *kafka.Client, group, topic string, parts []int) (map[int]int64, error) {
	out := make(map[int]int64, len(parts))
	for _, p := range parts {
		out[p] = -1
	}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err == nil {
		err = resp.Error
	}
	if errors.Is(err, kafka.GroupIdNotFound) {
		return out, nil // a new group (Kafka answers -1 offsets, some brokers this error)
	}
	if err != nil {
		return nil, fmt.Errorf("fetching the committed offsets of group %q: %w", group, err)
	}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("fetching group %q's offset of partition %d: %w", group, po.Partition, po.Error)
		}
		out[po.Partition] = po.CommittedOffset
	}
	return out, nil
}

// delivery is one record from a reader, or the error that stopped it.
type delivery struct {
	msg kafka.Message
	err error
}

// tailer is one run of tail: its readers feed deliveries to one loop that
// prints, deduplicates, commits and draws the progress bar, so that nothing
// but that loop writes to stdout and stderr (kafka-go's error logger aside).
type tailer struct {
	a       *app
	cfg     tailConfig
	plan    tailPlan
	tracker *orderTracker
	bar     *progressBar
	out     *bufio.Writer
	group   *kafka.Reader
	// uncommitted are printed records not yet committed (--group only).
	uncommitted []kafka.Message
	read        int64 // records received
	printed     int64
	skipped     int64 // duplicates, forks, foreign and undecodable records
	notes       int
}

// run reads until ctx ends or, with --until-end, up to the end offsets.
func (t *tailer) run(ctx context.Context) int {
	rctx, stopReaders := context.WithCancel(ctx)
	deliveries := make(chan delivery, deliveriesBuffered)
	closeReaders := t.startReaders(rctx, deliveries)
	code := t.loop(ctx, deliveries)
	stopReaders()
	if err := t.flush(); err != nil && code == exitOK {
		code = exitRefused
	}
	// The last records printed are committed even when the loop ended on
	// an interrupt: they were printed.
	if err := t.commit(context.Background()); err != nil && code == exitOK {
		code = exitUnavailable
	}
	closeReaders()
	t.bar.finish()
	if t.skipped > 0 {
		t.a.errorf("read %d records: printed %d, skipped %d (see above)", t.read, t.printed, t.skipped)
	}
	return code
}

// loop receives deliveries until ctx ends, a reader fails, or (--until-end)
// every pending partition has reached its end offset.
func (t *tailer) loop(ctx context.Context, deliveries <-chan delivery) int {
	ticker := time.NewTicker(tickEvery)
	defer ticker.Stop()
	idle := time.NewTimer(commitIdle)
	defer idle.Stop()
	for !(t.cfg.untilEnd && len(t.plan.pending) == 0) {
		var d delivery
		select {
		case d = <-deliveries:
		default:
			// Nothing at hand: make what was printed visible now, so
			// that a following tail shows each transition as it
			// happens. Commit once the stream has paused for
			// commitIdle (or below, every commitBatchMax records): a
			// commit per record would cost a round trip each.
			if err := t.flush(); err != nil {
				return exitRefused
			}
			idle.Reset(commitIdle)
			select {
			case d = <-deliveries:
			case <-idle.C:
				if err := t.commit(ctx); err != nil {
					return exitUnavailable
				}
				continue
			case now := <-ticker.C:
				t.bar.tick(now)
				continue
			case <-ctx.Done():
				return exitOK // interrupted: a normal end for a follower
			}
		}
		if d.err != nil {
			if ctx.Err() != nil {
				return exitOK
			}
			t.bar.clear()
			return t.a.brokerError(t.cfg, d.err)
		}
		if err := t.handle(d.msg); err != nil {
			return exitRefused
		}
		if len(t.uncommitted) >= commitBatchMax {
			if err := t.flush(); err != nil {
				return exitRefused
			}
			if err := t.commit(ctx); err != nil {
				return exitUnavailable
			}
		}
	}
	return exitOK
}

// handle takes one record: past the end offsets with --until-end it is left
// for the next run (not printed, not committed); otherwise it is printed if
// it is a transition to act on, and noted on stderr if it is skipped.
func (t *tailer) handle(m kafka.Message) error {
	if t.cfg.untilEnd {
		end := t.plan.end[m.Partition]
		if m.Offset >= end || !t.plan.pending[m.Partition] {
			delete(t.plan.pending, m.Partition)
			return nil
		}
		if m.Offset == end-1 {
			delete(t.plan.pending, m.Partition)
		}
	}
	t.read++
	t.bar.add(1, time.Now())
	if t.group != nil {
		// Commit it once it is printed, or skipped: either way it
		// has been dealt with.
		t.uncommitted = append(t.uncommitted, m)
	}
	if t.cfg.orderID != "" && string(m.Key) != t.cfg.orderID {
		return nil
	}
	ev, err := decodeRecord(m)
	if err != nil {
		t.note("skipping the record at partition %d offset %d: %v", m.Partition, m.Offset, err)
		return nil
	}
	switch v := t.tracker.observe(ev); v {
	case apply:
		t.printed++
		t.bar.beforeOutput()
		return t.print(m, ev)
	default:
		t.note("skipping %s v%d (event %s) at partition %d offset %d: %v", ev.OrderID, ev.Version, ev.EventID, m.Partition, m.Offset, describeVerdict(v))
		return nil
	}
}

// decodeRecord reads an orderd record. The CloudEvents type tells orderd's
// records from anything else on the topic without parsing the value; the
// value is then decoded strictly, and its event_id must be the ce_id header.
func decodeRecord(m kafka.Message) (order.Event, error) {
	if why, ok := header(m, persistence.CorruptBatchHeader); ok && m.Value == nil {
		return order.Event{}, fmt.Errorf("a corrupt record batch, not read (%s)", why)
	}
	ceType, hasType := header(m, headerCEType)
	if hasType && ceType != ceTypeOrderd {
		return order.Event{}, fmt.Errorf("ce_type %q is not %s", ceType, ceTypeOrderd)
	}
	ev, err := persistence.DecodeEvent(m.Key, m.Value)
	if err != nil {
		return order.Event{}, err
	}
	if id, ok := header(m, headerCEID); ok && id != ev.EventID {
		return order.Event{}, fmt.Errorf("ce_id %q is not the event_id %q", id, ev.EventID)
	}
	return ev, nil
}

func header(m kafka.Message, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func describeVerdict(v verdict) string {
	switch v {
	case duplicate:
		return "a duplicate of the record already applied"
	case stale:
		return "at or below the version already applied (a duplicate or a fork orderd skipped)"
	case fork:
		return "does not continue the order's path (a fork orderd skipped)"
	case gap:
		return "skips versions (follows a fork orderd skipped)"
	}
	return v.String()
}

// note writes a line about a skipped record to stderr, up to notesMax.
func (t *tailer) note(format string, args ...any) {
	t.skipped++
	t.notes++
	if t.notes > notesMax {
		return
	}
	t.bar.clear()
	if err := t.out.Flush(); err != nil {
		return
	}
	t.a.errorf(format, args...)
	if t.notes == notesMax {
		t.a.errorf("further skipped records are counted, not listed")
	}
}

// tailLine is one transition in --json output: the event as the log holds
// it (without request_digest, which only orderd needs), and where it is in
// the topic.
type tailLine struct {
	EventID        string  `json:"event_id"`
	OrderID        string  `json:"order_id"`
	Version        uint64  `json:"version"`
	From           *string `json:"from"` // null on creation
	To             string  `json:"to"`
	At             string  `json:"at"`
	Reason         string  `json:"reason"`
	Principal      string  `json:"principal"`
	RequestID      string  `json:"request_id"`
	IdempotencyKey string  `json:"idempotency_key"`
	PaymentDueAt   string  `json:"payment_due_at,omitempty"` // on creations and deadline changes
	Partition      int     `json:"partition"`
	Offset         int64   `json:"offset"`
}

// print writes one transition: a JSON line, or
// `2026-11-23T12:06:54Z  order-1  v2  Created -> Paid  reason="..."`.
func (t *tailer) print(m kafka.Message, ev order.Event) error {
	at := ev.At.UTC()
	if t.a.g.json {
		line := tailLine{EventID: ev.EventID, OrderID: ev.OrderID, Version: ev.Version, To: ev.To.String(),
			At: at.Format(time.RFC3339Nano), Reason: ev.Reason, Principal: ev.Principal, RequestID: ev.RequestID,
			IdempotencyKey: ev.IdempotencyKey, Partition: m.Partition, Offset: m.Offset}
		if ev.From != 0 {
			from := ev.From.String()
			line.From = &from
		}
		if !ev.PaymentDueAt.IsZero() {
			line.PaymentDueAt = ev.PaymentDueAt.UTC().Format(time.RFC3339Nano)
		}
		b, err := json.Marshal(line)
		if err != nil {
			return err
		}
		b = append(b, '\n')
		_, err = t.out.Write(b)
		return err
	}
	step := "-> " + ev.To.String()
	if ev.From != 0 {
		step = ev.From.String() + " " + step
	}
	_, err := fmt.Fprintf(t.out, "%s  %s  v%d  %s", at.Format(time.RFC3339), ev.OrderID, ev.Version, step)
	if err == nil && order.IsDeadlineChange(ev) {
		// Without it "Created -> Created" would not say what changed;
		// creations keep their one-line form (--json has their deadline).
		_, err = fmt.Fprintf(t.out, "  payment_due_at=%s", ev.PaymentDueAt.UTC().Format(time.RFC3339))
	}
	if err == nil && ev.Reason != "" {
		_, err = fmt.Fprintf(t.out, "  reason=%s", strconv.Quote(ev.Reason))
	}
	if err == nil {
		_, err = t.out.WriteString("\n")
	}
	return err
}

// flush writes out the printed lines.
func (t *tailer) flush() error {
	if t.out.Buffered() == 0 {
		return nil
	}
	t.bar.beforeOutput()
	if err := t.out.Flush(); err != nil {
		t.a.errorf("writing the output: %v", err)
		return err
	}
	return nil
}

// commit commits the offsets of the records printed so far (--group only).
// It runs after flush: an offset is committed only once its record is out.
func (t *tailer) commit(ctx context.Context) error {
	if t.group == nil || len(t.uncommitted) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.a.g.timeout)
	defer cancel()
	if err := t.group.CommitMessages(ctx, t.uncommitted...); err != nil {
		t.bar.clear()
		t.a.errorf("committing offsets of group %q: %v (the records since the last commit will be delivered again)", t.cfg.group, err)
		return err
	}
	t.uncommitted = t.uncommitted[:0]
	return nil
}

// startReaders starts the readers that feed deliveries until ctx ends, and
// returns a function that closes them and waits for them.
func (t *tailer) startReaders(ctx context.Context, deliveries chan<- delivery) (closeAll func()) {
	var readers []*kafka.Reader
	base := kafka.ReaderConfig{
		Brokers: t.cfg.brokers,
		Topic:   t.cfg.topic,
		// kafka-go dies on a record that claims a billion headers (it
		// allocates them): the readers' connections replace such a
		// batch by one record it can read, which is then skipped as
		// undecodable (persistence/sanitize.go). Copy this, or read
		// with a client that checks, if your topic takes records from
		// producers you do not trust.
		// TLS goes beneath the sanitizer, in the dial function (never
		// Dialer.TLS, which kafka-go would put on top of it); SASL
		// above both.
		Dialer: &kafka.Dialer{Timeout: t.a.g.timeout, ClientID: clientID,
			DialFunc: persistence.SanitizeFetches(t.cfg.security.Dial(nil)), SASLMechanism: t.cfg.security.SASL()},
		MinBytes: 1,
		MaxBytes: readerMaxBytes,
		MaxWait:  readerMaxWait,
		// orderd writes no transactions; ReadCommitted is broken in
		// kafka-go (FACTS.md).
		IsolationLevel: kafka.ReadUncommitted,
		ErrorLogger:    kafka.LoggerFunc(t.kafkaError),
	}
	if t.cfg.group != "" {
		// A consumer group: the coordinator assigns partitions to the
		// group's members, and the reader starts each at the group's
		// committed offset, or at the first offset for a new group.
		cfg := base
		cfg.GroupID = t.cfg.group
		cfg.StartOffset = kafka.FirstOffset
		// Commits are explicit and synchronous (CommitMessages after
		// printing): 0 means kafka-go does not commit on its own timer,
		// and an error reaches us instead of its log.
		cfg.CommitInterval = 0
		t.group = kafka.NewReader(cfg)
		readers = append(readers, t.group)
	} else {
		// No group: one reader per partition, each from its start offset,
		// with nothing committed anywhere.
		for _, p := range t.plan.partitions {
			if t.cfg.untilEnd && !t.plan.pending[p] {
				continue
			}
			cfg := base
			cfg.Partition = p
			r := kafka.NewReader(cfg)
			if err := r.SetOffset(t.plan.start[p]); err != nil {
				// Only fails on a group reader.
				panic("orderctl: SetOffset on a partition reader: " + err.Error())
			}
			readers = append(readers, r)
		}
	}
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Go(func() { feed(ctx, r, deliveries) })
	}
	return func() {
		wg.Wait()
		// Close waits out a fetch in progress (up to readerMaxWait):
		// close all readers at once rather than one after another. A
		// group reader leaves the group, so that the next run need not
		// wait for this member's session to time out.
		var closing sync.WaitGroup
		for _, r := range readers {
			closing.Go(func() { _ = r.Close() })
		}
		closing.Wait()
	}
}

// feed passes a reader's records on until ctx ends or the reader fails.
// FetchMessage does not commit: with a group, tail commits after printing.
func feed(ctx context.Context, r *kafka.Reader, deliveries chan<- delivery) {
	for {
		m, err := r.FetchMessage(ctx)
		d := delivery{msg: m, err: err}
		select {
		case deliveries <- d:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// kafkaError reports what kafka-go's readers log as errors (a broker that
// went away, say); they retry on their own. It is called from their
// goroutines: stderr is a lockedWriter.
func (t *tailer) kafkaError(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strings.Contains(msg, context.Canceled.Error()) {
		return // stopping
	}
	t.a.errorf("kafka: %s", msg)
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
