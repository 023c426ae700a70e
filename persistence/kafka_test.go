package persistence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence/kfaketest"
)

// testProduceTimeout is the produce deadline of the requests that tests make
// time out: short, so they run quickly; no test asserts durations. Requests
// that must succeed get testProduceTimeoutRoomy (setProduceTimeout).
const testProduceTimeout = 500 * time.Millisecond

// testProduceTimeoutRoomy is every other test's produce deadline. The default
// (5 s) was too short on a busy machine: under -race, with lz4 and two test
// runs sharing two cores, produce requests ran past it and appends ended as
// outcome-unknown in tests that check order and completeness, not deadlines.
// It stays below testTimeout, so a test's own context outlives it.
const testProduceTimeoutRoomy = testTimeout * 2 / 3

// setProduceTimeout sets the deadline of j's next produce requests, for a
// test that makes a request time out after appends that must succeed: those
// take testProduceTimeoutRoomy, since on a busy machine a request the broker
// answers can take longer than testProduceTimeout. Call it with no append in
// flight; the writers read it when they send their next request.
func setProduceTimeout(j *KafkaJournal, d time.Duration) { j.producer.Timeout = d }

// testLogger shows the journal's and the broker's warnings in a failing
// test's output only.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func startTestBroker(t testing.TB) *Embedded {
	return startTestBrokerIn(t, t.TempDir())
}

func startTestBrokerIn(t testing.TB, dir string) *Embedded {
	e, err := StartEmbedded(EmbeddedConfig{DataDir: dir})
	require.NoError(t, err)
	t.Cleanup(e.Close)
	return e
}

// openTestJournal opens a journal on e the way orderd does, connected
// in-process, unless cfg.Dial says otherwise.
func openTestJournal(t testing.TB, e *Embedded, cfg KafkaConfig) *KafkaJournal {
	cfg.Brokers = []string{e.Addr()}
	if cfg.Dial == nil {
		cfg.Dial = e.Dial
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.ProduceTimeout == 0 {
		cfg.ProduceTimeout = testProduceTimeoutRoomy
	}
	j, err := OpenKafka(testContext(t), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = j.Close() })
	return j
}

// produceRequests records what produce requests reach the broker.
type produceRequests struct {
	mu      sync.Mutex
	records []int // records per request, in arrival order
}

func (r *produceRequests) snapshot() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.records...)
}

// observeProduces counts produce requests and their records without
// changing how the broker handles them.
func observeProduces(c *kfake.Cluster) *produceRequests {
	r := &produceRequests{}
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		n := 0
		for _, t := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range t.Partitions {
				var batch kmsg.RecordBatch
				if err := batch.ReadFrom(p.Records); err == nil {
					n += int(batch.NumRecords)
				}
			}
		}
		r.mu.Lock()
		r.records = append(r.records, n)
		r.mu.Unlock()
		return nil, nil, false
	})
	return r
}

func appendAsync(j order.Journal, ctx context.Context, ev order.Event) <-chan error {
	done := make(chan error, 1)
	go func() { done <- j.Append(ctx, ev) }()
	return done
}

func receive(t testing.TB, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(testTimeout):
		t.Fatal("no result")
		return nil
	}
}

func TestKafkaLoneAppendsAreSentAloneAtOnce(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	seen := observeProduces(e.cluster)
	ctx := testContext(t)
	for _, ev := range lifecycle("lonely", len(lifecyclePath)) {
		require.NoError(t, j.Append(ctx, ev))
	}
	// One request per append, each carrying just that append: nothing
	// waited for company (a timer would only add latency, never change
	// this), and nothing was sent twice.
	assert.Equal(t, []int{1, 1, 1, 1, 1}, seen.snapshot())

	// The request reaches the broker while its Append is still waiting,
	// with no other append anywhere to trigger it.
	arrived, release := kfaketest.HoldNextProduce(t, e.cluster)
	done := appendAsync(j, ctx, lifecycleEvent("lonely-2", 1))
	<-arrived
	release()
	require.NoError(t, receive(t, done))
}

func TestKafkaGroupCommitCarriesWhatQueuedMeanwhile(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	arrived, release := kfaketest.HoldNextProduce(t, e.cluster)
	seen := observeProduces(e.cluster)
	ctx := testContext(t)

	first := appendAsync(j, ctx, lifecycleEvent("first", 1))
	<-arrived
	const queued = 50
	var results []<-chan error
	for i := range queued {
		results = append(results, appendAsync(j, ctx, lifecycleEvent(fmt.Sprintf("queued-%d", i), 1)))
	}
	waitFor(t, "appends to queue behind the request in flight", func() bool { return j.writers[0].queueLen() == queued })
	release()
	require.NoError(t, receive(t, first))
	for _, r := range results {
		require.NoError(t, receive(t, r))
	}
	assert.Equal(t, []int{1, queued}, seen.snapshot(), "one request in flight, then one carrying everything that queued")
	_, stats := replayAll(t, j)
	assert.Equal(t, queued+1, stats.Records)
}

func TestKafkaBatchLimits(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1, BatchRecordsMax: 8})
	arrived, release := kfaketest.HoldNextProduce(t, e.cluster)
	seen := observeProduces(e.cluster)
	ctx := testContext(t)
	first := appendAsync(j, ctx, lifecycleEvent("first", 1))
	<-arrived
	var results []<-chan error
	for i := range 20 {
		results = append(results, appendAsync(j, ctx, lifecycleEvent(fmt.Sprintf("queued-%d", i), 1)))
	}
	waitFor(t, "appends to queue", func() bool { return j.writers[0].queueLen() == 20 })
	release()
	require.NoError(t, receive(t, first))
	for _, r := range results {
		require.NoError(t, receive(t, r))
	}
	assert.Equal(t, []int{1, 8, 8, 4}, seen.snapshot())
}

func TestKafkaQueueBoundFailsFast(t *testing.T) {
	e := startTestBroker(t)
	const bound = 8
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1, QueueLenMax: bound})
	arrived, release := kfaketest.HoldNextProduce(t, e.cluster)
	ctx := testContext(t)
	var results []<-chan error
	results = append(results, appendAsync(j, ctx, lifecycleEvent("o-0", 1)))
	<-arrived
	for i := 1; i < bound; i++ {
		results = append(results, appendAsync(j, ctx, lifecycleEvent(fmt.Sprintf("o-%d", i), 1)))
	}
	waitFor(t, "the queue to fill", func() bool { return j.pending.Load() == bound })
	err := j.Append(ctx, lifecycleEvent("one-too-many", 1))
	assert.ErrorIs(t, err, order.ErrJournalUnavailable)
	assert.ErrorContains(t, err, "queue full")
	release()
	for _, r := range results {
		require.NoError(t, receive(t, r))
	}
	require.NoError(t, j.Append(ctx, lifecycleEvent("room-again", 1)), "the bound counts only appends not yet done")
}

func TestKafkaCallerLeavingBeforeAndAfterSending(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	arrived, release := kfaketest.HoldNextProduce(t, e.cluster)

	sentCtx, leaveSent := context.WithCancel(testContext(t))
	sent := appendAsync(j, sentCtx, lifecycleEvent("sent", 1))
	<-arrived
	queuedCtx, leaveQueued := context.WithCancel(testContext(t))
	queued := appendAsync(j, queuedCtx, lifecycleEvent("queued", 1))
	waitFor(t, "the second append to queue", func() bool { return j.writers[0].queueLen() == 1 })

	leaveQueued()
	err := receive(t, queued)
	assert.ErrorIs(t, err, order.ErrJournalUnavailable, "left while queued: withdrawn, never sent")
	assert.Zero(t, j.writers[0].queueLen())

	leaveSent()
	err = receive(t, sent)
	assert.ErrorIs(t, err, order.ErrOutcomeUnknown, "left after sending: the request runs on")

	release()
	ctx := testContext(t)
	got, err := j.Load(ctx, "sent")
	require.NoError(t, err)
	assert.Len(t, got, 1, "the held request completed after its caller left")
	got, err = j.Load(ctx, "queued")
	require.NoError(t, err)
	assert.Empty(t, got, "a withdrawn append is never written")
	waitFor(t, "the in-flight count to drain", func() bool { return j.pending.Load() == 0 })
}

func TestKafkaLoadWaitsForTheRequestInFlight(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	arrived, release := kfaketest.HoldNextProduce(t, e.cluster)
	ctx, leave := context.WithCancel(testContext(t))
	done := appendAsync(j, ctx, lifecycleEvent("settle-me", 1))
	<-arrived
	leave()
	require.ErrorIs(t, receive(t, done), order.ErrOutcomeUnknown)

	// The append has returned, so Load must either show it or be sure it
	// will never appear: it has to wait for the held request.
	type loaded struct {
		events []order.Event
		err    error
	}
	loads := make(chan loaded, 1)
	go func() {
		events, err := j.Load(testContext(t), "settle-me")
		loads <- loaded{events, err}
	}()
	waitFor(t, "Load to wait for the request in flight", func() bool { return j.writers[0].settling.Load() == 1 })
	release()
	got := <-loads
	require.NoError(t, got.err)
	assert.Equal(t, []order.Event{lifecycleEvent("settle-me", 1)}, got.events)
}

func TestKafkaBrokerAnswersAreClassified(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inject  func(c *kfake.Cluster)
		want    error
		written bool
	}{
		{"NotLeader", func(c *kfake.Cluster) { kfaketest.AnswerNextProduce(c, kerr.NotLeaderForPartition.Code) }, order.ErrJournalUnavailable, false},
		{"NotEnoughReplicas", func(c *kfake.Cluster) { kfaketest.AnswerNextProduce(c, kerr.NotEnoughReplicas.Code) }, order.ErrJournalUnavailable, false},
		{"UnknownTopicOrPartition", func(c *kfake.Cluster) { kfaketest.AnswerNextProduce(c, kerr.UnknownTopicOrPartition.Code) }, order.ErrJournalUnavailable, false},
		{"RequestTimedOutNotWritten", func(c *kfake.Cluster) { kfaketest.AnswerNextProduce(c, kerr.RequestTimedOut.Code) }, order.ErrOutcomeUnknown, false},
		{"UnknownServerError", func(c *kfake.Cluster) { kfaketest.AnswerNextProduce(c, kerr.UnknownServerError.Code) }, order.ErrOutcomeUnknown, false},
		// kfake's faults append first and then answer with these codes,
		// as a real broker can.
		{"RequestTimedOutWritten", func(c *kfake.Cluster) {
			c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut})
		}, order.ErrOutcomeUnknown, true},
		{"NotEnoughReplicasAfterAppend", func(c *kfake.Cluster) {
			c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicasAfterAppend})
		}, order.ErrOutcomeUnknown, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := startTestBroker(t)
			j := openTestJournal(t, e, KafkaConfig{Partitions: 2})
			ctx := testContext(t)
			tc.inject(e.cluster)
			err := j.Append(ctx, lifecycleEvent("faulted", 1))
			require.ErrorIs(t, err, tc.want)
			got, err := j.Load(ctx, "faulted")
			require.NoError(t, err)
			assert.Equal(t, tc.written, len(got) == 1, "written: %v", got)
			require.NoError(t, j.Append(ctx, lifecycleEvent("after", 1)), "the next append goes through")
		})
	}
}

func TestKafkaUnansweredRequestEndsAtItsDeadline(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	// Handled without an answer: the broker keeps the connection and
	// never replies.
	e.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) { return nil, nil, true })
	setProduceTimeout(j, testProduceTimeout)
	err := j.Append(testContext(t), lifecycleEvent("unanswered", 1))
	assert.ErrorIs(t, err, order.ErrOutcomeUnknown)
	setProduceTimeout(j, testProduceTimeoutRoomy)
	require.NoError(t, j.Append(testContext(t), lifecycleEvent("answered", 1)), "a new connection serves the next request")
}

func TestKafkaBrokerStopped(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 2})
	ctx := testContext(t)
	require.NoError(t, j.Append(ctx, lifecycleEvent("before", 1)))
	e.Close()
	setProduceTimeout(j, testProduceTimeout)
	for i := range 3 {
		start := time.Now()
		err := j.Append(ctx, lifecycleEvent(fmt.Sprintf("after-%d", i), 1))
		require.Error(t, err)
		assert.True(t, errorsIsAny(err, order.ErrJournalUnavailable, order.ErrOutcomeUnknown), "%v", err)
		t.Logf("append %d with the broker stopped: %v", i, err)
		// Bounded by the request's own deadline, with generous slack
		// for a loaded machine; not a measure of speed.
		assert.Less(t, time.Since(start), testProduceTimeout+testSlack)
	}
	require.NoError(t, j.Close())
}

func TestKafkaCloseSendsWhatIsQueued(t *testing.T) {
	dir := t.TempDir()
	e := startTestBrokerIn(t, dir)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	arrived, release := kfaketest.HoldNextProduce(t, e.cluster)
	ctx := testContext(t)
	results := []<-chan error{appendAsync(j, ctx, lifecycleEvent("c-0", 1))}
	<-arrived
	for i := 1; i < 10; i++ {
		results = append(results, appendAsync(j, ctx, lifecycleEvent(fmt.Sprintf("c-%d", i), 1)))
	}
	waitFor(t, "appends to queue", func() bool { return j.writers[0].queueLen() == 9 })
	closed := make(chan error, 1)
	go func() { closed <- j.Close() }()
	waitFor(t, "Close to start", func() bool {
		w := j.writers[0]
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.closed
	})
	assert.ErrorIs(t, j.Append(ctx, lifecycleEvent("too-late", 1)), ErrClosed)
	release()
	require.NoError(t, receive(t, closed))
	for _, r := range results {
		require.NoError(t, receive(t, r), "queued before Close: sent by Close")
	}
	j2 := openTestJournal(t, e, KafkaConfig{})
	_, stats := replayAll(t, j2)
	assert.Equal(t, 10, stats.Records)
}

func TestKafkaReplayCountsAndSkipsUndecodableRecords(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 3})
	ctx := testContext(t)
	want := lifecycle("good", 3)
	require.NoError(t, j.Append(ctx, want[0]))
	// Another writer's records in our partition: garbage, a valid value
	// under the wrong key, and no value at all.
	goodValue, err := EncodeEvent(want[0])
	require.NoError(t, err)
	p := j.PartitionOf("good")
	produceRaw(t, e, p,
		kafka.Record{Key: kafka.NewBytes([]byte("good")), Value: kafka.NewBytes([]byte("{not json"))},
		kafka.Record{Key: kafka.NewBytes([]byte("other")), Value: kafka.NewBytes(goodValue.Value)},
		kafka.Record{Key: kafka.NewBytes([]byte("good"))},
	)
	require.NoError(t, j.Append(ctx, want[1]))
	require.NoError(t, j.Append(ctx, want[2]))

	got, stats := replayAll(t, j)
	assert.Equal(t, want, got)
	assert.Equal(t, order.ReplayStats{Records: 6, Undecodable: 3}, stats)
	loaded, err := j.Load(ctx, "good")
	require.NoError(t, err)
	assert.Equal(t, want, loaded)
}

// rawClient is a plain kafka-go client for the test broker, as another
// program would use. Its own transport is closed with the test: the default
// one would keep polling a stopped broker for the rest of the run. Its first
// metadata request, whose deadline is the transport's MetadataTTL (6 s by
// default), and its dials get room for a busy machine.
func rawClient(t testing.TB, e *Embedded) *kafka.Client {
	transport := &kafka.Transport{MetadataTTL: testTimeout / 4, DialTimeout: testTimeout / 4}
	t.Cleanup(transport.CloseIdleConnections)
	return &kafka.Client{Addr: kafka.TCP(e.Addr()), Transport: transport}
}

func TestKafkaReadsAcrossManyFetches(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 3})
	want := appendConcurrently(t, j)
	j.src.fetchBytes = 1 // one batch per fetch: many fetches per partition
	var fetches atomic.Int64
	e.cluster.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		fetches.Add(1)
		return nil, nil, false
	})
	got, stats := replayAll(t, j)
	assert.Greater(t, fetches.Load(), int64(10*j.Partitions()), "several fetches per partition")
	assert.Equal(t, len(got), stats.Records)
	assert.Equal(t, want, byOrder(got))
	for _, id := range []string{"w0-o0", "w63-o3", "w31-o2"} {
		events, err := j.Load(testContext(t), id)
		require.NoError(t, err)
		assert.Equal(t, want[id], events)
	}
}

// A partition whose leader does not serve it ends a read after a few
// attempts, with the broker's error; the journal is not left half-read.
func TestKafkaFetchErrorsEndReadsCleanly(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 4})
	ctx := testContext(t)
	for i := range 8 {
		require.NoError(t, j.Append(ctx, lifecycleEvent(fmt.Sprintf("o-%d", i), 1)))
	}
	kfaketest.AnswerFetches(e.cluster, func(p *kmsg.FetchResponseTopicPartition) { p.ErrorCode = kerr.NotLeaderForPartition.Code })
	calls := 0
	_, err := j.Replay(ctx, func(order.Event) error { calls++; return nil })
	assert.ErrorIs(t, err, kerr.NotLeaderForPartition)
	assert.ErrorContains(t, err, fmt.Sprintf("%d fetches failed in a row", readAttemptsMax))
	assert.Zero(t, calls)
	_, err = j.Load(ctx, "o-1")
	assert.ErrorIs(t, err, kerr.NotLeaderForPartition)
}

// A fetch that fails (a leader that moved, say) is tried again on a new
// connection, from the first record not yet read: the read goes on.
func TestKafkaReadsGoOnAfterAFailedFetch(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	want := lifecycle("retry", 5)
	for _, ev := range want {
		require.NoError(t, j.Append(testContext(t), ev))
	}
	j.src.fetchBytes = 1 // a fetch per batch: the failure falls mid-read
	var fetches atomic.Int64
	e.cluster.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.KeepControl()
		if n := fetches.Add(1); n != 3 && n != 4 {
			return nil, nil, false
		}
		resp := req.(*kmsg.FetchRequest).ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.NotLeaderForPartition.Code
		return resp, nil, true
	})
	got, stats := replayAll(t, j)
	assert.Equal(t, want, got, "every record once, in order")
	assert.Equal(t, order.ReplayStats{Records: 5}, stats)
	assert.Greater(t, fetches.Load(), int64(5), "the failed fetches were made again")
}

// A batch whose CRC is wrong (a damaged log) ends a replay with
// ErrBatchDamaged: reading it again gives the same answer, and skipping it
// would hide the damage.
func TestKafkaReadsStopAtADamagedBatch(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	require.NoError(t, j.Append(testContext(t), lifecycleEvent("o-1", 1)))
	f, err := j.src.openRawFetcher(testContext(t), 0)
	require.NoError(t, err)
	batch, err := f.fetch(testContext(t), 0)
	require.NoError(t, err)
	batch = bytes.Clone(batch)
	f.close()
	batch[len(batch)-2] ^= 1
	kfaketest.AnswerFetches(e.cluster, func(p *kmsg.FetchResponseTopicPartition) {
		p.HighWatermark, p.LastStableOffset, p.RecordBatches = 1, 1, batch
	})
	_, err = j.Replay(testContext(t), func(order.Event) error { return nil })
	assert.ErrorIs(t, err, ErrBatchDamaged)
	assert.ErrorContains(t, err, "CRC")
}

func produceRaw(t testing.TB, e *Embedded, partition int, records ...kafka.Record) {
	t.Helper()
	c := rawClient(t, e)
	resp, err := c.Produce(testContext(t), &kafka.ProduceRequest{
		Topic:        DefaultTopic,
		Partition:    partition,
		RequiredAcks: kafka.RequireAll,
		Records:      kafka.NewRecordReader(records...),
	})
	require.NoError(t, err)
	require.NoError(t, resp.Error)
}

func TestKafkaRecordsReadLikeCloudEvents(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 4})
	ctx := testContext(t)
	events := append(lifecycle("ce-1", 2), lifecycle("ce-2", 1)...)
	for _, ev := range events {
		require.NoError(t, j.Append(ctx, ev))
	}

	// An outside consumer (franz-go, not kafka-go) that knows nothing of
	// orderd.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addr()), kgo.ConsumeTopics(DefaultTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	var records []*kgo.Record
	for len(records) < len(events) {
		fetches := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err())
		for _, fe := range fetches.Errors() {
			require.NoError(t, fe.Err)
		}
		records = append(records, fetches.Records()...)
	}
	byID := make(map[string]order.Event)
	for _, ev := range events {
		byID[ev.EventID] = ev
	}
	partitioner := kgo.StickyKeyPartitioner(nil).ForTopic(DefaultTopic)
	for _, r := range records {
		headers := make(map[string]string)
		for _, h := range r.Headers {
			headers[h.Key] = string(h.Value)
		}
		ev, ok := byID[headers["ce_id"]]
		require.True(t, ok, "ce_id %q", headers["ce_id"])
		assert.Equal(t, map[string]string{
			"ce_specversion": "1.0",
			"ce_id":          ev.EventID,
			"ce_source":      "orderd",
			"ce_type":        "orderd.order.transitioned",
			"ce_subject":     ev.OrderID,
			"ce_time":        ev.At.Format("2006-01-02T15:04:05.000000000Z07:00"),
			"content-type":   "application/json",
		}, headers)
		assert.Len(t, r.Headers, 7, "no header twice")
		assert.Equal(t, ev.OrderID, string(r.Key))
		assert.Equal(t, partitioner.Partition(r, 4), int(r.Partition), "where franz-go would put it")
		var value map[string]any
		require.NoError(t, json.Unmarshal(r.Value, &value))
		assert.Len(t, value, 11, "the ten members of DESIGN §4 and request_digest")
		assert.Equal(t, ev.Version == 1, value["from"] == nil, "from is null on creation only")
	}
}

func TestKafkaTopicSetup(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 3})
	assert.Equal(t, 3, j.Partitions())

	c := rawClient(t, e)
	resp, err := c.DescribeConfigs(testContext(t), &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: DefaultTopic, ConfigNames: []string{"min.insync.replicas"},
	}}})
	require.NoError(t, err)
	require.Len(t, resp.Resources, 1)
	require.Len(t, resp.Resources[0].ConfigEntries, 1)
	assert.Equal(t, "1", resp.Resources[0].ConfigEntries[0].ConfigValue)

	// An existing topic keeps its partition count whatever is configured.
	j2 := openTestJournal(t, e, KafkaConfig{Partitions: 8})
	assert.Equal(t, 3, j2.Partitions())
	assert.Equal(t, PartitionOf("some-order", 3), j2.PartitionOf("some-order"))
}

// On a busy machine the first metadata request of a kafka-go transport can
// miss its deadline (metadataTTL): the broker has not read or answered it in
// time. Here the broker leaves unanswered the first metadata request of the
// journal's writes transport, and every metadata request for two seconds
// after the topic's settings were checked, which is when the reads
// transport asks its first. Opening asks again on each transport and
// succeeds, and the journal writes and reads.
func TestKafkaOpensDespiteSlowFirstMetadataAnswers(t *testing.T) {
	t.Parallel()
	e := startTestBroker(t)
	var mu sync.Mutex
	first, dropped := true, 0
	var dropUntil time.Time
	e.cluster.ControlKey(int16(kmsg.DescribeConfigs), func(kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		dropUntil = time.Now().Add(2 * time.Second)
		return nil, nil, false
	})
	e.cluster.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		if first || time.Now().Before(dropUntil) {
			first = false
			dropped++
			return nil, nil, true // no answer: the client's deadline passes
		}
		return nil, nil, false
	})
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	j := openTestJournal(t, e, KafkaConfig{Partitions: 2, Logger: logger})
	mu.Lock()
	assert.GreaterOrEqual(t, dropped, 2, "metadata answers withheld")
	mu.Unlock()
	assert.Contains(t, logs.String(), "transport=writes", "the writes transport asked again")
	assert.Contains(t, logs.String(), "transport=reads", "the reads transport asked again")

	ctx := testContext(t)
	want := lifecycle("slow-metadata", 3)
	for _, ev := range want {
		require.NoError(t, j.Append(ctx, ev))
	}
	got, err := j.Load(ctx, "slow-metadata")
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

// TestKafkaOpensDespiteASlowNewConnection: creating the topic goes to the
// controller over a connection of its own, whose first exchange
// (ApiVersions) must finish within the dial deadline. On a busy machine
// the broker answered too late and opening failed with "read pipe: i/o
// timeout"; it now tries again. Here the answer to that exchange is
// withheld once.
func TestKafkaOpensDespiteASlowNewConnection(t *testing.T) {
	t.Parallel()
	e := startTestBroker(t)
	var mu sync.Mutex
	metadataAnswered, withheld := false, 0
	e.cluster.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		metadataAnswered = true
		return nil, nil, false
	})
	e.cluster.ControlKey(int16(kmsg.ApiVersions), func(kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		if metadataAnswered && withheld == 0 {
			withheld++
			return nil, nil, true // no answer: the connection's deadline passes
		}
		return nil, nil, false
	})
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	j := openTestJournal(t, e, KafkaConfig{Partitions: 2, Logger: logger})
	mu.Lock()
	assert.Equal(t, 1, withheld, "an ApiVersions answer withheld after the first metadata")
	mu.Unlock()
	assert.Contains(t, logs.String(), "timed out while opening; asking again")

	ctx := testContext(t)
	want := lifecycle("slow-connection", 3)
	for _, ev := range want {
		require.NoError(t, j.Append(ctx, ev))
	}
	got, err := j.Load(ctx, "slow-connection")
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

// lockedBuffer is a bytes.Buffer that a logger may write from several
// goroutines while a test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestMinInsyncReplicas(t *testing.T) {
	for rf, want := range map[int]int{1: 1, 2: 1, 3: 2, 5: 4} {
		assert.Equal(t, want, minInsyncReplicas(rf), "replication factor %d", rf)
	}
}

func TestOpenKafkaRefusesBadConfig(t *testing.T) {
	ctx := testContext(t)
	for name, cfg := range map[string]KafkaConfig{
		"NoBrokers":     {},
		"TooManyParts":  {Brokers: []string{"127.0.0.1:1"}, Partitions: PartitionsMax + 1},
		"NegativeLimit": {Brokers: []string{"127.0.0.1:1"}, QueueLenMax: -1},
		"UnknownCodec":  {Brokers: []string{"127.0.0.1:1"}, Compression: "brotli"},
	} {
		_, err := OpenKafka(ctx, cfg)
		assert.Error(t, err, name)
	}
}

func TestEmbeddedRestartFindsItsRecords(t *testing.T) {
	dir := t.TempDir()
	e := startTestBrokerIn(t, dir)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 4})
	want := appendConcurrently(t, j)
	require.NoError(t, j.Close())
	e.Close()

	e2 := startTestBrokerIn(t, dir)
	j2 := openTestJournal(t, e2, KafkaConfig{Partitions: 4})
	start := time.Now()
	got, stats := replayAll(t, j2)
	elapsed := time.Since(start)
	t.Logf("replayed %d records in %v (%.0f records/s, race detector %v)", stats.Records, elapsed, float64(stats.Records)/elapsed.Seconds(), raceEnabled)
	assert.Equal(t, want, byOrder(got), "every record back, field for field, in order")
	require.NoError(t, j2.Append(testContext(t), lifecycleEvent("after-restart", 1)))
}

func TestOpenKafkaFailsFastWithoutABroker(t *testing.T) {
	e := startTestBroker(t)
	addr := e.Addr()
	e.Close() // nothing listens there now
	_, err := OpenKafka(testContext(t), KafkaConfig{Brokers: []string{addr}, Logger: testLogger(t)})
	assert.ErrorContains(t, err, "connection refused")
}

func TestKafkaCloseEndsItsGoroutines(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 8})
	require.NoError(t, j.Append(testContext(t), lifecycleEvent("o", 1)))
	require.Equal(t, 8, countGoroutines("(*partitionWriter).run"))
	require.NoError(t, j.Close())
	// Close has waited for every writer's Done; a writer's stack may still
	// show for the instant between its deferred Done and its return.
	waitFor(t, "the writers to end", func() bool { return countGoroutines("(*partitionWriter).run") == 0 })
	assert.Error(t, j.transport.Context.Err(), "the transport's background goroutines are told to stop")
}

func countGoroutines(frame string) int {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	return strings.Count(stacks, frame)
}

func TestEmbeddedLocksItsDataDir(t *testing.T) {
	dir := t.TempDir()
	e := startTestBrokerIn(t, dir)
	_, err := StartEmbedded(EmbeddedConfig{DataDir: dir})
	assert.ErrorContains(t, err, "in use")
	e.Close()
	e2, err := StartEmbedded(EmbeddedConfig{DataDir: dir})
	require.NoError(t, err, "free again after Close")
	e2.Close()
}

func TestEmbeddedRefusesNonLoopback(t *testing.T) {
	_, err := StartEmbedded(EmbeddedConfig{DataDir: t.TempDir(), Addr: "0.0.0.0:0"})
	assert.ErrorContains(t, err, "not loopback")
	_, err = StartEmbedded(EmbeddedConfig{})
	assert.Error(t, err, "no data directory")
}

func errorsIsAny(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
