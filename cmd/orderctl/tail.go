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
	"bytes"
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
	// ceTypeInventory: a SKU's stock changed (tail_inventory.go).
	ceTypeInventory = "orderd.inventory.changed"
	// ceTypeCheckout: a checkout started or took a step (tail_checkout.go).
	ceTypeCheckout = "orderd.checkout.stepped"
)

// clientID names orderctl to the brokers (their logs and quotas).
const clientID = "orderctl"

// Reading and committing.
const (
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
	// The readers report retried errors from their own goroutines: from
	// here on, every write to stderr takes a lock.
	rawStderr := a.stderr
	a = &app{stdout: a.stdout, stderr: &lockedWriter{w: rawStderr}, getenv: a.getenv, g: a.g}
	// One transport for the metadata and offsets requests; the readers
	// and the consumer group dial their own connections.
	tctx, stopTransport := context.WithCancel(context.Background())
	transport := &kafka.Transport{
		DialTimeout: a.g.timeout,
		// kafka-go's own metadata requests, the first one included, have
		// the TTL as their deadline (6 s by default): --timeout bounds
		// them as it does every other request.
		MetadataTTL:    a.g.timeout,
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
	t := &tailer{a: a, cfg: cfg, plan: plan, client: client, tracker: newOrderTracker(), out: bufio.NewWriter(a.stdout),
		finished: make(chan struct{})}
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
	first      map[int]int64 // the first offsets at start (below: deleted)
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
			plan := tailPlan{partitions: parts, first: maps.Clone(first), start: first, end: end, pending: map[int]bool{}}
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
	if errors.Is(err, persistence.ErrBatchDamaged) {
		// The next batch has a wrong CRC or offsets no broker assigns.
		// Reading it again gives the same answer.
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

// tailRecord is one record as tail handles it: copied out of the fetch
// response, which the reader reuses.
type tailRecord struct {
	partition  int
	offset     int64
	key, value []byte
	ceType     string // the ce_type header; hasCEType: whether there is one
	ceID       string
	hasCEType  bool
	hasCEID    bool
	// skip says why orderd skips the record without reading it as an
	// order's (a cluster's claim, or a record it fences); empty otherwise.
	skip string
}

func newTailRecord(p int, rec persistence.LogRecord) tailRecord {
	r := tailRecord{partition: p, offset: rec.Offset, key: bytes.Clone(rec.Key), value: bytes.Clone(rec.Value)}
	if v, ok := rec.Header(headerCEType); ok {
		r.ceType, r.hasCEType = string(v), true
	}
	if v, ok := rec.Header(headerCEID); ok {
		r.ceID, r.hasCEID = string(v), true
	}
	return r
}

// delivery is what a partition's reader hands the loop: a record, a corrupt
// batch it skipped, the end of its read (--until-end), the end of a group
// generation, or the error that stopped it.
type delivery struct {
	rec     tailRecord
	corrupt error             // a skipped batch at rec.partition, rec.offset
	done    bool              // rec.partition is read up to its end offset
	gen     *kafka.Generation // the group generation the record was read in (--group)
	genEnd  chan struct{}     // the generation ended: commit, then close it
	err     error
}

// tailer is one run of tail: its readers feed deliveries to one loop that
// prints, deduplicates, commits and draws the progress bar, so that nothing
// but that loop writes to stdout and stderr (the readers' retry notes aside).
type tailer struct {
	a       *app
	cfg     tailConfig
	plan    tailPlan
	client  *kafka.Client // metadata for the log reader
	tracker *orderTracker
	// skus is the last version printed of each SKU (tail_inventory.go).
	skus map[string]uint64
	// checkouts is the same for checkouts (tail_checkout.go).
	checkouts map[string]uint64
	bar       *progressBar
	out       *bufio.Writer
	// gen is the group generation of the records printed last (--group
	// only); uncommitted are the offsets to commit with it, per partition.
	gen          *kafka.Generation
	uncommitted  map[int]int64
	uncommittedN int
	finished     chan struct{} // closed once the last commit is made
	read         int64         // records received
	printed      int64
	skipped      int64 // duplicates, forks, foreign and undecodable records
	notes        int
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
	close(t.finished)
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
		if code, stop := t.take(ctx, d); stop {
			return code
		}
	}
	return exitOK
}

// take handles one delivery; stop says the loop ends with code.
func (t *tailer) take(ctx context.Context, d delivery) (code int, stop bool) {
	switch {
	case d.err != nil:
		if ctx.Err() != nil {
			return exitOK, true
		}
		t.bar.clear()
		return t.a.brokerError(t.cfg, d.err), true
	case d.done:
		delete(t.plan.pending, d.rec.partition)
		return exitOK, false
	case d.genEnd != nil:
		// A rebalance: what was read in this generation is committed
		// before the group moves on, so that the partition's next owner
		// starts after it.
		defer close(d.genEnd)
		if err := t.flush(); err != nil {
			return exitRefused, true
		}
		if err := t.commit(ctx); err != nil {
			return exitUnavailable, true
		}
		return exitOK, false
	}
	if d.gen != nil && d.gen != t.gen {
		if err := t.commit(ctx); err != nil { // nothing, unless a generation ended unannounced
			return exitUnavailable, true
		}
		t.gen = d.gen
	}
	if err := t.handle(d.rec, d.corrupt); err != nil {
		return exitRefused, true
	}
	if t.uncommittedN >= commitBatchMax {
		if err := t.flush(); err != nil {
			return exitRefused, true
		}
		if err := t.commit(ctx); err != nil {
			return exitUnavailable, true
		}
	}
	return exitOK, false
}

// handle takes one record, or one corrupt batch: it is printed if it is a
// transition to act on, and noted on stderr if it is skipped. Either way it
// has been dealt with, and a group commits past it.
func (t *tailer) handle(r tailRecord, corrupt error) error {
	t.read++
	t.bar.add(1, time.Now())
	if t.uncommitted != nil {
		t.uncommitted[r.partition] = r.offset + 1
		t.uncommittedN++
	}
	if corrupt != nil {
		t.note("skipping the record batch at partition %d offset %d: %v", r.partition, r.offset, corrupt)
		return nil
	}
	if r.skip != "" {
		t.note("skipping the record at partition %d offset %d: %s", r.partition, r.offset, r.skip)
		return nil
	}
	if t.cfg.orderID != "" && string(r.key) != t.cfg.orderID {
		return nil
	}
	if persistence.IsInventoryKey(r.key) {
		return t.handleInventory(r)
	}
	if persistence.IsCheckoutKey(r.key) {
		return t.handleCheckout(r)
	}
	ev, err := decodeRecord(r)
	if err != nil {
		t.note("skipping the record at partition %d offset %d: %v", r.partition, r.offset, err)
		return nil
	}
	switch v := t.tracker.observe(ev); v {
	case apply:
		t.printed++
		t.bar.beforeOutput()
		return t.print(r, ev)
	default:
		t.note("skipping %s v%d (event %s) at partition %d offset %d: %v", ev.OrderID, ev.Version, ev.EventID, r.partition, r.offset, describeVerdict(v))
		return nil
	}
}

// decodeRecord reads an orderd record. The CloudEvents type tells orderd's
// records from anything else on the topic without parsing the value; the
// value is then decoded strictly, and its event_id must be the ce_id header.
func decodeRecord(r tailRecord) (order.Event, error) {
	if r.hasCEType && r.ceType != ceTypeOrderd {
		return order.Event{}, fmt.Errorf("ce_type %q is not %s", r.ceType, ceTypeOrderd)
	}
	ev, err := persistence.DecodeEvent(r.key, r.value)
	if err != nil {
		return order.Event{}, err
	}
	if r.hasCEID && r.ceID != ev.EventID {
		return order.Event{}, fmt.Errorf("ce_id %q is not the event_id %q", r.ceID, ev.EventID)
	}
	return ev, nil
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
	// What a creation ordered, and the metadata of any event, when present.
	CustomerID string            `json:"customer_id,omitempty"`
	Currency   string            `json:"currency,omitempty"`
	Items      []itemBody        `json:"items,omitempty"`
	Total      *int64            `json:"total,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	Partition  int               `json:"partition"`
	Offset     int64             `json:"offset"`
}

// print writes one transition: a JSON line, or
// `2026-11-23T12:06:54Z  order-1  v2  Created -> Paid  reason="..."`.
func (t *tailer) print(r tailRecord, ev order.Event) error {
	at := ev.At.UTC()
	if t.a.g.json {
		line := tailLine{EventID: ev.EventID, OrderID: ev.OrderID, Version: ev.Version, To: ev.To.String(),
			At: at.Format(time.RFC3339Nano), Reason: ev.Reason, Principal: ev.Principal, RequestID: ev.RequestID,
			IdempotencyKey: ev.IdempotencyKey, Partition: r.partition, Offset: r.offset}
		if ev.From != 0 {
			from := ev.From.String()
			line.From = &from
		}
		if !ev.PaymentDueAt.IsZero() {
			line.PaymentDueAt = ev.PaymentDueAt.UTC().Format(time.RFC3339Nano)
		}
		line.CustomerID, line.Currency, line.Metadata = ev.CustomerID, ev.Currency, ev.Metadata
		if ev.Items != nil {
			for _, it := range ev.Items {
				line.Items = append(line.Items, itemBody(it))
			}
			line.Total = &ev.Total
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
	if t.gen == nil || t.uncommittedN == 0 {
		return nil
	}
	done := make(chan error, 1)
	go func() {
		// CommitOffsets takes no context: bounded by the group's
		// Timeout; waiting for it here is bounded by ours too.
		done <- t.gen.CommitOffsets(map[string]map[int]int64{t.cfg.topic: t.uncommitted})
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(t.a.g.timeout):
		err = fmt.Errorf("no answer within %s", t.a.g.timeout)
	}
	if err != nil {
		t.bar.clear()
		t.a.errorf("committing offsets of group %q: %v (the records since the last commit will be delivered again)", t.cfg.group, err)
		return err
	}
	t.uncommitted, t.uncommittedN = map[int]int64{}, 0
	return nil
}

// startReaders starts the readers that feed deliveries until ctx ends, and
// returns a function that stops them and waits for them.
func (t *tailer) startReaders(ctx context.Context, deliveries chan<- delivery) (closeAll func()) {
	lr := persistence.NewLogReader(persistence.LogReaderConfig{
		Topic: t.cfg.topic, Client: t.client, Security: t.cfg.security, ClientID: clientID})
	var wg sync.WaitGroup
	if t.cfg.group == "" {
		// No group: one reader per partition, each from its start offset,
		// with nothing committed anywhere.
		for _, p := range t.plan.partitions {
			if t.cfg.untilEnd && !t.plan.pending[p] {
				continue
			}
			wg.Go(func() { t.readPartition(ctx, lr, p, t.plan.start[p], nil, deliveries) })
		}
		return wg.Wait
	}
	t.uncommitted = map[int]int64{}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:      t.cfg.group,
		Brokers: t.cfg.brokers,
		Topics:  []string{t.cfg.topic},
		// TLS in the dial function (nil without: kafka-go's own), SASL
		// above it, as on every other connection of tail's.
		Dialer: &kafka.Dialer{Timeout: t.a.g.timeout, ClientID: clientID,
			DialFunc: t.cfg.security.Dial(nil), SASLMechanism: t.cfg.security.SASL()},
		// A new group starts at the first offset.
		StartOffset: kafka.FirstOffset,
		Timeout:     t.a.g.timeout,
		ErrorLogger: kafka.LoggerFunc(t.kafkaError),
	})
	if err != nil { // only for a config kafka-go refuses: ours is fixed
		panic("orderctl: consumer group config: " + err.Error())
	}
	wg.Go(func() { t.followGroup(ctx, cg, lr, deliveries) })
	return func() {
		// Close leaves the group, so that the next run need not wait
		// for this member's session to time out; it waits for the
		// generation's readers, which end with ctx.
		_ = cg.Close()
		wg.Wait()
	}
}

// followGroup reads the partitions the group assigns to this member, one
// generation after another, until ctx ends.
func (t *tailer) followGroup(ctx context.Context, cg *kafka.ConsumerGroup, lr *persistence.LogReader, deliveries chan<- delivery) {
	for {
		gen, err := cg.Next(ctx)
		switch {
		case ctx.Err() != nil, errors.Is(err, kafka.ErrGroupClosed):
			return
		case err != nil:
			// kafka-go joins again by itself, after a pause.
			t.kafkaError("joining group %q: %v", t.cfg.group, err)
			continue
		}
		for _, a := range gen.Assignments[t.cfg.topic] {
			gen.Start(func(gctx context.Context) { t.readAssigned(ctx, gctx, lr, gen, a, deliveries) })
		}
	}
}

// readAssigned reads one assigned partition for as long as its generation
// lasts. When the generation ends, it has the loop commit what was printed
// before it lets the group move on: the partition's next owner, this
// member or another, starts after it.
func (t *tailer) readAssigned(ctx, gctx context.Context, lr *persistence.LogReader, gen *kafka.Generation, a kafka.PartitionAssignment, deliveries chan<- delivery) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(gctx, cancel)()
	// A new group's partitions start at their first offset; a commit
	// below it was deleted by retention.
	from := max(a.Offset, t.plan.first[a.ID])
	t.readPartition(rctx, lr, a.ID, from, gen, deliveries)
	// Stay in the generation until it ends (one function returning ends
	// it, in kafka-go, and its commits with it) or tail has stopped and
	// committed.
	<-rctx.Done()
	select {
	case <-gctx.Done():
		ack := make(chan struct{})
		select {
		case deliveries <- delivery{genEnd: ack}:
		case <-t.finished:
			return
		}
		select {
		case <-ack:
		case <-t.finished:
		}
	case <-t.finished:
		// tail stops, and has committed what it printed in this
		// generation, which lasted until then.
	}
}

// readPartition passes partition p's records from offset from on to the
// loop, up to its end offset with --until-end (then a done), until ctx
// ends otherwise.
func (t *tailer) readPartition(ctx context.Context, lr *persistence.LogReader, p int, from int64, gen *kafka.Generation, deliveries chan<- delivery) {
	end := int64(-1)
	if t.cfg.untilEnd {
		end = t.plan.end[p]
	}
	send := func(d delivery) error {
		select {
		case deliveries <- d:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := lr.ReadPartition(ctx, p, from, end, persistence.PartitionVisitor{
		Record: func(rec persistence.LogRecord) error {
			return send(delivery{rec: newTailRecord(p, rec), gen: gen})
		},
		Corrupt: func(offset int64, err error) {
			_ = send(delivery{rec: tailRecord{partition: p, offset: offset}, corrupt: err, gen: gen})
		},
		Skipped: func(rec persistence.LogRecord, why string) {
			_ = send(delivery{rec: tailRecord{partition: p, offset: rec.Offset, skip: why}, gen: gen})
		},
		Retry: func(err error, failures int) error {
			// The broker went away, or the leader moved: a follower
			// waits for it, as any consumer does.
			t.kafkaError("reading partition %d failed (%d in a row), trying again: %v", p, failures, err)
			return nil
		},
	})
	switch {
	case ctx.Err() != nil:
	case err != nil:
		_ = send(delivery{err: err})
	case t.cfg.untilEnd:
		_ = send(delivery{rec: tailRecord{partition: p}, done: true})
	}
}

// kafkaError reports what went wrong and is retried (a broker that went
// away, say). It is called from the readers' goroutines: stderr is a
// lockedWriter.
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
