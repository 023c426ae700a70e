package persistence

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence/store"
)

// storeDamage is something that happens to a closed store's directory.
type storeDamage struct {
	name string
	// mustDetect: OpenStore or CatchUp must report the store unusable. A
	// store that is merely gone is not: it is an empty store.
	mustDetect bool
	damage     func(t *testing.T, dir string, j *KafkaJournal)
}

var storeDamages = []storeDamage{
	{"deleted", false, func(t *testing.T, dir string, _ *KafkaJournal) {
		require.NoError(t, os.RemoveAll(dir))
	}},
	{"files truncated", true, func(t *testing.T, dir string, _ *KafkaJournal) {
		eachStoreFile(t, dir, func(path string, size int64) { require.NoError(t, os.Truncate(path, size/2)) })
	}},
	{"files garbled", true, func(t *testing.T, dir string, _ *KafkaJournal) {
		eachStoreFile(t, dir, func(path string, size int64) { garble(t, path, size/3) })
	}},
	{"a table garbled", true, func(t *testing.T, dir string, j *KafkaJournal) {
		st, err := store.Open(dir, store.Identity{Topic: DefaultTopic, Partitions: j.Partitions()}, store.Options{Decode: decodeStored, DecodeCheckout: decodeStoredCheckout})
		require.NoError(t, err)
		require.NoError(t, st.Flush())
		require.NoError(t, st.Close())
		tables := 0
		eachStoreFile(t, dir, func(path string, size int64) {
			if filepath.Ext(path) == ".sst" {
				tables++
				garble(t, path, size/3)
			}
		})
		require.Positive(t, tables)
	}},
	{"from another topic", true, func(t *testing.T, dir string, j *KafkaJournal) {
		require.NoError(t, store.Destroy(dir))
		st, err := store.Open(dir, store.Identity{Topic: "other.topic", Partitions: j.Partitions()}, store.Options{Decode: decodeStored, DecodeCheckout: decodeStoredCheckout})
		require.NoError(t, err)
		require.NoError(t, st.Close())
	}},
	{"with another partition count", true, func(t *testing.T, dir string, j *KafkaJournal) {
		require.NoError(t, store.Destroy(dir))
		st, err := store.Open(dir, store.Identity{Topic: DefaultTopic, Partitions: j.Partitions() + 1}, store.Options{Decode: decodeStored, DecodeCheckout: decodeStoredCheckout})
		require.NoError(t, err)
		require.NoError(t, st.Close())
	}},
	{"checkpoint ahead of the log", true, func(t *testing.T, dir string, j *KafkaJournal) {
		st, err := store.Open(dir, store.Identity{Topic: DefaultTopic, Partitions: j.Partitions()}, store.Options{Decode: decodeStored, DecodeCheckout: decodeStoredCheckout})
		require.NoError(t, err)
		b := st.NewBatch(1)
		require.NoError(t, b.Commit(st.Checkpoints()[1]+100))
		b.Close()
		require.NoError(t, st.Close())
	}},
}

func garble(t *testing.T, path string, at int64) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteAt([]byte("garbage garbage garbage"), at)
	require.NoError(t, err)
}

// eachStoreFile calls fn with every non-empty file Pebble wrote but its lock.
func eachStoreFile(t *testing.T, dir string, fn func(path string, size int64)) {
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		info, err := e.Info()
		require.NoError(t, err)
		if info.Mode().IsRegular() && info.Size() > 0 && e.Name() != "LOCK" {
			fn(filepath.Join(dir, e.Name()), info.Size())
		}
	}
}

// TestStoreDamageIsDetectedAndRebuilt: a store that was deleted, damaged,
// or is not this log's copy ends up, after OpenStore and CatchUp (and the
// rebuild the server makes when CatchUp finds damage), equal to a Replay.
func TestStoreDamageIsDetectedAndRebuilt(t *testing.T) {
	seed := storeSeeds(t)[0]
	t.Logf("seed %d (ORDERD_STORE_SEED repeats it)", seed)
	for _, d := range storeDamages {
		t.Run(d.name, func(t *testing.T) {
			e := startTestBroker(t)
			j := openTestJournal(t, e, KafkaConfig{Partitions: storeTestPartitions})
			g := newHistoryGen(seed, j)
			g.write(t, e, 200)
			ctx := testContext(t)
			dir := t.TempDir()
			st, _, err := OpenStore(ctx, dir, j, testLogger(t))
			require.NoError(t, err)
			_, err = j.CatchUp(ctx, st)
			require.NoError(t, err)
			require.NoError(t, st.Close())

			d.damage(t, dir, j)
			g.write(t, e, 50)
			st, detected := catchUpLikeTheServer(t, j, dir)
			defer st.Close()
			if d.mustDetect {
				require.True(t, detected, "the damage was not detected")
			}
			requireStoreEquals(t, j, st, referenceOf(t, j), g.orders)
		})
	}
}

// catchUpLikeTheServer opens the store, catches up and verifies it,
// rebuilding it when one of them finds it unusable, and says whether one did.
func catchUpLikeTheServer(t *testing.T, j *KafkaJournal, dir string) (*store.Store, bool) {
	t.Helper()
	ctx := testContext(t)
	st, rebuilt, err := OpenStore(ctx, dir, j, testLogger(t))
	require.NoError(t, err)
	_, err = j.CatchUp(ctx, st)
	if err == nil {
		err = st.Verify(ctx)
	}
	if errors.Is(err, order.ErrStoreUnusable) {
		t.Logf("CatchUp or Verify found the store unusable: %v", err)
		require.NoError(t, st.Close())
		st, err = RebuildStore(ctx, dir, j, testLogger(t))
		require.NoError(t, err)
		_, err = j.CatchUp(ctx, st)
		rebuilt = true
	}
	require.NoError(t, err)
	return st, rebuilt
}

func TestCheckCheckpoints(t *testing.T) {
	for i, tc := range []struct {
		cps, first, end, from []int64
		unusable              bool
	}{
		{cps: []int64{0, 5}, first: []int64{0, 0}, end: []int64{3, 5}, from: []int64{0, 5}},
		{cps: []int64{0}, first: []int64{4}, end: []int64{9}, from: []int64{4}}, // a new store starts where the log does
		{cps: []int64{6}, first: []int64{0}, end: []int64{5}, unusable: true},   // ahead of the log
		{cps: []int64{2}, first: []int64{4}, end: []int64{9}, unusable: true},   // the log lost what the store never saw
	} {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			from, err := checkCheckpoints(tc.cps, tc.first, tc.end)
			if tc.unusable {
				require.ErrorIs(t, err, order.ErrStoreUnusable)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.from, from)
		})
	}
}
