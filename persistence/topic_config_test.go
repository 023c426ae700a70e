package persistence

import (
	"errors"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// topicSettings reads the topic's settings back as any admin tool would.
func topicSettings(t *testing.T, e *Embedded, topic string) map[string]string {
	t.Helper()
	configs, err := describeTopicConfig(testContext(t), rawClient(t, e), topic)
	require.NoError(t, err)
	return configs
}

// createTopicAsAdmin makes a topic the way an operator might have, before
// orderd first starts, with the given settings.
func createTopicAsAdmin(t *testing.T, e *Embedded, topic string, configs ...kafka.ConfigEntry) {
	t.Helper()
	resp, err := rawClient(t, e).CreateTopics(testContext(t), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: 2, ReplicationFactor: 1, ConfigEntries: configs,
	}}})
	require.NoError(t, err)
	require.NoError(t, resp.Errors[topic])
}

func TestKafkaCreatesATopicThatKeepsEverything(t *testing.T) {
	e := startTestBroker(t)
	openTestJournal(t, e, KafkaConfig{Partitions: 2})
	got := topicSettings(t, e, DefaultTopic)
	assert.Equal(t, "-1", got["retention.ms"])
	assert.Equal(t, "-1", got["retention.bytes"])
	assert.Equal(t, "delete", got["cleanup.policy"])
	assert.Equal(t, "1", got["min.insync.replicas"])
}

func TestKafkaRefusesATopicThatDeletesRecords(t *testing.T) {
	for _, tt := range []struct {
		name     string
		configs  []kafka.ConfigEntry
		contains []string
	}{
		{"KafkasSevenDayDefault", nil, []string{
			"retention.ms=604800000 deletes records older than 168h0m0s",
			"--entity-name " + DefaultTopic + " --add-config retention.ms=-1",
		}},
		{"SizeBounded", []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "-1"}, {ConfigName: "retention.bytes", ConfigValue: "1073741824"}},
			[]string{"retention.bytes=1073741824 deletes the oldest records", "--add-config retention.bytes=-1"}},
		{"Compacted", []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "-1"}, {ConfigName: "cleanup.policy", ConfigValue: "compact"}},
			[]string{"cleanup.policy=compact keeps only the last record of each order", "--add-config cleanup.policy=delete"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := startTestBroker(t)
			createTopicAsAdmin(t, e, DefaultTopic, tt.configs...)
			_, err := OpenKafka(testContext(t), KafkaConfig{Brokers: []string{e.Addr()}, Dial: e.Dial, Logger: testLogger(t)})
			var refused *TopicConfigError
			require.True(t, errors.As(err, &refused), "refused as unsafe, got %v", err)
			for _, want := range tt.contains {
				assert.ErrorContains(t, err, want)
			}
			assert.ErrorContains(t, err, "kafka-configs.sh --bootstrap-server "+e.Addr())
		})
	}
}

// The embedded broker is orderd's own: a topic an older orderd made there
// with Kafka's defaults is set right, not refused.
func TestKafkaRepairsTheEmbeddedTopic(t *testing.T) {
	e := startTestBroker(t)
	createTopicAsAdmin(t, e, DefaultTopic, kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"})
	j := openTestJournal(t, e, KafkaConfig{RepairTopicConfig: true})
	assert.Equal(t, 2, j.Partitions())
	got := topicSettings(t, e, DefaultTopic)
	assert.Equal(t, "-1", got["retention.ms"])
	assert.Equal(t, "-1", got["retention.bytes"])
	assert.Equal(t, "delete", got["cleanup.policy"])
}

// The settings kfake cannot hold (it knows no unclean leader election, and
// has one broker) are judged from what a real cluster would describe.
func TestCheckTopicConfig(t *testing.T) {
	safe := func(extra map[string]string) map[string]string {
		m := map[string]string{"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete", "min.insync.replicas": "2", "unclean.leader.election.enable": "false"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tt := range []struct {
		name               string
		rf                 int
		configs            map[string]string
		refusals, warnings int
		mention            string
	}{
		{"Safe", 3, safe(nil), 0, 0, ""},
		{"UncleanElection", 3, safe(map[string]string{"unclean.leader.election.enable": "true"}), 1, 0, "unclean.leader.election.enable=true"},
		{"MinInsyncAboveReplicas", 1, safe(map[string]string{"min.insync.replicas": "2"}), 1, 0, "min.insync.replicas=2 is more than the topic's 1 replicas"},
		{"MinInsyncOneOfThree", 3, safe(map[string]string{"min.insync.replicas": "1"}), 0, 1, "min.insync.replicas=1 with 3 replicas"},
		{"MinInsyncOneOfOne", 1, safe(map[string]string{"min.insync.replicas": "1"}), 0, 0, ""},
		{"CompactAndDelete", 3, safe(map[string]string{"cleanup.policy": "compact,delete"}), 1, 0, "cleanup.policy=compact,delete"},
		{"Unreported", 3, map[string]string{}, 0, 0, ""},
		{"Everything", 3, safe(map[string]string{"retention.ms": "1", "retention.bytes": "1", "cleanup.policy": "compact", "unclean.leader.election.enable": "true"}), 4, 0, "retention.ms=1 deletes records older than 1ms"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := checkTopicConfig("orders", []string{"k1:9092"}, tt.rf, tt.configs)
			assert.Len(t, v.refusals, tt.refusals, "%v", v.refusals)
			assert.Len(t, v.warnings, tt.warnings, "%v", v.warnings)
			if tt.mention != "" {
				assert.Contains(t, append(v.refusals, v.warnings...)[0], tt.mention)
			}
		})
	}
}
