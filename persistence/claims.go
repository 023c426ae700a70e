package persistence

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence/store"
)

// Claims: how the log, not the consumer group, decides who may write a
// partition (DESIGN §9).
//
// In a cluster the group's assignment says which node should write each
// partition, but the group is a lease: a node paused past its session (a
// long GC, SIGSTOP, a VM migration) wakes up still believing it owns its
// partitions, and its next produce reaches the log after its successor has
// started writing. So a node that takes a partition over first writes a
// claim record to it, and from then on stamps every record it writes with
// the claim's offset (the ce_orderdclaim header). The one rule every reader
// applies, at run time and at replay alike:
//
//	a record stamped with claim c (or none) at offset o is skipped when the
//	partition holds a claim c' with c < c' < o.
//
// So whatever a deposed owner writes after its successor's claim counts for
// nobody, and the deposed owner, which reads the gap before its record to
// answer its append (foreign_writes.go), finds the claim and answers
// ErrNotOwner: nothing was applied, the client retries on the new owner.
//
// The claim's offset, not the group's generation, is the fence: offsets of a
// partition only grow and never repeat, while a consumer group that empties
// is forgotten by the broker and starts its generations again from 1. The
// claim carries the generation too, for people reading the log.

// Claim records as they are written: a key no order can have (':' is not
// allowed in an order ID), a CloudEvents type of their own so that consumers
// of the topic can skip them, and the stamp header of order records.
const (
	ceTypeClaim   = "orderd.partition.claimed"
	headerClaim   = "ce_orderdclaim"
	claimKeyText  = "orderd:claim"
	claimIDPrefix = "claim-"
)

// noClaim is the stamp of a record written under no claim: by a single
// orderd, or before the partition was ever claimed.
const noClaim = -1

var claimKey = []byte(claimKeyText)

// isClaim reports whether a record of the audit topic is a claim.
func isClaim(rec LogRecord) bool { return bytes.Equal(rec.Key, claimKey) }

// Claim is the value of a claim record.
type Claim struct {
	Partition  int       `json:"partition"`
	Generation int32     `json:"generation"` // the group generation that assigned it
	Member     string    `json:"member"`     // the claiming node's advertised URL
	At         time.Time `json:"at"`
}

// claimTable is what this process knows of the partitions' claims: their
// offsets, learned from the state store at start and from every read of the
// log after that. The lists only grow (a claim is never undone) and are
// replaced, never changed, so a reader holds one without a lock.
type claimTable struct {
	any     atomic.Bool // some partition has a claim: until then no record is checked
	mu      sync.RWMutex
	offsets map[int][]int64 // per partition, ascending; a list is replaced, never changed
	fenced  atomic.Int64    // records skipped under the rule, since start
	// skipped, if not nil, is told of each record the filter does not
	// visit, with why (orderctl tail notes them).
	skipped func(p int, rec LogRecord, why string)
	metrics *Metrics // nil records nothing
}

func newClaimTable() *claimTable { return &claimTable{offsets: map[int][]int64{}} }

func (t *claimTable) list(p int) []int64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.offsets[p]
}

// learn adds a claim at offset of partition p.
func (t *claimTable) learn(p int, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.offsets[p]
	i, found := slices.BinarySearch(old, offset)
	if found {
		return
	}
	t.offsets[p] = slices.Insert(slices.Clone(old), i, offset)
	t.any.Store(true)
}

// latest is the offset of p's last known claim; noClaim if none.
func (t *claimTable) latest(p int) int64 {
	l := t.list(p)
	if len(l) == 0 {
		return noClaim
	}
	return l[len(l)-1]
}

// fencedAt reports whether a record at offset, stamped with claim under, is
// skipped: a later claim than its own came before it.
func (t *claimTable) fencedAt(p int, offset, under int64) bool {
	l := t.list(p)
	i := sort.Search(len(l), func(i int) bool { return l[i] >= offset })
	return i > 0 && l[i-1] > under
}

// claimsIn returns p's claims in [from, to), for the state store.
func (t *claimTable) claimsIn(p int, from, to int64) []int64 {
	l := t.list(p)
	lo := sort.Search(len(l), func(i int) bool { return l[i] >= from })
	hi := sort.Search(len(l), func(i int) bool { return l[i] >= to })
	return l[lo:hi]
}

// filter wraps a read's visit with the rule: claims are learned and not
// visited (they are no order's record), fenced records are counted and not
// visited. With no claim anywhere, a record costs one comparison of its key.
func (t *claimTable) filter(p int, visit func(LogRecord) error) func(LogRecord) error {
	return func(rec LogRecord) error {
		if isClaim(rec) {
			t.learn(p, rec.Offset)
			t.skip(p, rec, "a claim: a cluster node took the partition over")
			return nil
		}
		if t.any.Load() && t.fencedAt(p, rec.Offset, recordStamp(rec)) {
			t.fenced.Add(1)
			t.metrics.fenced()
			t.skip(p, rec, "written by a node the partition had been taken from (a later claim comes before it)")
			return nil
		}
		return visit(rec)
	}
}

func (t *claimTable) skip(p int, rec LogRecord, why string) {
	if t.skipped != nil {
		t.skipped(p, rec, why)
	}
}

// recordStamp is the claim a record was written under; noClaim when it has
// no stamp (or a garbled one, which then counts as none).
func recordStamp(rec LogRecord) int64 {
	v, ok := rec.Header(headerClaim)
	if !ok {
		return noClaim
	}
	c, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || c < 0 {
		return noClaim
	}
	return c
}

// encodeClaim makes the record of c.
func encodeClaim(c Claim) (kafka.Record, error) {
	value, err := json.Marshal(c)
	if err != nil {
		return kafka.Record{}, err
	}
	var entropy [order.IDEntropyLen]byte
	_, _ = rand.Read(entropy[:]) // never fails (Go 1.24+)
	at := appendTime(nil, c.At.UTC())
	return kafka.Record{
		Key:   kafka.NewBytes(claimKey),
		Value: kafka.NewBytes(value),
		Headers: []kafka.Header{
			{Key: headerSpecVersion, Value: specVersionBytes},
			{Key: headerID, Value: []byte(claimIDPrefix + order.NewID(c.At, entropy))},
			{Key: headerSource, Value: sourceBytes},
			{Key: headerType, Value: []byte(ceTypeClaim)},
			{Key: headerSubject, Value: []byte("partition/" + strconv.Itoa(c.Partition))},
			{Key: headerTime, Value: at},
			{Key: headerContentType, Value: contentTypeBytes},
		},
	}, nil
}

// ErrNotOwner: this node does not hold the partition's latest claim (it never
// took it over, or another node has since), so it writes nothing there. What
// it may have written after the other's claim counts for nobody: nothing was
// applied. Retry on the partition's owner.
var ErrNotOwner = fmt.Errorf("%w: this node does not own the order's partition", order.ErrJournalUnavailable)

// Claim takes partition p over for a cluster node: it writes a claim record,
// learns it, and returns its offset. From then on the partition's writer
// stamps its records with it, once TakeOver has been called. Only call it
// while nothing of this process writes to p (the node serves p only after
// TakeOver). A claim whose outcome is unknown is an error: the caller claims
// again (a claim that landed after all only fences this node's own records
// written before the next one).
func (j *KafkaJournal) Claim(ctx context.Context, p int, c Claim) (int64, error) {
	if p < 0 || p >= j.partitions {
		return 0, fmt.Errorf("claim of partition %d: the topic has %d", p, j.partitions)
	}
	c.Partition = p
	rec, err := encodeClaim(c)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, j.cfg.ProduceTimeout)
	defer cancel()
	resp, err := j.producer.Produce(ctx, &kafka.ProduceRequest{
		Topic: j.cfg.Topic, Partition: p, RequiredAcks: kafka.RequireAll,
		Records: kafka.NewRecordReader(rec),
	})
	switch {
	case err != nil:
		return 0, fmt.Errorf("claiming partition %d: %w", p, err)
	case resp.Error != nil:
		return 0, fmt.Errorf("claiming partition %d: the broker answered: %w", p, resp.Error)
	}
	j.claims.learn(p, resp.BaseOffset)
	return resp.BaseOffset, nil
}

// TakeOver lets this process write partition p under its claim at offset
// claim, knowing that the log holds nothing below end that its callers have
// not seen (the state store has taken it). Until TakeOver, and after
// GiveUp, a clustered journal refuses p's appends with ErrNotOwner.
func (j *KafkaJournal) TakeOver(p int, claim, end int64) {
	w := j.writers[p]
	w.learnEnd(end)
	w.mu.Lock()
	w.claim = claim
	w.mu.Unlock()
}

// GiveUp stops p's appends: the node no longer owns it.
func (j *KafkaJournal) GiveUp(p int) {
	w := j.writers[p]
	w.mu.Lock()
	w.claim = noClaim
	w.mu.Unlock()
}

// FencedRecords counts the records skipped since start because a later
// claim came before them: a deposed owner's writes.
func (j *KafkaJournal) FencedRecords() int64 { return j.claims.fenced.Load() }

// learnStoredClaims adds the claims a state store holds to the table.
func (j *KafkaJournal) learnStoredClaims(st *store.Store) error {
	for p := range j.partitions {
		offsets, err := st.Claims(p)
		if err != nil {
			return err
		}
		for _, o := range offsets {
			j.claims.learn(p, o)
		}
	}
	return nil
}

// stamp is the claim the writer's next batch is written under, and whether
// it may be written at all. A clustered writer writes only under its own
// claim, and only while no later one is known; a single orderd writes under
// the latest claim it knows (it is the only writer).
func (w *partitionWriter) stamp() (int64, error) {
	latest := w.j.claims.latest(w.partition)
	if !w.j.cfg.Clustered {
		return latest, nil
	}
	w.mu.Lock()
	own := w.claim
	w.mu.Unlock()
	switch {
	case own == noClaim:
		return noClaim, fmt.Errorf("%w: partition %d is not taken over here", ErrNotOwner, w.partition)
	case latest > own:
		return noClaim, fmt.Errorf("%w: partition %d was claimed at offset %d by another node, after this node's claim at %d", ErrNotOwner, w.partition, latest, own)
	}
	return own, nil
}

// stampBatch puts the claim header on every record of batch (or takes it
// off, for noClaim). The text is the batch's own: kafka-go may still read a
// failed batch's records after the next one is stamped.
func stampBatch(batch []*pendingAppend, claim int64) {
	if claim == noClaim {
		for _, p := range batch {
			p.rec.Headers = p.headers[:headerCount]
		}
		return
	}
	text := strconv.AppendInt(nil, claim, 10)
	for _, p := range batch {
		p.headers[headerCount] = kafka.Header{Key: headerClaim, Value: text}
		p.rec.Headers = p.headers[:headerCount+1]
	}
}
