package actors

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

func withKey(cmd order.Command, key string) order.Command {
	cmd.IdempotencyKey = key
	return cmd
}

func generatedCreate(id, key string) order.Command {
	return order.Command{Kind: order.CommandCreate, OrderID: id, IDGenerated: true, IdempotencyKey: key, Principal: "test"}
}

// TestRetryIsAnsweredWithTheFirstAnswer: a retry with the same key and
// request returns the order as its first attempt left it, even after the
// order moved on, and appends nothing; If-Match is not looked at again.
func TestRetryIsAnsweredWithTheFirstAnswer(t *testing.T) {
	j := &fakeJournal{}
	s := newSystem(t, j)
	ctx := ctxFor(t)

	created := mustExecute(t, s, withKey(create("o-1"), "create-1"))
	pay := withKey(move("o-1", order.Paid), "pay-1")
	pay.ExpectedVersion = 1
	paid := mustExecute(t, s, pay)
	mustExecute(t, s, move("o-1", order.Shipped))
	logged := len(j.all())

	again, err := s.Execute(ctx, pay)
	require.NoError(t, err, "If-Match 1 is stale now, but the key is checked first")
	assert.Equal(t, paid, again, "the order right after the first attempt")
	again, err = s.Execute(ctx, withKey(create("o-1"), "create-1"))
	require.NoError(t, err, "not order-exists: it is the create being retried")
	assert.Equal(t, created, again)
	assert.Len(t, j.all(), logged, "a retry appends nothing")

	// The same key for another request is refused, and changes nothing.
	_, err = s.Execute(ctx, withKey(move("o-1", order.Delivered), "pay-1"))
	assert.ErrorIs(t, err, order.ErrIdempotencyKeyReused)
	_, err = s.Execute(ctx, withKey(create("o-1"), "pay-1"))
	assert.ErrorIs(t, err, order.ErrIdempotencyKeyReused)
	assert.Len(t, j.all(), logged)

	// Without a key there is nothing to recognise: the same request is a
	// new one, and decided as such.
	stale := move("o-1", order.Paid)
	stale.ExpectedVersion = 1
	_, err = s.Execute(ctx, stale)
	assert.ErrorIs(t, err, order.ErrVersionMismatch)

	history, err := s.History(ctx, "o-1")
	require.NoError(t, err)
	assert.Equal(t, order.RequestDigest(pay), history[1].RequestDigest, "the digest is recorded with the key")
}

// TestKeysAreScopedByPrincipal: another client's key of the same spelling is
// another request.
func TestKeysAreScopedByPrincipal(t *testing.T) {
	j := &fakeJournal{}
	s := newSystem(t, j)
	ctx := ctxFor(t)
	mustExecute(t, s, create("o-1"))
	mustExecute(t, s, withKey(move("o-1", order.Paid), "k"))

	other := withKey(move("o-1", order.Paid), "k")
	other.Principal = "someone-else"
	_, err := s.Execute(ctx, other)
	assert.ErrorIs(t, err, order.ErrInvalidTransition, "decided afresh: the order is already Paid")
	assert.Len(t, j.all(), 2)
}

// TestRetriedCreateWithoutIDMakesOneOrder: every attempt of a create whose
// ID the server chooses carries a new ID; the key routes them all to the
// first one's order, concurrent retries included.
func TestRetriedCreateWithoutIDMakesOneOrder(t *testing.T) {
	j := newHeldJournal()
	s := newSystem(t, j)
	ctx := ctxFor(t)
	j.hold(t) // retries arrive while the first attempt is being written

	const attempts = 16
	results := make(chan order.Order, attempts)
	var wg sync.WaitGroup
	for i := range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := s.Execute(ctx, generatedCreate(fmt.Sprintf("gen-%02d", i), "make-one"))
			assert.NoError(t, err)
			results <- o
		}()
	}
	j.awaitHeld(t)
	j.release()
	wg.Wait()
	close(results)
	var ids []string
	for o := range results {
		assert.Equal(t, uint64(1), o.Version)
		ids = append(ids, o.ID)
	}
	require.Len(t, ids, attempts)
	for _, id := range ids {
		assert.Equal(t, ids[0], id, "every attempt answered with the one order")
	}
	require.Len(t, j.all(), 1, "one creation in the log")

	// Another key makes another order; a named ID with the key is another
	// request (the digest covers whether the client named the ID).
	o, err := s.Execute(ctx, generatedCreate("gen-other", "make-two"))
	require.NoError(t, err)
	assert.Equal(t, "gen-other", o.ID)
	_, err = s.Execute(ctx, withKey(create(ids[0]), "make-one"))
	assert.ErrorIs(t, err, order.ErrIdempotencyKeyReused)
	_, err = s.Execute(ctx, withKey(create("named"), "make-one"))
	assert.ErrorIs(t, err, order.ErrIdempotencyKeyReused, "the key already created another order")
	_, err = s.Get(ctx, "named")
	assert.ErrorIs(t, err, order.ErrOrderNotFound)
	require.Len(t, j.all(), 2)

	// And the other way round: a key that created a named order routes a
	// create without an ID to it, where it is another request.
	_, err = s.Execute(ctx, withKey(create("named-first"), "name-it"))
	require.NoError(t, err)
	_, err = s.Execute(ctx, generatedCreate("gen-x", "name-it"))
	assert.ErrorIs(t, err, order.ErrIdempotencyKeyReused)
	_, err = s.Get(ctx, "gen-x")
	assert.ErrorIs(t, err, order.ErrOrderNotFound)
}

// TestKeysSurviveRecovery: keys live in the log, so a new System on the same
// journal answers retries as the old one would have, the create index
// included.
func TestKeysSurviveRecovery(t *testing.T) {
	j := &fakeJournal{}
	before := newSystem(t, j)
	ctx := ctxFor(t)
	created := mustExecute(t, before, generatedCreate("gen-1", "create-key"))
	paid := mustExecute(t, before, withKey(move("gen-1", order.Paid), "pay-key"))
	mustExecute(t, before, move("gen-1", order.Cancelled))
	before.Close()
	logged := len(j.all())

	after := newSystem(t, j)
	o, err := after.Execute(ctx, generatedCreate("gen-2", "create-key"))
	require.NoError(t, err)
	assert.Equal(t, created, o)
	o, err = after.Execute(ctx, withKey(move("gen-1", order.Paid), "pay-key"))
	require.NoError(t, err)
	assert.Equal(t, paid, o)
	_, err = after.Execute(ctx, withKey(move("gen-1", order.Shipped), "pay-key"))
	assert.ErrorIs(t, err, order.ErrIdempotencyKeyReused)
	assert.Len(t, j.all(), logged)
	_, err = after.Get(ctx, "gen-2")
	assert.ErrorIs(t, err, order.ErrOrderNotFound)
}

// TestUnknownOutcomeRetryLearnsTheTruth: after an append whose outcome is
// unknown, a retry with the same key is answered from what the log holds:
// the first answer if the record landed, the transition applied now if it
// did not. Either way it is in the log exactly once.
func TestUnknownOutcomeRetryLearnsTheTruth(t *testing.T) {
	eachUnknownOutcome(t, func(t *testing.T, landed bool) {
		j := &fakeJournal{}
		s := newSystem(t, j)
		ctx := ctxFor(t)
		mustExecute(t, s, create("o-1"))

		pay := withKey(move("o-1", order.Paid), "pay-1")
		pay.ExpectedVersion = 1
		pay.RequestID = "attempt-1"
		nextAppendOutcomeUnknown(j, landed)
		_, err := s.Execute(ctx, pay)
		require.ErrorIs(t, err, order.ErrOutcomeUnknown)

		pay.RequestID = "attempt-2"
		o, err := s.Execute(ctx, pay)
		require.NoError(t, err)
		assert.Equal(t, order.Paid, o.State)
		assert.Equal(t, uint64(2), o.Version)
		assert.Equal(t, 1, j.loads, "the retry settled the order first")
		events := j.of("o-1")
		require.Len(t, events, 2, "applied exactly once")
		assert.Equal(t, "pay-1", events[1].IdempotencyKey)
		// Which attempt is in the log tells a replayed answer from a
		// step applied by the retry.
		assert.Equal(t, map[bool]string{true: "attempt-1", false: "attempt-2"}[landed], events[1].RequestID)

		pay.RequestID = "attempt-3"
		again, err := s.Execute(ctx, pay)
		require.NoError(t, err)
		assert.Equal(t, o, again)
		assert.Len(t, j.of("o-1"), 2)
	})
}

// TestKeyWindowLimitsAreConfigurable: beyond the count or the age a key is
// forgotten, and a retry is decided as a new request.
func TestKeyWindowLimitsAreConfigurable(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	j := &fakeJournal{}
	s := startSystem(t, Config{Journal: j, Now: now, IdempotencyKeysPerOrder: 1, IdempotencyWindow: time.Hour})
	ctx := ctxFor(t)

	mustExecute(t, s, withKey(create("o-1"), "k-create"))
	mustExecute(t, s, withKey(move("o-1", order.Paid), "k-pay"))
	_, err := s.Execute(ctx, withKey(create("o-1"), "k-create"))
	assert.ErrorIs(t, err, order.ErrOrderExists, "one key per order: the creation's key is forgotten")
	_, err = s.Execute(ctx, withKey(move("o-1", order.Paid), "k-pay"))
	assert.NoError(t, err, "the newest key is remembered")

	clock.Add(int64(time.Hour + time.Nanosecond))
	_, err = s.Execute(ctx, withKey(move("o-1", order.Paid), "k-pay"))
	assert.ErrorIs(t, err, order.ErrInvalidTransition, "past the window: a new request")
	assert.Len(t, j.all(), 2)
}

func TestCreateIndexIsBounded(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	x := newCreateIndex(3, time.Hour)
	key := func(i int) clientKey { return clientKey{"p", fmt.Sprintf("k-%d", i)} }
	for i := range 5 {
		assert.Equal(t, fmt.Sprintf("o-%d", i), x.claim(key(i), fmt.Sprintf("o-%d", i), t0))
	}
	assert.Equal(t, 3, x.len())
	_, recorded := x.recorded(key(4), t0)
	assert.False(t, recorded, "a claim is not a logged creation")
	assert.Equal(t, "new", x.claim(key(0), "new", t0), "the oldest were evicted")
	assert.Equal(t, "o-4", x.claim(key(4), "other", t0), "a live claim routes retries")
	assert.Equal(t, "o-4", x.claim(clientKey{"p", "k-4"}, "other", t0.Add(time.Hour)))
	assert.Equal(t, "late", x.claim(key(4), "late", t0.Add(time.Hour+1)), "past the window")

	// Overwriting leaves stale queue entries; they count against the
	// limit, so the map never outgrows it.
	for i := range 100 {
		x.record(key(1), fmt.Sprintf("o-%d", i), t0.Add(2*time.Hour), t0.Add(2*time.Hour))
	}
	assert.LessOrEqual(t, x.len(), 3)
	assert.LessOrEqual(t, len(x.fifo)-x.head, 3)
	id, recorded := x.recorded(key(1), t0.Add(2*time.Hour))
	assert.True(t, recorded)
	assert.Equal(t, "o-99", id)
	x.record(key(9), "too-old", t0, t0.Add(3*time.Hour))
	assert.Equal(t, "fresh", x.claim(key(9), "fresh", t0.Add(3*time.Hour)), "recording an aged-out creation does nothing")
}
