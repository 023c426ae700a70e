package persistence

import "fmt"

// PartitionOf returns the partition of an order among partitions: murmur2 of
// the order ID, as the Java client's default partitioner computes it (and
// franz-go's default, and kafka-go's Murmur2Balancer{Consistent: true}), so
// that every Kafka client agrees where an order lives. It panics if
// partitions < 1, which no topic has.
func PartitionOf(orderID string, partitions int) int {
	if partitions < 1 {
		panic(fmt.Sprintf("persistence: PartitionOf(%q, %d): a topic has at least one partition", orderID, partitions))
	}
	return int(murmur2(orderID)&0x7fffffff) % partitions
}

// murmur2 is the Java client's Utils.murmur2, reading the string in place
// so that routing an append allocates nothing.
func murmur2(s string) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(s))
	for len(s) >= 4 {
		k := uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		s = s[4:]
	}
	switch len(s) {
	case 3:
		h ^= uint32(s[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(s[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(s[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
