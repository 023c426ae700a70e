package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/cluster"
	orderhttp "github.com/orderd/orderd/http"
	"github.com/orderd/orderd/http/paymentgw"
	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestConfigDefaultsEmbedded(t *testing.T) {
	c, err := ParseConfig(nil, env(nil), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, Config{
		Addr: addrDefault, Topic: topicDefault, Partitions: partitionsEmbeddedDefault,
		ReplicationFactor: replicationEmbeddedDefault, DataDir: dataDirDefault,
		RequestTimeout: requestTimeoutDefault, ShutdownTimeout: shutdownTimeoutDefault, LogLevel: "info",
		IdempotencyKeysPerOrder: actors.IdempotencyKeysPerOrderDefault, IdempotencyWindow: actors.IdempotencyWindowDefault,
		RatePerPrincipal: orderhttp.DefaultRatePerPrincipal, BurstPerPrincipal: orderhttp.DefaultBurstPerPrincipal,
		IdleActorTimeout: actors.IdleActorTimeoutDefault, LiveActorsMax: actors.LiveActorsMaxDefault, EvictAfter: actors.EvictAfterDefault,
		PaymentTimeout: order.PaymentTimeoutDefault, GCHeadroomMiB: gcHeadroomMiBDefault,
		ProduceTimeout: persistence.DefaultProduceTimeout, Compression: persistence.DefaultCompression, KafkaSecurity: persistence.SecurityConfig{FlagPrefix: "--kafka-"},
		ClusterSessionTimeout: cluster.DefaultSessionTimeout, PaymentGatewayTimeout: actors.PaymentCallTimeoutDefault,
	}, c)
	assert.True(t, c.Embedded())
}

func TestConfigDefaultsCluster(t *testing.T) {
	c, err := ParseConfig([]string{"--kafka-brokers", "k1:9092, k2:9092,"}, env(nil), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"k1:9092", "k2:9092"}, c.KafkaBrokers)
	assert.Equal(t, partitionsClusterDefault, c.Partitions)
	assert.Equal(t, replicationClusterDefault, c.ReplicationFactor)
}

func TestConfigEnvironmentAndFlagPrecedence(t *testing.T) {
	vars := map[string]string{
		"ORDERD_ADDR":               "127.0.0.1:9000",
		"ORDERD_KAFKA_BROKERS":      "k1:9092",
		"ORDERD_TOPIC":              "env.topic",
		"ORDERD_PARTITIONS":         "8",
		"ORDERD_REPLICATION_FACTOR": "2",
		"ORDERD_REQUEST_TIMEOUT":    "2s",
	}
	c, err := ParseConfig([]string{"--topic", "flag.topic", "--partitions=4"}, env(vars), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:9000", c.Addr, "env when no flag")
	assert.Equal(t, "flag.topic", c.Topic, "the flag wins")
	assert.Equal(t, 4, c.Partitions, "the flag wins")
	assert.Equal(t, 2, c.ReplicationFactor)
	assert.Equal(t, 2*time.Second, c.RequestTimeout)
	assert.Equal(t, []string{"k1:9092"}, c.KafkaBrokers)
}

func TestConfigRejects(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad env number", nil, map[string]string{"ORDERD_PARTITIONS": "16x"}, "ORDERD_PARTITIONS"},
		{"bad flag number", []string{"--partitions", "many"}, nil, "partitions"},
		{"too many partitions", []string{"--partitions", "5000"}, nil, "--partitions 5000"},
		{"replicated embedded broker", []string{"--replication-factor", "3"}, nil, "embedded broker is one broker"},
		{"address without port", []string{"--addr", "localhost"}, nil, "--addr"},
		{"empty topic", []string{"--topic", ""}, nil, "--topic"},
		{"stray argument", []string{"serve"}, nil, `unexpected argument "serve"`},
		{"log level", []string{"--log-level", "loud"}, nil, "--log-level"},
		{"rate limit zero", []string{"--rate-limit", "0"}, nil, "--rate-limit"},
		{"no live actors", []string{"--live-actors-max", "0"}, nil, "--live-actors-max"},
		{"unknown codec", []string{"--compression", "brotli"}, nil, `--compression "brotli"`},
		{"negative GC headroom", []string{"--gc-headroom-mib", "-1"}, nil, "--gc-headroom-mib -1"},
		{"huge GC headroom", nil, map[string]string{"ORDERD_GC_HEADROOM_MIB": "100000"}, "--gc-headroom-mib 100000"},
		{"unknown flag", []string{"--nope"}, nil, "nope"},
		{"cluster on the embedded broker", []string{"--cluster-group", "g", "--advertise-url", "http://127.0.0.1:8080"}, nil, "--cluster-group needs --kafka-brokers"},
		{"cluster without a URL", []string{"--kafka-brokers", "k:9092", "--cluster-group", "g"}, nil, "--cluster-group needs --advertise-url"},
		{"advertise URL with a path", []string{"--kafka-brokers", "k:9092", "--cluster-group", "g", "--advertise-url", "http://n1:8080/api"}, nil, "no path"},
		{"advertise URL without a scheme", []string{"--kafka-brokers", "k:9092", "--cluster-group", "g", "--advertise-url", "n1:8080"}, nil, "want http://host:port"},
		{"advertise URL alone", []string{"--advertise-url", "http://n1:8080"}, nil, "only for a cluster node"},
		{"gateway URL without a scheme", []string{"--payment-gateway-url", "payments.internal:8443"}, nil, `--payment-gateway-url "payments.internal:8443": want an absolute http:// or https:// URL`},
		{"gateway URL of another scheme", nil, map[string]string{"ORDERD_PAYMENT_GATEWAY_URL": "ftp://payments.internal"}, "--payment-gateway-url"},
		{"gateway URL without a host", []string{"--payment-gateway-url", "https:///authorize"}, nil, "with a host"},
		{"gateway URL with a password", []string{"--payment-gateway-url", "https://u:p@payments.internal"}, nil, "ORDERD_PAYMENT_GATEWAY_TOKEN"},
		{"gateway URL with a query", []string{"--payment-gateway-url", "https://payments.internal/?k=v"}, nil, "no query"},
		{"gateway token without a URL", nil, map[string]string{"ORDERD_PAYMENT_GATEWAY_TOKEN": "secret"}, "--payment-gateway-url is not"},
		{"gateway timeout too short", []string{"--payment-gateway-timeout", "10ms"}, nil, "--payment-gateway-timeout 10ms: must be 100ms to 2m0s"},
		{"gateway timeout too long", nil, map[string]string{"ORDERD_PAYMENT_GATEWAY_TIMEOUT": "1h"}, "--payment-gateway-timeout 1h0m0s"},
		{"gateway timeout not a duration", []string{"--payment-gateway-timeout", "10"}, nil, "payment-gateway-timeout"},
		{"session too short", []string{"--kafka-brokers", "k:9092", "--cluster-group", "g", "--advertise-url", "http://n1:8080", "--cluster-session-timeout", "1s"}, nil, "--cluster-session-timeout 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(tt.args, env(tt.env), io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestConfigCluster(t *testing.T) {
	vars := map[string]string{"ORDERD_CLUSTER_GROUP": "orderd", "ORDERD_ADVERTISE_URL": "http://n1:8080"}
	c, err := ParseConfig([]string{"--kafka-brokers", "k:9092", "--cluster-session-timeout", "10s"}, env(vars), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "orderd", c.ClusterGroup)
	assert.Equal(t, "http://n1:8080", c.AdvertiseURL)
	assert.Equal(t, 10*time.Second, c.ClusterSessionTimeout)
}

func TestConfigProduceTimeout(t *testing.T) {
	c, err := ParseConfig(nil, env(map[string]string{"ORDERD_PRODUCE_TIMEOUT": "30s"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 30*time.Second, c.ProduceTimeout)

	c, err = ParseConfig([]string{"--produce-timeout", "2m"}, env(map[string]string{"ORDERD_PRODUCE_TIMEOUT": "30s"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 2*time.Minute, c.ProduceTimeout, "the flag wins")

	for _, args := range [][]string{
		{"--produce-timeout", "0s"},
		{"--produce-timeout", "-1s"},
		{"--produce-timeout", (produceTimeoutMax + time.Second).String()},
	} {
		_, err := ParseConfig(args, env(nil), io.Discard)
		assert.ErrorContains(t, err, "--produce-timeout", args)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:8080": true, "[::1]:8080": true, "127.1.2.3:1": true,
		"0.0.0.0:8080": false, ":8080": false, "192.0.2.1:80": false, "[::]:80": false,
	} {
		assert.Equal(t, want, loopbackOnly(addr), addr)
	}
}

func TestConfigAPIKeys(t *testing.T) {
	c, err := ParseConfig(nil, env(map[string]string{"ORDERD_API_KEYS": "shop=shop-token-0123456789,ops=ops-token-0123456789"}), io.Discard)
	require.NoError(t, err)
	keys, err := c.APIKeys()
	require.NoError(t, err)
	require.Len(t, keys, 2)
	assert.Equal(t, "ops", keys[1].Principal)

	file := t.TempDir() + "/keys"
	require.NoError(t, os.WriteFile(file, []byte("# keys\nshop=shop-token-0123456789\n"), 0o600))
	c, err = ParseConfig([]string{"--api-keys-file", file}, env(nil), io.Discard)
	require.NoError(t, err)
	keys, err = c.APIKeys()
	require.NoError(t, err)
	assert.Equal(t, "shop", keys[0].Principal)

	_, err = ParseConfig([]string{"--api-keys-file", file}, env(map[string]string{"ORDERD_API_KEYS": "a=b"}), io.Discard)
	assert.ErrorContains(t, err, "choose one")

	c, err = ParseConfig(nil, env(map[string]string{"ORDERD_API_KEYS": "shop=short"}), io.Discard)
	require.NoError(t, err)
	_, err = c.APIKeys()
	assert.ErrorContains(t, err, "ORDERD_API_KEYS")
}

// TestOpenServerRefusesNonLoopback: without keys orderd will not listen where
// other machines can reach it.
func TestOpenServerRefusesNonLoopback(t *testing.T) {
	c, err := ParseConfig([]string{"--addr", "0.0.0.0:0", "--data-dir", t.TempDir()}, env(nil), io.Discard)
	require.NoError(t, err)
	m := NewMain(c, slog.New(slog.DiscardHandler))
	err = m.Start(context.Background())
	assert.ErrorContains(t, err, "refusing to listen on 0.0.0.0:0 without API keys")
	assert.NoError(t, m.Close())
}

func TestAllowUnauthenticatedIsParsed(t *testing.T) {
	c, err := ParseConfig([]string{"--allow-unauthenticated"}, env(nil), io.Discard)
	require.NoError(t, err)
	assert.True(t, c.AllowUnauthenticated)
	c, err = ParseConfig(nil, env(map[string]string{"ORDERD_ALLOW_UNAUTHENTICATED": "true"}), io.Discard)
	require.NoError(t, err)
	assert.True(t, c.AllowUnauthenticated)
}

func TestConfigPaymentGateway(t *testing.T) {
	vars := map[string]string{
		"ORDERD_PAYMENT_GATEWAY_URL":     "https://env.invalid",
		"ORDERD_PAYMENT_GATEWAY_TIMEOUT": "3s",
		"ORDERD_PAYMENT_GATEWAY_TOKEN":   "gateway-secret-token",
	}
	c, err := ParseConfig([]string{"--payment-gateway-url", "http://127.0.0.1:8099/psp/"}, env(vars), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:8099/psp/", c.PaymentGatewayURL, "the flag wins")
	assert.Equal(t, 3*time.Second, c.PaymentGatewayTimeout)
	assert.Equal(t, "gateway-secret-token", c.PaymentGatewayToken.Reveal())
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		assert.NotContains(t, fmt.Sprintf(verb, c), "gateway-secret-token", verb)
	}
}

func TestNewPaymentGateway(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name string
		args []string
		want any
	}{
		{"embedded: simulated", nil, (*actors.SimulatedGateway)(nil)},
		{"external brokers without a URL: simulated, with a warning", []string{"--kafka-brokers", "k:9092"}, (*actors.SimulatedGateway)(nil)},
		{"a URL: the HTTP bridge", []string{"--payment-gateway-url", "http://127.0.0.1:8099"}, (*paymentgw.Client)(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig(tt.args, env(nil), io.Discard)
			require.NoError(t, err)
			gw, closeGW, err := newPaymentGateway(c, log)
			require.NoError(t, err)
			defer closeGW()
			assert.IsType(t, tt.want, gw)
		})
	}
}

func TestCleartextBeyondLoopback(t *testing.T) {
	for u, want := range map[string]bool{
		"http://127.0.0.1:8099": false, "http://localhost/psp": false, "http://[::1]:80": false,
		"https://payments.example": false, "http://payments.example": true, "http://10.0.0.7:8080": true,
	} {
		assert.Equal(t, want, cleartextBeyondLoopback(u), u)
	}
}
