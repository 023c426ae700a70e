package persistence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence/store"
)

// Defaults of KafkaConfig. Zero fields take them.
const (
	// DefaultTopic is the audit log's topic (DESIGN §4).
	DefaultTopic = "orders.transitions"
	// DefaultPartitions is the partition count a new topic is created
	// with on a real cluster (DESIGN §7).
	DefaultPartitions = 16
	// DefaultReplicationFactor suits the embedded broker, which has one
	// node; a real cluster should be given 3.
	DefaultReplicationFactor = 1
	// DefaultProduceTimeout is each produce request's own deadline, after
	// which its appends end as outcome-unknown. Half of it is what the
	// broker may spend waiting for the in-sync replicas (kafka-go sends
	// half the deadline as the request's timeout), so a healthy broker
	// answers REQUEST_TIMED_OUT before the client gives up.
	DefaultProduceTimeout = 5 * time.Second
	// DefaultQueueLenMax bounds the appends queued or in flight over all
	// partitions: while the broker is down, appends fail fast beyond it
	// instead of piling up in memory (~1 KiB each).
	DefaultQueueLenMax = 8192
	// DefaultBatchRecordsMax bounds the records in one produce request. It
	// is a limit, not a target: a request carries what queued while the
	// previous one was in flight, which is about the number of concurrent
	// callers. The bound keeps a burst from becoming one huge request that
	// every append in it waits on.
	DefaultBatchRecordsMax = 1024
	// DefaultBatchBytesMax bounds the bytes of one produce request, half
	// of Kafka's default message.max.bytes (1 MiB), so a batch is never
	// rejected as too large.
	DefaultBatchBytesMax = 512 << 10
	// DefaultCompression is the codec of produced batches. A batch of
	// our records (JSON and CloudEvents headers that repeat from record
	// to record) shrinks about six times with lz4: a log of 4,000,000
	// records took 303 MB instead of 1.9 GB, and a restart, which is
	// mostly the broker reading and serving those bytes, was ready in
	// 6.5–8.1 s instead of 9.0–14.1 s. lz4 is the cheapest of Kafka's
	// codecs to expand; every Kafka client reads it.
	DefaultCompression = "lz4"
	// PartitionsMax bounds the partitions the journal serves: it runs a
	// goroutine and may hold a connection per partition.
	PartitionsMax = 1024
)

// Timeouts and sizes of the requests that are not appends.
const (
	// adminTimeout bounds opening: metadata, topic creation.
	adminTimeout = 30 * time.Second
	// offsetsTimeout bounds the two ListOffsets round trips a replay or a
	// load starts with. As long as fetchTimeout: 10 s was too short on a
	// busy machine (two test runs under -race sharing two cores ended a
	// replay with "listing offsets: write pipe: i/o timeout", the broker
	// not having read the request in time), and a broker that does not
	// answer at all costs a bounded read no more than a fetch would.
	offsetsTimeout = 30 * time.Second
	// fetchTimeout bounds one fetch round trip while reading the log.
	fetchTimeout = 30 * time.Second
	// fetchWaitMax is how long the broker may wait for data. The readers
	// only ask for offsets below the end they measured, where data is
	// already there, so the broker never has to wait; it must stay far
	// below fetchTimeout, which is the connection's read deadline.
	fetchWaitMax = 500 * time.Millisecond
	// fetchBytesMax is the size of one fetch response: large enough that a
	// replay is a few hundred round trips per million records, small
	// enough that replayReadersMax of them fit in memory easily.
	fetchBytesMax = 4 << 20
	// dialTimeout bounds connecting to a broker, TLS and SASL included.
	dialTimeout = 5 * time.Second
	// idleTimeout closes connections unused this long.
	idleTimeout = 30 * time.Second
	// metadataTTL is how stale kafka-go's cached partition leaders may get:
	// after a leader moves, appends to its partitions fail (as
	// unavailable) until the next refresh. It is also the deadline of
	// kafka-go's own metadata requests, the first one included.
	metadataTTL = 3 * time.Second
	// openAttempts and openRetryPause: opening makes its requests up to
	// this often, this far apart, while they time out (retryTimeouts).
	// kafka-go asks the broker for metadata again within metadataTTL of a
	// failure, so the attempts span several of its requests, well within
	// adminTimeout.
	openAttempts   = 10
	openRetryPause = time.Second
	// clientID names orderd in the broker's logs and quotas.
	clientID = "orderd"
)

// KafkaConfig configures OpenKafka.
type KafkaConfig struct {
	Brokers []string // host:port of one or more brokers; required
	Topic   string   // DefaultTopic if empty

	// Partitions and ReplicationFactor are used when the topic has to be
	// created (defaults DefaultPartitions, DefaultReplicationFactor). An
	// existing topic keeps its own.
	Partitions        int
	ReplicationFactor int

	// RepairTopicConfig lets OpenKafka set an existing topic's retention
	// and cleanup so that nothing is deleted, rather than refuse the
	// topic: for the embedded broker, which orderd owns. On any other
	// cluster those settings are the operator's (topic_config.go).
	RepairTopicConfig bool

	Logger *slog.Logger // nil discards

	// Dial connects to a broker; nil dials TCP. Embedded.Dial connects
	// to an embedded broker in the same process without TCP.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)

	// Security secures every connection the journal makes (TLS beneath
	// Dial's connection, then SASL); nil: plaintext, no SASL.
	Security *Security

	// Compression is the codec of produced batches: none, gzip, snappy,
	// lz4 or zstd; DefaultCompression if empty.
	Compression string

	ProduceTimeout  time.Duration // DefaultProduceTimeout if zero
	QueueLenMax     int           // DefaultQueueLenMax if zero
	BatchRecordsMax int           // DefaultBatchRecordsMax if zero
	BatchBytesMax   int           // DefaultBatchBytesMax if zero

	Metrics *Metrics // nil records nothing

	// Clustered makes the journal one node's of a cluster: it writes a
	// partition only under its own claim, from TakeOver to GiveUp
	// (claims.go). Otherwise it writes every partition, under the latest
	// claim it knows.
	Clustered bool
}

func (c KafkaConfig) withDefaults() (KafkaConfig, error) {
	if len(c.Brokers) == 0 {
		return c, errors.New("persistence: no Kafka brokers configured")
	}
	setDefault(&c.Topic, DefaultTopic)
	setDefault(&c.Partitions, DefaultPartitions)
	setDefault(&c.ReplicationFactor, DefaultReplicationFactor)
	setDefault(&c.ProduceTimeout, DefaultProduceTimeout)
	setDefault(&c.QueueLenMax, DefaultQueueLenMax)
	setDefault(&c.BatchRecordsMax, DefaultBatchRecordsMax)
	setDefault(&c.BatchBytesMax, DefaultBatchBytesMax)
	setDefault(&c.Compression, DefaultCompression)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Partitions < 1 || c.Partitions > PartitionsMax:
		return c, fmt.Errorf("persistence: %d partitions, want 1 to %d", c.Partitions, PartitionsMax)
	case c.ReplicationFactor < 1:
		return c, fmt.Errorf("persistence: replication factor %d, want at least 1", c.ReplicationFactor)
	case c.ProduceTimeout < 0 || c.QueueLenMax < 0 || c.BatchRecordsMax < 0 || c.BatchBytesMax < 0:
		return c, errors.New("persistence: negative journal limit")
	}
	if err := CheckCompression(c.Compression); err != nil {
		return c, err
	}
	return c, nil
}

// dialTCP connects to a broker over TCP within dialTimeout: the raw fetch
// path's connection when KafkaConfig.Dial is nil, and Embedded.Dial's for any
// address but its own.
var dialTCP = (&net.Dialer{Timeout: dialTimeout}).DialContext

// compressionCodecs are the codecs a journal may write with, by the names
// Kafka's compression.type uses.
var compressionCodecs = map[string]compress.Compression{
	"none": compress.None, "gzip": compress.Gzip, "snappy": compress.Snappy, "lz4": compress.Lz4, "zstd": compress.Zstd,
}

// CheckCompression reports whether name is a codec KafkaConfig.Compression
// accepts.
func CheckCompression(name string) error {
	if _, ok := compressionCodecs[name]; !ok {
		return fmt.Errorf("persistence: compression %q: want none, gzip, snappy, lz4 or zstd", name)
	}
	return nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// minInsyncReplicas is what makes acks=all mean "on more than one broker" on
// a real cluster while still tolerating one broker down: RF-1, at least 1.
func minInsyncReplicas(rf int) int { return max(1, rf-1) }

// KafkaJournal is the order.Journal on a Kafka topic, written and read with
// kafka-go.
//
// Appends are group-committed per partition: each partition has one goroutine
// that keeps at most one produce request in flight, carrying every append that
// queued while the previous request was out (up to BatchRecordsMax records and
// BatchBytesMax bytes). There is no timer: a lone append is sent at once, and
// a busy server writes large batches. Requests ask for acks from all in-sync
// replicas and are never retried, because kafka-go has no idempotent producer
// and a retry could write a record twice; the caller learns the outcome (nil,
// ErrJournalUnavailable or ErrOutcomeUnknown) and decides.
//
// Replay reads every partition up to the end offsets it measured at its start,
// several partitions at once, and calls fn on the caller's goroutine. Replay
// and Load fetch raw record batches over their own connection to each
// partition's leader and read them in place, headers skipped
// (log_reader.go, fetch_raw.go, batch.go): kafka-go decodes every header of
// every record into new strings, which was most of a restart's cost, and
// believes batches that lie about their size.
type KafkaJournal struct {
	cfg           KafkaConfig
	log           *slog.Logger
	transport     *kafka.Transport
	readTransport *kafka.Transport   // reads' metadata and offsets, apart from produce requests
	stopTrans     context.CancelFunc // ends the transports' background goroutines
	producer      *kafka.Client
	src           logSource // where reads fetch from (log_reader.go)
	partitions    int
	codec         compress.Compression // cfg.Compression

	writers     []*partitionWriter
	pending     atomic.Int64 // appends queued or in flight
	writersDone sync.WaitGroup

	mu          sync.Mutex // guards closed and reads.Add
	closed      bool
	reads       sync.WaitGroup
	readsCtx    context.Context // cancelled by Close to end reads
	cancelReads context.CancelFunc
	closeOnce   sync.Once

	// foreign is the ForeignRecordNotifier's function (foreign_writes.go).
	foreign atomic.Pointer[func(order.Event)]
	// foreignInventory is the ForeignInventoryNotifier's.
	foreignInventory atomic.Pointer[func(string)]

	// claims is what the journal knows of the partitions' claims; every
	// read of the log is filtered by their rule (claims.go).
	claims *claimTable

	// loadStore, if not nil, is the state store Load reads below its
	// checkpoint (store_load.go); Load holds loadStoreMu for reading
	// while it uses it.
	loadStoreMu sync.RWMutex
	loadStore   *store.Store

	undecodableLogged atomic.Int64
	fetchBytes        int // fetchBytesMax; tests lower it to force many fetches
	health            journalHealth
}

var _ order.Journal = (*KafkaJournal)(nil)

// OpenKafka connects to the brokers, creates the topic if it is missing
// (with cfg's partitions and replication factor, and min.insync.replicas one
// below the replication factor), learns its actual partition count and starts
// the partition writers. A first metadata request that times out is made
// again (retryTimeouts), as is creating and checking the topic. ctx bounds opening only.
func OpenKafka(ctx context.Context, cfg KafkaConfig) (*KafkaJournal, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	transCtx, stopTrans := context.WithCancel(context.Background())
	newTransport := func(dial func(context.Context, string, string) (net.Conn, error)) *kafka.Transport {
		return &kafka.Transport{
			DialTimeout: dialTimeout,
			IdleTimeout: idleTimeout,
			MetadataTTL: metadataTTL,
			// Only our topic's metadata: on a shared cluster the full
			// metadata can be large, and kafka-go refreshes it every TTL.
			MetadataTopics: []string{cfg.Topic},
			ClientID:       clientID,
			Context:        transCtx,
			Dial:           dial, // nil: kafka-go's TCP dialer
			// Above the dial function's TLS.
			SASL: cfg.Security.SASL(),
		}
	}
	// TLS in the dial function, as the log reader's own connections
	// have it (security.go).
	dial := cfg.Security.Dial(cfg.Dial)
	transport := newTransport(dial)
	// The reads' metadata and ListOffsets requests have connections of
	// their own, so that they never wait behind a large produce request.
	readTransport := newTransport(dial)
	addr := kafka.TCP(cfg.Brokers...)
	readsCtx, cancelReads := context.WithCancel(context.Background())
	j := &KafkaJournal{
		cfg:           cfg,
		log:           cfg.Logger.With("topic", cfg.Topic),
		transport:     transport,
		readTransport: readTransport,
		stopTrans:     stopTrans,
		// Timeout is the produce request's deadline; kafka-go also sends
		// half of it to the broker as the time it may wait for replicas.
		producer: &kafka.Client{Addr: addr, Timeout: cfg.ProduceTimeout, Transport: transport},
		src: logSource{
			topic: cfg.Topic, meta: &kafka.Client{Addr: addr, Transport: readTransport},
			dial: cfg.Dial, security: cfg.Security, clientID: clientID, fetchBytes: fetchBytesMax,
		},
		readsCtx:    readsCtx,
		cancelReads: cancelReads,
		codec:       compressionCodecs[cfg.Compression],
	}
	j.partitions, err = j.ensureTopic(ctx)
	if err == nil {
		err = j.warmReadTransport(ctx)
	}
	if err != nil {
		cancelReads()
		j.closeTransport()
		return nil, cfg.Security.ExplainBrokerError(ctx, cfg.Dial, cfg.Brokers[0], err)
	}
	j.claims = newClaimTable()
	j.claims.metrics = cfg.Metrics
	j.src.claims = j.claims
	j.writers = make([]*partitionWriter, j.partitions)
	for p := range j.writers {
		j.writers[p] = newPartitionWriter(j, p)
	}
	for _, w := range j.writers {
		j.writersDone.Add(1)
		go w.run()
	}
	j.reads.Add(1) // Close cancels readsCtx and waits for reads
	go j.probeHealth()
	return j, nil
}

// ensureTopic creates the topic if it does not exist, refuses it if its
// settings could delete records (topic_config.go), and returns its partition
// count.
func (j *KafkaJournal) ensureTopic(ctx context.Context) (n int, err error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	admin := &kafka.Client{Addr: j.producer.Addr, Transport: j.transport}
	err = j.retryTimeouts(ctx, "writes", func() (err error) {
		n, err = j.ensureTopicOnce(ctx, admin)
		return err
	})
	return n, err
}

// ensureTopicOnce is one try of ensureTopic. Each step may be repeated:
// creating a topic that exists is as good as creating it.
func (j *KafkaJournal) ensureTopicOnce(ctx context.Context, admin *kafka.Client) (int, error) {
	topic, err := describeTopic(ctx, admin, j.cfg.Topic)
	if errors.Is(err, kafka.UnknownTopicOrPartition) {
		if err := j.createTopic(ctx, admin); err != nil {
			return 0, err
		}
		topic, err = describeTopic(ctx, admin, j.cfg.Topic)
	}
	if err != nil {
		return 0, fmt.Errorf("persistence: topic %s: %w", j.cfg.Topic, err)
	}
	n := len(topic.Partitions)
	for _, p := range topic.Partitions {
		if p.ID < 0 || p.ID >= n {
			return 0, fmt.Errorf("persistence: topic %s has partition %d among %d: not numbered 0..n-1", j.cfg.Topic, p.ID, n)
		}
	}
	switch {
	case n < 1 || n > PartitionsMax:
		return 0, fmt.Errorf("persistence: topic %s has %d partitions, want 1 to %d", j.cfg.Topic, n, PartitionsMax)
	case n != j.cfg.Partitions:
		j.log.Warn("topic exists with a different partition count; using the topic's",
			"partitions", n, "configured", j.cfg.Partitions)
	}
	rf := len(topic.Partitions[0].Replicas)
	if rf < j.cfg.ReplicationFactor {
		j.log.Warn("topic exists with fewer replicas than configured", "replication_factor", rf, "configured", j.cfg.ReplicationFactor)
	}
	if err := j.checkTopic(ctx, admin, rf); err != nil {
		return 0, fmt.Errorf("persistence: %w", err)
	}
	return n, nil
}

func (j *KafkaJournal) createTopic(ctx context.Context, admin *kafka.Client) error {
	resp, err := admin.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic:             j.cfg.Topic,
		NumPartitions:     j.cfg.Partitions,
		ReplicationFactor: j.cfg.ReplicationFactor,
		ConfigEntries:     topicCreateConfig(j.cfg.ReplicationFactor),
	}}})
	if err != nil {
		return fmt.Errorf("persistence: creating topic %s: %w", j.cfg.Topic, err)
	}
	// Another node may have created it first: that is as good.
	if err := resp.Errors[j.cfg.Topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("persistence: creating topic %s: %w", j.cfg.Topic, err)
	}
	j.log.Info("created topic", "partitions", j.cfg.Partitions, "replication_factor", j.cfg.ReplicationFactor,
		"min_insync_replicas", minInsyncReplicas(j.cfg.ReplicationFactor))
	return nil
}

// warmReadTransport makes the reads' transport learn the cluster now, so
// that a first metadata request that times out is tried again here rather
// than failing the first read.
func (j *KafkaJournal) warmReadTransport(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	err := j.retryTimeouts(ctx, "reads", func() error {
		_, err := j.src.meta.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{j.cfg.Topic}})
		return err
	})
	if err != nil {
		return fmt.Errorf("persistence: topic %s: %w", j.cfg.Topic, err)
	}
	return nil
}

// retryTimeouts runs one step of opening on a transport (named by which,
// for the log) and runs it again while it fails with a timeout, up to
// openAttempts times within ctx.
//
// On a busy machine a broker that is fine can miss the deadlines of a new
// connection: kafka-go's transport asks for metadata on its own goroutine
// with a deadline of metadataTTL and keeps a failure as its answer to every
// metadata request until a later one succeeds; and a connection's first
// exchange (ApiVersions) must finish within dialTimeout. In-process, the
// broker had not read the request in time ("write pipe: i/o timeout",
// "read pipe: i/o timeout"), and opening failed. Any other error (the
// broker's answer, a refused connection, a TLS or SASL failure, a topic
// setting refused) ends opening at once, as does ctx.
func (j *KafkaJournal) retryTimeouts(ctx context.Context, which string, step func() error) error {
	for attempt := 1; ; attempt++ {
		err := step()
		if err == nil || !isTimeout(err) || ctx.Err() != nil || attempt == openAttempts {
			return err
		}
		j.log.Warn("a request to the broker timed out while opening; asking again",
			"transport", which, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(openRetryPause):
		}
	}
}

// isTimeout reports whether err is a deadline that passed (a context's, a
// connection's or the broker's own REQUEST_TIMED_OUT).
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &t) && t.Timeout()
}

func describeTopic(ctx context.Context, admin *kafka.Client, name string) (kafka.Topic, error) {
	md, err := admin.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{name}})
	if err != nil {
		return kafka.Topic{}, err
	}
	for _, t := range md.Topics {
		if t.Name == name {
			return t, t.Error
		}
	}
	return kafka.Topic{}, kafka.UnknownTopicOrPartition
}

// Partitions returns the topic's partition count, read once at open.
// Adding partitions to the topic later moves orders to other partitions
// (the hash is taken modulo the count) and splits their histories: do not.
func (j *KafkaJournal) Partitions() int { return j.partitions }

// PartitionOf returns the partition that holds the order's records.
func (j *KafkaJournal) PartitionOf(orderID string) int { return PartitionOf(orderID, j.partitions) }

// Close stops accepting appends and reads, ends reads in progress, sends what
// is queued and waits for every produce request to finish, then closes the
// connections. It returns nil; calling it again does nothing.
func (j *KafkaJournal) Close() error {
	j.closeOnce.Do(func() {
		j.mu.Lock()
		j.closed = true
		j.mu.Unlock()
		for _, w := range j.writers {
			w.close()
		}
		j.cancelReads()
		j.reads.Wait()
		j.writersDone.Wait()
		j.closeTransport()
	})
	return nil
}

func (j *KafkaJournal) closeTransport() {
	j.transport.CloseIdleConnections()
	j.readTransport.CloseIdleConnections()
	j.stopTrans()
}

// beginRead registers a read so that Close can end it and wait for it. The
// returned context ends when ctx does or when Close starts.
func (j *KafkaJournal) beginRead(ctx context.Context) (context.Context, func(), error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil, nil, errClosed
	}
	j.reads.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(j.readsCtx, cancel)
	return ctx, func() {
		stop()
		cancel()
		j.reads.Done()
	}, nil
}
