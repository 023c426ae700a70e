// Package cluster keeps this node's membership of an orderd cluster: which
// node owns which partition of the audit topic.
//
// Every node joins one Kafka consumer group on the audit topic, and the
// group's assignment is the ownership: the group decides who writes to a
// partition; the log decides what was written. The group is a lease, not a
// guarantee (a node cut off from the broker may not yet know it lost its
// partitions), so the log stays the arbiter of conflicting writes.
//
// The balancer ("orderd-sticky") keeps partitions with their previous owner
// whenever it can: a partition that moves must be replayed by its new owner,
// so moving fewer partitions means fewer replays and shorter hand-overs.
//
// Each node carries its advertised URL in its group metadata, and reads the
// whole group back (DescribeGroups) to build its owner table, so routing
// needs no configuration beyond the broker.
package cluster
