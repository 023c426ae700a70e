package main

import (
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/persistence"
)

// TestATopicThatDeletesRecordsIsRefusedUntilFixed: a topic made beforehand
// with Kafka's 7-day retention keeps orderd not ready, with a log line that
// names the setting and the command that fixes it; once an operator fixes it,
// orderd becomes ready by itself.
func TestATopicThatDeletesRecordsIsRefusedUntilFixed(t *testing.T) {
	broker, err := persistence.StartEmbedded(persistence.EmbeddedConfig{DataDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(broker.Close)
	// kafka-go's first metadata request has the transport's MetadataTTL as
	// its deadline (6 s by default): roomy, for a busy machine.
	transport := &kafka.Transport{MetadataTTL: roomyTimeout / 4, DialTimeout: roomyTimeout / 4}
	t.Cleanup(transport.CloseIdleConnections)
	admin := &kafka.Client{Addr: kafka.TCP(broker.Addr()), Transport: transport}
	ctx, cancel := context.WithTimeout(context.Background(), serverStartTimeout)
	defer cancel()
	created, err := admin.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topicDefault, NumPartitions: 2, ReplicationFactor: 1, // Kafka's defaults otherwise
	}}})
	require.NoError(t, err)
	require.NoError(t, created.Errors[topicDefault])

	srv := startServerNotReady(t, t.TempDir(), "--kafka-brokers", broker.Addr(), "--replication-factor", "1")
	require.Eventually(t, func() bool {
		return strings.Contains(srv.logs.String(), "kafka-configs.sh --bootstrap-server "+broker.Addr()+
			" --alter --entity-type topics --entity-name "+topicDefault+" --add-config retention.ms=-1")
	}, serverStartTimeout, 20*time.Millisecond, "the refusal names the fix")
	assert.Contains(t, srv.logs.String(), "retention.ms=604800000 deletes records older than 168h0m0s")
	status, _ := call(t, "GET", srv.url+"/readyz", "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	status, body := call(t, "POST", srv.url+"/v1/orders", `{"id":"too-early"}`, nil)
	assert.Equal(t, http.StatusServiceUnavailable, status, "%s", body)

	altered, err := admin.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topicDefault,
		Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: "retention.ms", Value: "-1", ConfigOperation: kafka.ConfigOperationSet}},
	}}})
	require.NoError(t, err)
	require.NoError(t, altered.Resources[0].Error)
	require.Eventually(t, func() bool {
		status, _ := call(t, "GET", srv.url+"/readyz", "", nil)
		return status == http.StatusOK
	}, serverStartTimeout, 20*time.Millisecond, "orderd became ready once the topic was fixed")
	status, body = call(t, "POST", srv.url+"/v1/orders", `{"id":"kept-forever"}`, nil)
	assert.Equal(t, http.StatusCreated, status, "%s", body)
	srv.stop(t, syscall.SIGTERM)
}
