package persistence

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence/kfaketest"
)

// TestKafkaHealthFollowsProduceOutcomes: a failed produce request makes the
// journal unhealthy, and the probe makes it healthy again once the broker
// answers, without any append needing to succeed first.
func TestKafkaHealthFollowsProduceOutcomes(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	ctx := testContext(t)
	require.NoError(t, j.Append(ctx, lifecycleEvent("h-1", 1)))
	require.NoError(t, j.Healthy())

	kfaketest.AnswerNextProduce(e.cluster, kerr.NotLeaderForPartition.Code)
	require.ErrorIs(t, j.Append(ctx, lifecycleEvent("h-2", 1)), order.ErrJournalUnavailable)
	err := j.Healthy()
	require.ErrorIs(t, err, order.ErrJournalUnavailable)
	assert.Contains(t, err.Error(), "writes failing since")

	waitFor(t, "the probe to find the broker answering", func() bool { return j.Healthy() == nil })
}

// TestKafkaUnhealthyWhileBrokerIsGone: with the broker stopped, the journal
// stays unhealthy; the probe cannot clear it.
func TestKafkaUnhealthyWhileBrokerIsGone(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	ctx := testContext(t)
	require.NoError(t, j.Append(ctx, lifecycleEvent("g-1", 1)))
	e.Close()
	setProduceTimeout(j, testProduceTimeout)
	require.Error(t, j.Append(ctx, lifecycleEvent("g-2", 1)))
	require.Error(t, j.Healthy())
	probed := j.health.probes.Load()
	waitFor(t, "two more probes", func() bool { return j.health.probes.Load() >= probed+2 })
	assert.ErrorIs(t, j.Healthy(), order.ErrJournalUnavailable, "the broker is still gone")
}
