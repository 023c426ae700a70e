package persistence

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// The topic settings that decide whether the log keeps what orderd wrote.
// orderd rebuilds every order from the whole log (DESIGN §4, §6), so a record
// the broker deletes is an acknowledged transition lost: an order that
// vanishes, or comes back in an old state, at the next restart.
const (
	configRetentionMs      = "retention.ms"
	configRetentionBytes   = "retention.bytes"
	configCleanupPolicy    = "cleanup.policy"
	configMinInsync        = "min.insync.replicas"
	configUncleanElection  = "unclean.leader.election.enable"
	retentionForever       = "-1"
	cleanupPolicyDelete    = "delete"
	minInsyncWarnAtReplica = 3 // from this replication factor on, min.insync.replicas=1 is a choice worth a warning
)

// topicCreateConfig is what a topic orderd creates is given: nothing is
// ever deleted, and acks=all means at least minInsyncReplicas copies.
func topicCreateConfig(replicationFactor int) []kafka.ConfigEntry {
	return []kafka.ConfigEntry{
		{ConfigName: configRetentionMs, ConfigValue: retentionForever},
		{ConfigName: configRetentionBytes, ConfigValue: retentionForever},
		{ConfigName: configCleanupPolicy, ConfigValue: cleanupPolicyDelete},
		{ConfigName: configMinInsync, ConfigValue: strconv.Itoa(minInsyncReplicas(replicationFactor))},
	}
}

// TopicConfigError is an existing topic whose settings would lose records
// orderd acknowledged. It names each setting, its value, and the command that
// fixes it; orderd stays not ready and retries until the topic is fixed.
type TopicConfigError struct {
	Topic    string
	Problems []string
}

func (e *TopicConfigError) Error() string {
	return fmt.Sprintf("topic %s is not safe for orderd's log: %s", e.Topic, strings.Join(e.Problems, "; "))
}

// topicVerdict is what checkTopicConfig makes of a topic's settings.
type topicVerdict struct {
	refusals []string // each makes the topic unusable
	warnings []string // each worth an operator's attention
	// repairs are the settings that would cure the refusals about
	// deletion, as name=value (what repairTopicConfig sets).
	repairs []kafka.IncrementalAlterConfigsRequestConfig
}

// checkTopicConfig judges a topic's settings as the broker described them.
// A setting the broker does not report (kfake knows no unclean election) is
// not judged. replicationFactor is the topic's own.
func checkTopicConfig(topic string, brokers []string, replicationFactor int, configs map[string]string) topicVerdict {
	var v topicVerdict
	fix := func(setting, value string) string {
		bootstrap := "BROKER:9092"
		if len(brokers) > 0 {
			bootstrap = brokers[0]
		}
		return fmt.Sprintf("kafka-configs.sh --bootstrap-server %s --alter --entity-type topics --entity-name %s --add-config %s=%s",
			bootstrap, topic, setting, value)
	}
	refuseDeletion := func(setting, value, why string) {
		v.refusals = append(v.refusals, fmt.Sprintf("%s=%s %s, and orderd rebuilds every order from the whole log; fix: %s",
			setting, value, why, fix(setting, retentionForever)))
		v.repairs = append(v.repairs, kafka.IncrementalAlterConfigsRequestConfig{
			Name: setting, Value: retentionForever, ConfigOperation: kafka.ConfigOperationSet})
	}
	if ms, ok := configs[configRetentionMs]; ok && ms != retentionForever {
		why := "deletes records past an age"
		if n, err := strconv.ParseInt(ms, 10, 64); err == nil && n >= 0 {
			why = fmt.Sprintf("deletes records older than %v", time.Duration(n)*time.Millisecond)
		}
		refuseDeletion(configRetentionMs, ms, why)
	}
	if b, ok := configs[configRetentionBytes]; ok && b != retentionForever {
		refuseDeletion(configRetentionBytes, b, "deletes the oldest records once a partition holds that many bytes")
	}
	if policy, ok := configs[configCleanupPolicy]; ok && strings.Contains(policy, "compact") {
		v.refusals = append(v.refusals, fmt.Sprintf("%s=%s keeps only the last record of each order, and orderd needs every one (history, idempotency keys, the apply rule); fix: %s",
			configCleanupPolicy, policy, fix(configCleanupPolicy, cleanupPolicyDelete)))
		v.repairs = append(v.repairs, kafka.IncrementalAlterConfigsRequestConfig{
			Name: configCleanupPolicy, Value: cleanupPolicyDelete, ConfigOperation: kafka.ConfigOperationSet})
	}
	if unclean, ok := configs[configUncleanElection]; ok && unclean == "true" {
		v.refusals = append(v.refusals, fmt.Sprintf("%s=true lets a replica that missed acknowledged records become leader, which drops them; fix: %s",
			configUncleanElection, fix(configUncleanElection, "false")))
	}
	if s, ok := configs[configMinInsync]; ok {
		minISR, err := strconv.Atoi(s)
		switch {
		case err != nil:
			v.warnings = append(v.warnings, fmt.Sprintf("%s=%q is not a number", configMinInsync, s))
		case minISR > replicationFactor:
			v.refusals = append(v.refusals, fmt.Sprintf("%s=%d is more than the topic's %d replicas, so every write with acks=all fails; fix: %s",
				configMinInsync, minISR, replicationFactor, fix(configMinInsync, strconv.Itoa(minInsyncReplicas(replicationFactor)))))
		case minISR <= 1 && replicationFactor >= minInsyncWarnAtReplica:
			v.warnings = append(v.warnings, fmt.Sprintf("%s=%d with %d replicas: an acknowledged transition may be on one broker only, and lost with it; %s sets %d",
				configMinInsync, minISR, replicationFactor, fix(configMinInsync, strconv.Itoa(minInsyncReplicas(replicationFactor))), minInsyncReplicas(replicationFactor)))
		}
	}
	return v
}

// describeTopicConfig reads the settings checkTopicConfig judges.
func describeTopicConfig(ctx context.Context, admin *kafka.Client, topic string) (map[string]string, error) {
	resp, err := admin.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic,
		ResourceName: topic,
		ConfigNames:  []string{configRetentionMs, configRetentionBytes, configCleanupPolicy, configMinInsync, configUncleanElection},
	}}})
	if err != nil {
		return nil, fmt.Errorf("describing the settings of topic %s: %w", topic, err)
	}
	if len(resp.Resources) != 1 {
		return nil, fmt.Errorf("describing the settings of topic %s: %d resources in the answer, want 1", topic, len(resp.Resources))
	}
	if err := resp.Resources[0].Error; err != nil {
		return nil, fmt.Errorf("describing the settings of topic %s: %w", topic, err)
	}
	configs := make(map[string]string, len(resp.Resources[0].ConfigEntries))
	for _, e := range resp.Resources[0].ConfigEntries {
		configs[e.ConfigName] = e.ConfigValue
	}
	return configs, nil
}

// checkTopic reads the topic's settings and refuses it if they could delete
// records. With cfg.RepairTopicConfig (the embedded broker, which orderd
// owns) it sets retention and cleanup right instead of refusing over them:
// topics made by orderd before it set them have Kafka's 7-day default.
func (j *KafkaJournal) checkTopic(ctx context.Context, admin *kafka.Client, replicationFactor int) error {
	configs, err := describeTopicConfig(ctx, admin, j.cfg.Topic)
	if err != nil {
		return err
	}
	v := checkTopicConfig(j.cfg.Topic, j.cfg.Brokers, replicationFactor, configs)
	if len(v.refusals) > 0 && j.cfg.RepairTopicConfig && len(v.repairs) == len(v.refusals) {
		if err := repairTopicConfig(ctx, admin, j.cfg.Topic, v.repairs); err != nil {
			return err
		}
		j.log.Warn("set the topic's retention and cleanup so that nothing is deleted", "was", strings.Join(v.refusals, "; "))
		if configs, err = describeTopicConfig(ctx, admin, j.cfg.Topic); err != nil {
			return err
		}
		v = checkTopicConfig(j.cfg.Topic, j.cfg.Brokers, replicationFactor, configs)
	}
	for _, w := range v.warnings {
		j.log.Warn("topic setting", "topic", j.cfg.Topic, "warning", w)
	}
	if len(v.refusals) > 0 {
		return &TopicConfigError{Topic: j.cfg.Topic, Problems: v.refusals}
	}
	return nil
}

func repairTopicConfig(ctx context.Context, admin *kafka.Client, topic string, set []kafka.IncrementalAlterConfigsRequestConfig) error {
	resp, err := admin.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, Configs: set,
	}}})
	if err == nil && len(resp.Resources) == 1 {
		err = resp.Resources[0].Error
	}
	if err != nil {
		return fmt.Errorf("setting retention and cleanup of topic %s: %w", topic, err)
	}
	return nil
}
