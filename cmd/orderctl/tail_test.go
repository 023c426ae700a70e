package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
	"github.com/orderd/orderd/persistence/kfaketest"
)

// paths are the lifecycles makeTraffic drives orders along, with a step the
// table refuses tried along the way (refused steps never reach the log).
var paths = [][]string{
	{"Paid", "Shipped", "Delivered", "Returned"},
	{"Cancelled"},
	{"Paid", "Cancelled"},
	{},
	{"Paid", "Shipped"},
}

// makeTraffic creates n orders named prefix-i along paths, tries a refused
// step on each, and returns their IDs.
func makeTraffic(t *testing.T, s *server, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		s.must(t, "create", "--id", id)
		for _, to := range paths[i%len(paths)] {
			s.must(t, "transition", id, to)
		}
		require.NotEqual(t, exitOK, s.ctl(t, "transition", id, "Created").code)
		ids = append(ids, id)
	}
	return ids
}

// histories reads the orders' histories through the API.
func histories(t *testing.T, s *server, ids ...string) map[string][]transitionView {
	t.Helper()
	out := map[string][]transitionView{}
	for _, id := range ids {
		var h historyView
		require.NoError(t, json.Unmarshal([]byte(s.must(t, "history", id, "--json")), &h))
		out[id] = h.Transitions
	}
	return out
}

func tailLines(t *testing.T, stdout string) []tailLine {
	t.Helper()
	var lines []tailLine
	for line := range strings.Lines(stdout) {
		var l tailLine
		require.NoError(t, json.Unmarshal([]byte(line), &l), "line %q", line)
		lines = append(lines, l)
	}
	return lines
}

// requireSameTransitions checks that the tail's lines are exactly the
// transitions in want (nothing missing, nothing twice, nothing else), and that
// each order's lines come in version order.
func requireSameTransitions(t *testing.T, want map[string][]transitionView, lines []tailLine) {
	t.Helper()
	got := map[string][]transitionView{}
	for _, l := range lines {
		got[l.OrderID] = append(got[l.OrderID], transitionView{EventID: l.EventID, Version: l.Version, From: l.From, To: l.To, At: l.At,
			Reason: l.Reason, Principal: l.Principal, RequestID: l.RequestID})
		require.NotEmpty(t, l.EventID)
	}
	require.Equal(t, len(want), len(got), "orders")
	for id, w := range want {
		require.Equal(t, w, got[id], "order %s", id)
	}
}

func count(h map[string][]transitionView) int {
	n := 0
	for _, ts := range h {
		n += len(ts)
	}
	return n
}

// newSince returns the transitions of after that are not in before.
func newSince(before, after map[string][]transitionView) map[string][]transitionView {
	out := map[string][]transitionView{}
	for id, ts := range after {
		if n := len(before[id]); n < len(ts) {
			out[id] = ts[n:]
		}
	}
	return out
}

// tailReadableLine is the readable form of one transition.
var tailReadableLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  (\S+)  v(\d+)  (?:(\S+) )?-> (\S+)(?:  reason=".*")?$`)

func TestTailFromBeginningUntilEnd(t *testing.T) {
	s := startServer(t)
	want := histories(t, s, makeTraffic(t, s, "o", 10)...)
	total := count(want)

	r := ctl(t, nil, "tail", "--brokers", s.broker, "--from-beginning", "--until-end", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	assertNoTailErrors(t, r.stderr)
	lines := tailLines(t, r.stdout)
	require.Len(t, lines, total)
	requireSameTransitions(t, want, lines)
	partitions := map[int]bool{}
	for _, l := range lines {
		partitions[l.Partition] = true
	}
	assert.Greater(t, len(partitions), 1, "the orders are spread over the topic's partitions")

	// The readable form: one line per transition.
	r = ctl(t, nil, "tail", "--brokers", s.broker, "--from-beginning", "--until-end")
	require.Equal(t, exitOK, r.code, r.stderr)
	readable := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.Len(t, readable, total)
	for _, line := range readable {
		m := tailReadableLine.FindStringSubmatch(line)
		require.NotNil(t, m, "line %q", line)
		ts := want[m[1]]
		require.NotEmpty(t, ts, "line %q", line)
	}
	assert.Contains(t, r.stdout, "  o-0  v2  Created -> Paid\n")
	assert.Contains(t, r.stdout, "  o-0  v1  -> Created\n")

	// --order: one order's transitions only (read from its partition alone).
	r = ctl(t, nil, "tail", "--brokers", s.broker, "--from-beginning", "--until-end", "--json", "--order", "o-0")
	require.Equal(t, exitOK, r.code, r.stderr)
	requireSameTransitions(t, map[string][]transitionView{"o-0": want["o-0"]}, tailLines(t, r.stdout))

	// Without --from-beginning or --group tail starts at the end: with
	// --until-end there is nothing to print.
	r = ctl(t, nil, "tail", "--brokers", s.broker, "--until-end")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Empty(t, r.stdout)
}

func TestTailGroup(t *testing.T) {
	s := startServer(t)
	ids := makeTraffic(t, s, "a", 5)
	before := histories(t, s, ids...)

	// ORDERD_KAFKA_BROKERS stands in for --brokers.
	env := map[string]string{envBrokers: s.broker}
	r := ctl(t, env, "tail", "--group", "mailer", "--until-end", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	requireSameTransitions(t, before, tailLines(t, r.stdout))

	// The group committed its offsets: a second run prints nothing new.
	r = ctl(t, env, "tail", "--group", "mailer", "--until-end", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Empty(t, r.stdout)

	// New orders and more steps of old ones: the group gets exactly those.
	s.must(t, "transition", "a-3", "Paid")
	ids = append(ids, makeTraffic(t, s, "b", 3)...)
	after := histories(t, s, ids...)
	fresh := newSince(before, after)
	require.Len(t, fresh, 4)
	r = ctl(t, env, "tail", "--group", "mailer", "--until-end", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	requireSameTransitions(t, fresh, tailLines(t, r.stdout))
	r = ctl(t, env, "tail", "--group", "mailer", "--until-end")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Empty(t, r.stdout)

	// Another group has its own offsets: it starts at the beginning.
	r = ctl(t, env, "tail", "--group", "analytics", "--until-end", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	requireSameTransitions(t, after, tailLines(t, r.stdout))
}

// TestTailFollows: without --until-end tail prints transitions as they
// happen until it is interrupted, which is a normal end (exit 0).
func TestTailFollows(t *testing.T) {
	s := startServer(t)
	s.must(t, "create", "--id", "early")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- runContext(ctx, ctlArgs("tail", "--brokers", s.broker, "--from-beginning"), &stdout, &stderr, func(string) string { return "" })
	}()
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "early  v1  -> Created") },
		ctlRunLimit, 10*time.Millisecond, "stderr: %s", stderr.String())

	s.must(t, "create", "--id", "late")
	s.must(t, "transition", "late", "Paid", "--reason", "card ending 4242")
	require.Eventually(t, func() bool {
		return strings.Contains(stdout.String(), `late  v2  Created -> Paid  reason="card ending 4242"`)
	}, ctlRunLimit, 10*time.Millisecond, "stdout: %s\nstderr: %s", stdout.String(), stderr.String())

	cancel()
	select {
	case c := <-code:
		assert.Equal(t, exitOK, c, stderr.String())
	case <-time.After(ctlRunLimit):
		t.Fatal("tail did not stop when interrupted")
	}
	assert.Equal(t, 3, strings.Count(stdout.String(), "\n"), stdout.String())
	assertNoTailErrors(t, stderr.String())
}

func TestTailBrokerErrors(t *testing.T) {
	r := ctl(t, nil, "tail", "--brokers", closedAddr(t), "--from-beginning", "--until-end")
	assert.Equal(t, exitUnavailable, r.code)
	assert.Contains(t, r.stderr, "Kafka at ")
	assert.Empty(t, r.stdout)

	s := startServer(t)
	r = ctl(t, nil, "tail", "--brokers", s.broker, "--topic", "no.such.topic", "--from-beginning", "--until-end")
	assert.Equal(t, exitNotFound, r.code)
	assert.Contains(t, r.stderr, `topic "no.such.topic" does not exist`)
}

// record encodes ev as orderd writes it, at partition 0 and offset.
func record(t *testing.T, ev order.Event, offset int64) tailRecord {
	t.Helper()
	rec, err := persistence.EncodeEvent(ev)
	require.NoError(t, err)
	r := tailRecord{partition: 0, offset: offset, key: rec.Key, value: rec.Value}
	for _, h := range rec.Headers {
		switch h.Key {
		case headerCEType:
			r.ceType, r.hasCEType = string(h.Value), true
		case headerCEID:
			r.ceID, r.hasCEID = string(h.Value), true
		}
	}
	return r
}

// TestTailSkipsWhatOrderdSkipped feeds tail's loop the records a consumer can
// meet besides the good ones (orderctl never produces to the topic): it
// prints each applied transition once and notes the rest on stderr.
func TestTailSkipsWhatOrderdSkipped(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 6, 54, 0, time.UTC)
	ev := func(id string, version uint64, from, to order.State, eventID string) order.Event {
		return order.Event{EventID: eventID, OrderID: id, Version: version, From: from, To: to, At: at, Principal: "p"}
	}
	foreign := record(t, ev("o-1", 3, order.Paid, order.Shipped, "foreign"), 0)
	foreign.ceType = "com.example.other"
	msgs := []tailRecord{
		record(t, ev("o-1", 1, 0, order.Created, "e1"), 0),
		record(t, ev("o-1", 2, order.Created, order.Paid, "e2"), 0),
		record(t, ev("o-1", 2, order.Created, order.Paid, "e2"), 0),             // producer retry
		record(t, ev("o-1", 2, order.Created, order.Cancelled, "e2-fork"), 0),   // a fork that lost
		record(t, ev("o-1", 3, order.Created, order.Cancelled, "e3-fork"), 0),   // does not continue Paid
		record(t, ev("o-1", 5, order.Delivered, order.Returned, "e5-fork"), 0),  // beyond the next version
		record(t, ev("o-2", 3, order.Paid, order.Shipped, "f3"), 0),             // first seen mid-way
		{partition: 0, key: []byte("o-1"), value: []byte(`{"not":"an event"}`)}, // garbage
		foreign,
		record(t, ev("o-1", 3, order.Paid, order.Shipped, "e3"), 0),
	}
	var stdout, stderr strings.Builder
	a := &app{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	tr := &tailer{a: a, tracker: newOrderTracker(), out: bufio.NewWriter(&stdout)}
	for _, m := range msgs {
		require.NoError(t, tr.handle(m, nil))
	}
	require.NoError(t, tr.flush())
	assert.Equal(t, strings.Join([]string{
		"2026-11-23T12:06:54Z  o-1  v1  -> Created",
		"2026-11-23T12:06:54Z  o-1  v2  Created -> Paid",
		"2026-11-23T12:06:54Z  o-2  v3  Paid -> Shipped",
		"2026-11-23T12:06:54Z  o-1  v3  Paid -> Shipped",
	}, "\n")+"\n", stdout.String())
	for _, want := range []string{
		"skipping o-1 v2 (event e2) at partition 0 offset 0: a duplicate of the record already applied",
		"skipping o-1 v2 (event e2-fork) at partition 0 offset 0: at or below the version already applied",
		"skipping o-1 v3 (event e3-fork) at partition 0 offset 0: does not continue the order's path",
		"skipping o-1 v5 (event e5-fork) at partition 0 offset 0: skips versions",
		"skipping the record at partition 0 offset 0: invalid journal record",
		`ce_type "com.example.other" is not orderd.order.transitioned`,
	} {
		assert.Contains(t, stderr.String(), want)
	}
	assert.Equal(t, int64(6), tr.skipped)
	assert.Equal(t, int64(4), tr.printed)
}

// A record that kills any kafka-go consumer reading it as it is (it claims
// a billion headers, and kafka-go allocates them), written to the topic by
// a producer other than orderd, is noted and skipped on its own: tail
// prints every transition before and after it, and a group commits past it.
func TestTailReadsPastACorruptBatch(t *testing.T) {
	s := startServer(t)
	ids := makeTraffic(t, s, "a", 3)
	produceRecordClaimingHeaders(t, s.broker, 1_000_000_000)
	ids = append(ids, makeTraffic(t, s, "b", 3)...)
	want := histories(t, s, ids...)

	r := ctl(t, nil, "tail", "--brokers", s.broker, "--from-beginning", "--until-end", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	requireSameTransitions(t, want, tailLines(t, r.stdout))
	assert.Regexp(t, `skipping the record batch at partition 0 offset \d+: corrupt record batch at offset \d+: `, r.stderr)
	assert.Contains(t, r.stderr, "skipped 1 (see above)")

	env := map[string]string{envBrokers: s.broker}
	r = ctl(t, env, "tail", "--group", "mailer", "--until-end", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	requireSameTransitions(t, want, tailLines(t, r.stdout))
	r = ctl(t, env, "tail", "--group", "mailer", "--until-end", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Empty(t, r.stdout, "the group committed past it")
	assertNoTailErrors(t, r.stderr)
}

// produceRecordClaimingHeaders writes to partition 0 of orderd's topic one
// record batch, with a good CRC, whose one record claims headers many
// headers and holds none.
func produceRecordClaimingHeaders(t *testing.T, broker string, headers int64) {
	t.Helper()
	body := []byte{0}                         // attributes
	body = binary.AppendVarint(body, 0)       // timestamp delta
	body = binary.AppendVarint(body, 0)       // offset delta
	body = binary.AppendVarint(body, -1)      // key: null
	body = binary.AppendVarint(body, -1)      // value: null
	body = binary.AppendVarint(body, headers) // and not one of them present
	now := time.Now().UnixMilli()
	batch := kfaketest.Seal(kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1,
		Records: append(binary.AppendVarint(nil, int64(len(body))), body...),
	})
	ctx, cancel := context.WithTimeout(context.Background(), ctlRunLimit)
	defer cancel()
	require.NoError(t, kfaketest.ProduceBatch(ctx, broker, topicDefault, 0, batch), "the broker takes the batch")
}

// A batch tail cannot trust stops it with a message that says so, and exit
// 1: retrying reads the same batch. The broker here is kfake answering
// Fetch itself with a batch whose CRC is wrong (a bit flipped in its one
// record), which a broker serves from a damaged log (and which kafka-go's
// Reader, on its own, hands out as a good record).
func TestTailStopsAtABatchItCannotTrust(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(1, topicDefault))
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	broker := cluster.ListenAddrs()[0]

	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), ctlRunLimit)
	defer cancel()
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: topicDefault, Key: []byte("o-1"), Value: []byte("{}")}).FirstErr())

	body := []byte{0, 0, 0, 6, 'o', '-', '1', 4, '{', '}', 0} // attributes, deltas, key, value, no headers
	batch := kfaketest.Seal(kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, NumRecords: 1,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		Records: append(binary.AppendVarint(nil, int64(len(body))), body...),
	})
	batch[len(batch)-2] ^= 1 // the record just produced, with a bit of its value flipped
	kfaketest.AnswerFetches(cluster, func(p *kmsg.FetchResponseTopicPartition) {
		p.HighWatermark, p.LastStableOffset, p.RecordBatches = 1, 1, batch
	})

	r := ctl(t, nil, "tail", "--brokers", broker, "--from-beginning", "--until-end", "--json")
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "damaged record batch at offset 0: CRC")
	assert.Contains(t, r.stderr, "cannot be read safely")
}

// kafkaReaderRetried is the line tail writes when a fetch fails on a
// connection error and the reader connects again and goes on, as it may
// with an i/o timeout on a busy machine. It is a warning of something
// recovered, not a failure.
var kafkaReaderRetried = regexp.MustCompile(`^orderctl: kafka: reading partition \d+ failed \(\d+ in a row\), trying again: .*(i/o timeout|connection reset by peer|EOF)$`)

// assertNoTailErrors asserts that tail reported nothing on stderr but the
// reader's recovered retries.
func assertNoTailErrors(t *testing.T, stderr string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if line != "" && !kafkaReaderRetried.MatchString(line) {
			t.Errorf("tail reported on stderr: %q\nall of stderr:\n%s", line, stderr)
		}
	}
}

// followGroup runs a following tail of group in the background; stop ends
// it and returns its exit code.
func followGroup(t *testing.T, broker, group string) (stdout, stderr *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	code := make(chan int, 1)
	go func() {
		code <- runContext(ctx, ctlArgs("tail", "--brokers", broker, "--group", group, "--json"), stdout, stderr, func(string) string { return "" })
	}()
	stopped := false
	stop = func() int {
		if !stopped {
			stopped = true
			cancel()
		}
		select {
		case c := <-code:
			return c
		case <-time.After(ctlRunLimit):
			t.Fatal("tail did not stop when interrupted")
			return -1
		}
	}
	t.Cleanup(func() { cancel() })
	return stdout, stderr, stop
}

// Two members of one group: when the second joins, the first gives up
// partitions in a rebalance, and commits what it printed before it does, so
// that between them every transition is printed exactly once.
func TestTailGroupRebalanceHandsPartitionsOver(t *testing.T) {
	s := startServer(t)
	ids := makeTraffic(t, s, "a", 6)
	before := histories(t, s, ids...)

	outA, errA, stopA := followGroup(t, s.broker, "mailer")
	require.Eventually(t, func() bool { return strings.Count(outA.String(), "\n") == count(before) },
		ctlRunLimit, 10*time.Millisecond, "stderr: %s", errA.String())

	// New orders until the second member prints some: it has been given
	// partitions, which the first gave up.
	outB, errB, stopB := followGroup(t, s.broker, "mailer")
	deadline := time.Now().Add(ctlRunLimit)
	for i := 0; outB.String() == ""; i++ {
		require.True(t, time.Now().Before(deadline), "the second member got no partition: %s", errB.String())
		ids = append(ids, makeTraffic(t, s, fmt.Sprintf("b%d", i), 1)...)
		time.Sleep(50 * time.Millisecond)
	}
	ids = append(ids, makeTraffic(t, s, "c", 6)...)
	after := histories(t, s, ids...)
	require.Eventually(t, func() bool {
		return strings.Count(outA.String(), "\n")+strings.Count(outB.String(), "\n") >= count(after)
	}, ctlRunLimit, 10*time.Millisecond, "A: %s\nB: %s", errA.String(), errB.String())
	assert.Equal(t, exitOK, stopB(), errB.String())
	assert.Equal(t, exitOK, stopA(), errA.String())

	lines := append(tailLines(t, outA.String()), tailLines(t, outB.String())...)
	requireSameTransitions(t, after, lines)
	assert.Len(t, lines, count(after), "nothing printed twice")
	assertNoTailErrors(t, errA.String())
	assertNoTailErrors(t, errB.String())

	// Both committed what they printed: the group has nothing left.
	r := ctl(t, map[string]string{envBrokers: s.broker}, "tail", "--group", "mailer", "--until-end", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Empty(t, r.stdout)
}
