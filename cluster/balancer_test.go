package cluster

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func partitionsUpTo(n int) []int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// checkBalanced asserts the invariants of every assignment: each partition
// exactly once, to a member, and every member within one of the others.
func checkBalanced(t *testing.T, members []string, partitions []int, got map[string][]int) {
	t.Helper()
	seen := map[int]string{}
	least, most := len(partitions), 0
	for _, id := range members {
		ps, ok := got[id]
		require.True(t, ok, "member %s has no assignment", id)
		least, most = min(least, len(ps)), max(most, len(ps))
		for _, p := range ps {
			prev, dup := seen[p]
			require.False(t, dup, "partition %d to both %s and %s", p, prev, id)
			seen[p] = id
		}
	}
	require.Len(t, got, len(members))
	require.Len(t, seen, len(partitions), "every partition assigned")
	assert.LessOrEqual(t, most-least, 1, "fair within one: %v", got)
}

// moved counts partitions taken from a member that is still in the group.
func moved(before, after map[string][]int) int {
	owner := map[int]string{}
	for id, ps := range before {
		for _, p := range ps {
			owner[p] = id
		}
	}
	n := 0
	for id, ps := range after {
		for _, p := range ps {
			_, stayed := after[owner[p]]
			if prev, ok := owner[p]; ok && prev != id && stayed {
				n++
			}
		}
	}
	return n
}

func TestAssignStickyFromScratch(t *testing.T) {
	members := []string{"c", "a", "b"}
	got := assignSticky(members, partitionsUpTo(6), nil)
	checkBalanced(t, members, partitionsUpTo(6), got)
	// Deterministic: the same inputs in any order give the same answer.
	assert.Equal(t, got, assignSticky([]string{"b", "c", "a"}, []int{5, 4, 3, 2, 1, 0}, nil))
}

func TestAssignStickyLeaverMovesOnlyItsPartitions(t *testing.T) {
	before := map[string][]int{"a": {0, 1}, "b": {2, 3}, "c": {4, 5}}
	got := assignSticky([]string{"a", "c"}, partitionsUpTo(6), before)
	checkBalanced(t, []string{"a", "c"}, partitionsUpTo(6), got)
	assert.Subset(t, got["a"], before["a"])
	assert.Subset(t, got["c"], before["c"])
	assert.Zero(t, moved(before, got))
}

func TestAssignStickyJoinerTakesOnlyWhatBalances(t *testing.T) {
	before := map[string][]int{"a": {0, 1, 2}, "b": {3, 4, 5}}
	members := []string{"a", "b", "c"}
	got := assignSticky(members, partitionsUpTo(6), before)
	checkBalanced(t, members, partitionsUpTo(6), got)
	assert.Len(t, got["c"], 2)
	assert.Equal(t, 2, moved(before, got), "only the joiner's share moves")
	assert.Subset(t, before["a"], got["a"])
	assert.Subset(t, before["b"], got["b"])
}

func TestAssignStickyIgnoresStaleAndUnknownClaims(t *testing.T) {
	// Two members both claim 0 (one from an older generation), one claims
	// a partition that does not exist: still each partition once.
	before := map[string][]int{"a": {0, 1, 9}, "b": {0, 2}}
	got := assignSticky([]string{"a", "b"}, partitionsUpTo(4), before)
	checkBalanced(t, []string{"a", "b"}, partitionsUpTo(4), got)
	assert.Equal(t, []int{0, 1}, got["a"])
}

func TestAssignStickyMoreMembersThanPartitions(t *testing.T) {
	members := []string{"a", "b", "c", "d"}
	got := assignSticky(members, partitionsUpTo(2), map[string][]int{"d": {0, 1}})
	checkBalanced(t, members, partitionsUpTo(2), got)
	assert.Len(t, got["d"], 1, "a previous owner keeps no more than its share")
}

// TestAssignStickyRandomMembershipChanges runs a seeded sequence of joins
// and leaves: every step balanced, and no step moves more partitions than
// balance requires.
func TestAssignStickyRandomMembershipChanges(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	const partitionsCount, steps = 12, 300
	ps := partitionsUpTo(partitionsCount)
	members := []string{"m0"}
	current := assignSticky(members, ps, nil)
	next := 1
	for step := range steps {
		if i := rng.IntN(len(members)); len(members) > 1 && rng.IntN(2) == 0 {
			members = slices.Delete(members, i, i+1)
		} else if len(members) < 2*partitionsCount {
			members = append(members, fmt.Sprintf("m%d", next))
			next++
		}
		got := assignSticky(members, ps, current)
		checkBalanced(t, members, ps, got)
		// A partition whose owner stayed moves only if that owner had
		// more than the least share.
		floor := partitionsCount / len(members)
		need := 0
		for id, had := range current {
			if !slices.Contains(members, id) {
				continue
			}
			need += max(0, len(had)-floor)
		}
		require.LessOrEqual(t, moved(current, got), need, "step %d (seed %d)", step, seed)
		current = got
	}
}

func TestBalancerCarriesURLAndOwned(t *testing.T) {
	b := &stickyBalancer{topic: "orders.transitions", url: "http://a:8080"}
	b.setOwned([]int{1, 3})
	data, err := b.UserData()
	require.NoError(t, err)
	var d memberData
	require.NoError(t, json.Unmarshal(data, &d))
	assert.Equal(t, memberData{URL: "http://a:8080", Owned: []int{1, 3}}, d)

	members := []kafka.GroupMember{
		{ID: "a", UserData: data},
		{ID: "b", UserData: []byte("not json")},
	}
	var partitions []kafka.Partition
	for _, p := range partitionsUpTo(4) {
		partitions = append(partitions, kafka.Partition{Topic: "orders.transitions", ID: p})
	}
	got := b.AssignGroups(members, partitions)
	assert.Equal(t, kafka.GroupMemberAssignments{
		"a": {"orders.transitions": {1, 3}},
		"b": {"orders.transitions": {0, 2}},
	}, got)
}
