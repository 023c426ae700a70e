package cluster

import (
	"encoding/json"
	"slices"
	"sync"

	"github.com/segmentio/kafka-go"
)

// balancerName is the protocol name every orderd node offers; the group
// can only agree on a protocol all its members offer.
const balancerName = "orderd-sticky"

// memberData is what each member carries in its group metadata (UserData):
// where it can be reached, and what it owned in its last generation so that
// the leader can leave those partitions where they are.
type memberData struct {
	URL   string `json:"url"`
	Owned []int  `json:"owned,omitempty"`
}

// stickyBalancer is the kafka.GroupBalancer of an orderd node. Its UserData
// changes with each generation (the partitions this node owns), so it is
// shared between the membership loop and kafka-go's join.
type stickyBalancer struct {
	topic string
	url   string

	mu    sync.Mutex
	owned []int
}

var _ kafka.GroupBalancer = (*stickyBalancer)(nil)

func (b *stickyBalancer) ProtocolName() string { return balancerName }

func (b *stickyBalancer) setOwned(partitions []int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.owned = slices.Clone(partitions)
}

func (b *stickyBalancer) UserData() ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return json.Marshal(memberData{URL: b.url, Owned: b.owned})
}

// AssignGroups runs on the group's leader only. Only b.topic's partitions
// carry previous owners; any other topic is balanced the same way from
// scratch.
func (b *stickyBalancer) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	ids := make([]string, 0, len(members))
	previous := make(map[string][]int, len(members))
	for _, m := range members {
		ids = append(ids, m.ID)
		var d memberData
		// Metadata we cannot read only loses stickiness, never a partition.
		if json.Unmarshal(m.UserData, &d) == nil {
			previous[m.ID] = d.Owned
		}
	}
	byTopic := map[string][]int{}
	for _, p := range partitions {
		byTopic[p.Topic] = append(byTopic[p.Topic], p.ID)
	}
	out := make(kafka.GroupMemberAssignments, len(members))
	for _, id := range ids {
		out[id] = map[string][]int{}
	}
	for topic, ps := range byTopic {
		prev := previous
		if topic != b.topic {
			prev = nil
		}
		for id, got := range assignSticky(ids, ps, prev) {
			out[id][topic] = got
		}
	}
	return out
}

// assignSticky assigns every partition to exactly one member, each member
// getting floor(P/N) or that plus one. A partition stays with its previous
// owner while that owner is within its share; the rest go, one at a time, to
// the member with the fewest (ties to the lowest ID), so the result depends
// only on the inputs.
func assignSticky(members []string, partitions []int, previous map[string][]int) map[string][]int {
	out := make(map[string][]int, len(members))
	if len(members) == 0 {
		return out
	}
	ids := slices.Clone(members)
	slices.Sort(ids)
	ps := slices.Clone(partitions)
	slices.Sort(ps)
	for _, id := range ids {
		out[id] = []int{}
	}
	floor, extra := len(ps)/len(ids), len(ps)%len(ids)
	exists := make(map[int]bool, len(ps))
	for _, p := range ps {
		exists[p] = true
	}
	taken := make(map[int]bool, len(ps))
	keep := func(id string, share int) {
		for _, p := range sortedCopy(previous[id]) {
			if len(out[id]) >= share {
				return
			}
			if exists[p] && !taken[p] {
				taken[p] = true
				out[id] = append(out[id], p)
			}
		}
	}
	// Everyone keeps up to the floor first, then up to `extra` members
	// keep one more: no member's stickiness can push another below its share.
	for _, id := range ids {
		keep(id, floor)
	}
	for _, id := range ids {
		if extra == 0 {
			break
		}
		before := len(out[id])
		keep(id, floor+1)
		if len(out[id]) > before {
			extra--
		}
	}
	for _, p := range ps {
		if taken[p] {
			continue
		}
		fewest := ids[0]
		for _, id := range ids[1:] {
			if len(out[id]) < len(out[fewest]) {
				fewest = id
			}
		}
		out[fewest] = append(out[fewest], p)
	}
	for _, id := range ids {
		slices.Sort(out[id])
	}
	return out
}

func sortedCopy(ps []int) []int {
	c := slices.Clone(ps)
	slices.Sort(c)
	return c
}
