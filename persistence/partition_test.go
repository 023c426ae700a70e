package persistence

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/order"
)

// partitionKeys are 10,000 order IDs: ULIDs as orderd makes them, and IDs of
// every length from 1 to 40 so that each murmur2 tail case is covered.
func partitionKeys() []string {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
	keys := make([]string, 0, 10000)
	for i := range 5000 {
		var entropy [order.IDEntropyLen]byte
		for j := range entropy {
			entropy[j] = byte(rng.Uint32())
		}
		keys = append(keys, order.NewID(testEpoch.Add(time.Duration(i)*time.Millisecond), entropy))
	}
	for i := range 5000 {
		b := make([]byte, 1+i%40)
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		keys = append(keys, string(b))
	}
	return keys
}

func TestPartitionOfAgreesWithKafkaGoAndFranzGo(t *testing.T) {
	keys := partitionKeys()
	require.Len(t, keys, 10000)
	for _, n := range []int{1, 2, 3, 16, 100, PartitionsMax} {
		partitions := make([]int, n)
		for i := range partitions {
			partitions[i] = i
		}
		kafkaGo := &kafka.Murmur2Balancer{Consistent: true}
		franzGo := kgo.StickyKeyPartitioner(nil).ForTopic(DefaultTopic)
		disagree := 0
		for _, key := range keys {
			got := PartitionOf(key, n)
			if got != kafkaGo.Balance(kafka.Message{Key: []byte(key)}, partitions...) ||
				got != franzGo.Partition(&kgo.Record{Key: []byte(key)}, n) {
				disagree++
			}
		}
		assert.Zero(t, disagree, "%d partitions: keys placed differently", n)
	}
}

// TestMurmur2JavaVectors checks the hash itself against the values of the
// Java client's own test (UtilsTest.testMurmur2).
func TestMurmur2JavaVectors(t *testing.T) {
	for key, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		assert.Equal(t, want, int32(murmur2(key)), key)
	}
}

func TestPartitionOfPanicsWithoutPartitions(t *testing.T) {
	assert.Panics(t, func() { PartitionOf("x", 0) })
}

func BenchmarkPartitionOf(b *testing.B) {
	id := order.NewID(testEpoch, [order.IDEntropyLen]byte{1, 2, 3})
	for b.Loop() {
		_ = PartitionOf(id, 16)
	}
}
