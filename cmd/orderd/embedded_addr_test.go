package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestEmbeddedKafkaAddr: with --embedded-kafka-addr the embedded broker
// listens where it is told, an outside Kafka client configured with that
// address alone reads the audit topic, and a restart on the same data
// directory comes back on the same address with the same records.
func TestEmbeddedKafkaAddr(t *testing.T) {
	dataDir := t.TempDir()
	brokerAddr := freeLoopbackAddr(t)

	m, url := e2eStartMain(t, dataDir, "--embedded-kafka-addr", brokerAddr)
	require.Equal(t, brokerAddr, m.broker.Addr())
	for _, id := range []string{"stable-1", "stable-2"} {
		r := e2eDo(t, "POST", url+"/v1/orders", `{"id":"`+id+`"}`)
		require.Equal(t, http.StatusCreated, r.status, r.body)
	}
	require.Equal(t, http.StatusOK, e2eDo(t, "POST", url+"/v1/orders/stable-1/transitions", `{"to":"Paid"}`).status)
	assert.Equal(t, map[string]int{"stable-1": 2, "stable-2": 1}, consumeKeys(t, brokerAddr, 3))
	require.NoError(t, m.Close())

	m, url = e2eStartMain(t, dataDir, "--embedded-kafka-addr", brokerAddr)
	require.Equal(t, brokerAddr, m.broker.Addr())
	assert.Equal(t, "Paid", e2eRequireStatus(t, e2eDo(t, "GET", url+"/v1/orders/stable-1", ""), http.StatusOK)["state"])
	require.Equal(t, http.StatusOK, e2eDo(t, "POST", url+"/v1/orders/stable-2/transitions", `{"to":"Cancelled"}`).status)
	assert.Equal(t, map[string]int{"stable-1": 2, "stable-2": 2}, consumeKeys(t, brokerAddr, 4))
}

// consumeKeys reads want records of the audit topic from the beginning with
// franz-go (another client than orderd's kafka-go), seeded with addr alone,
// and counts them by key. Every connection it makes must go to addr: the
// broker advertises the address it was given, not another.
func consumeKeys(t *testing.T, addr string, want int) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	var mu sync.Mutex
	var dialed []string
	dialer := &net.Dialer{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topicDefault),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, host)
			mu.Unlock()
			return dialer.DialContext(ctx, network, host)
		}))
	require.NoError(t, err)
	defer cl.Close()
	keys := map[string]int{}
	for n := 0; n < want; {
		fetches := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read %d of %d records", n, want)
		for _, fe := range fetches.Errors() {
			require.NoError(t, fe.Err)
		}
		for _, r := range fetches.Records() {
			keys[string(r.Key)]++
			n++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, dialed)
	for _, host := range dialed {
		assert.Equal(t, addr, host, "the client dialed another address than the one configured")
	}
	return keys
}

func TestConfigEmbeddedKafkaAddr(t *testing.T) {
	c, err := ParseConfig([]string{"--embedded-kafka-addr", "127.0.0.1:9093"}, env(nil), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:9093", c.EmbeddedKafkaAddr)
	c, err = ParseConfig(nil, env(map[string]string{"ORDERD_EMBEDDED_KAFKA_ADDR": "[::1]:9093"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "[::1]:9093", c.EmbeddedKafkaAddr)

	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"every interface", []string{"--embedded-kafka-addr", "0.0.0.0:9092"}, nil, "only loopback addresses"},
		{"no host", []string{"--embedded-kafka-addr", ":9092"}, nil, "only loopback addresses"},
		{"a network address", nil, map[string]string{"ORDERD_EMBEDDED_KAFKA_ADDR": "192.0.2.1:9092"}, "only loopback addresses"},
		{"no port", []string{"--embedded-kafka-addr", "127.0.0.1"}, nil, "want host:port"},
		{"named port", []string{"--embedded-kafka-addr", "127.0.0.1:kafka"}, nil, "want host:port"},
		{"with external brokers", []string{"--embedded-kafka-addr", "127.0.0.1:9092", "--kafka-brokers", "k1:9092"}, nil, "not with --kafka-brokers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(tt.args, env(tt.env), io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "--embedded-kafka-addr")
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
