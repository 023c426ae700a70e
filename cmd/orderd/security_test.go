package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/persistence"
	"github.com/orderd/orderd/persistence/kfaketest"
)

const (
	secUser     = "orderd"
	secPassword = "Tr0ub4dor-and-3"
)

var secUsers = []kfaketest.SASLUser{
	{Mechanism: persistence.SASLPlain, User: secUser, Password: secPassword},
	{Mechanism: persistence.SASLScramSHA256, User: secUser, Password: secPassword},
	{Mechanism: persistence.SASLScramSHA512, User: secUser, Password: secPassword},
}

func secFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestConfigKafkaSecurity(t *testing.T) {
	pki := kfaketest.NewPKI(t, "test CA")
	cert, key := pki.ClientFiles(t, "orderd")
	passwordFile := secFile(t, "password", secPassword+"\n")

	// Flags.
	c, err := ParseConfig([]string{"--kafka-brokers", "k1:9093", "--kafka-tls-ca-file", pki.CAFile,
		"--kafka-tls-cert-file", cert, "--kafka-tls-key-file", key, "--kafka-tls-server-name", "kafka.internal",
		"--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", secUser, "--kafka-sasl-password-file", passwordFile,
	}, env(nil), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, persistence.SecurityConfig{FlagPrefix: "--kafka-", TLSCAFile: pki.CAFile, TLSCertFile: cert, TLSKeyFile: key,
		TLSServerName: "kafka.internal", SASLMechanism: "SCRAM-SHA-512", SASLUsername: secUser, SASLPasswordFile: passwordFile}, c.KafkaSecurity)

	// Their environment twins, the password among them; a flag wins.
	c, err = ParseConfig([]string{"--kafka-sasl-username", "from-flag"}, env(map[string]string{
		"ORDERD_KAFKA_BROKERS": "k1:9093", "ORDERD_KAFKA_TLS": "true", "ORDERD_KAFKA_SASL_MECHANISM": "PLAIN",
		"ORDERD_KAFKA_SASL_USERNAME": "from-env", "ORDERD_KAFKA_SASL_PASSWORD": secPassword,
	}), io.Discard)
	require.NoError(t, err)
	assert.True(t, c.KafkaSecurity.TLS)
	assert.Equal(t, "PLAIN", c.KafkaSecurity.SASLMechanism)
	assert.Equal(t, "from-flag", c.KafkaSecurity.SASLUsername)
	assert.Equal(t, secPassword, c.KafkaSecurity.SASLPassword.Reveal())

	// No flag carries the password itself.
	_, err = ParseConfig([]string{"--kafka-brokers", "k1:9093", "--kafka-sasl-password", secPassword}, env(nil), io.Discard)
	assert.ErrorContains(t, err, "flag provided but not defined: -kafka-sasl-password")
}

func TestConfigKafkaSecurityRejects(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nowhere.pem")
	brokers := []string{"--kafka-brokers", "k1:9093"}
	with := func(args ...string) []string { return append(append([]string{}, brokers...), args...) }
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"TLS with the embedded broker", []string{"--kafka-tls"}, nil, "apply to --kafka-brokers only"},
		{"SASL with the embedded broker", []string{"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u"}, map[string]string{"ORDERD_KAFKA_SASL_PASSWORD": "p"}, "apply to --kafka-brokers only"},
		{"password alone with the embedded broker", nil, map[string]string{"ORDERD_KAFKA_SASL_PASSWORD": "p"}, "apply to --kafka-brokers only"},
		{"cert without key", with("--kafka-tls-cert-file", "c.pem"), nil, "--kafka-tls-cert-file and --kafka-tls-key-file go together"},
		{"unknown mechanism", with("--kafka-sasl-mechanism", "OAUTHBEARER", "--kafka-sasl-username", "u"), map[string]string{"ORDERD_KAFKA_SASL_PASSWORD": "p"}, `--kafka-sasl-mechanism "OAUTHBEARER"`},
		{"no username", with("--kafka-sasl-mechanism", "PLAIN"), map[string]string{"ORDERD_KAFKA_SASL_PASSWORD": "p"}, "--kafka-sasl-username is required"},
		{"no password", with("--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u"), nil, "needs a password"},
		{"two passwords", with("--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u", "--kafka-sasl-password-file", "f"), map[string]string{"ORDERD_KAFKA_SASL_PASSWORD": "p"}, "choose one"},
		{"unreadable CA file", with("--kafka-tls-ca-file", missing), nil, "--kafka-tls-ca-file: open " + missing},
		{"unreadable password file", with("--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u", "--kafka-sasl-password-file", missing), nil, "--kafka-sasl-password-file: open " + missing},
		{"bad twin", brokers, map[string]string{"ORDERD_KAFKA_TLS": "maybe"}, "ORDERD_KAFKA_TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(tt.args, env(tt.env), io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), secPassword)
		})
	}
}

// secureMain runs orderd in-process against the broker at addr with the
// given flags and environment, its log (debug and up) collected.
func secureMain(t *testing.T, addr string, vars map[string]string, flags ...string) (url string, logs *syncBuffer) {
	t.Helper()
	args := append(append([]string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--kafka-brokers", addr, "--partitions", "1", "--replication-factor", "1"}, roomyFlags()...), flags...)
	cfg, err := ParseConfig(args, env(vars), io.Discard)
	require.NoError(t, err)
	logs = &syncBuffer{}
	m := NewMain(cfg, slog.New(slog.NewTextHandler(logWriter{logs}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, m.Start(context.Background()))
	t.Cleanup(func() {
		_ = m.Close()
		if t.Failed() {
			t.Logf("orderd logs:\n%s", logs.String())
		}
	})
	return "http://" + m.Addr(), logs
}

type logWriter struct{ b *syncBuffer }

func (w logWriter) Write(p []byte) (int, error) {
	w.b.WriteString(string(p))
	return len(p), nil
}

// TLS with a client certificate the broker requires, and SASL: orderd is
// ready and serves, and its log never holds the password.
func TestServerOverTLSAndSASL(t *testing.T) {
	pki := kfaketest.NewPKI(t, "test CA")
	clientCA := kfaketest.NewPKI(t, "client CA")
	cluster := kfaketest.StartSecureCluster(t, pki.ServerTLS(t, clientCA.Pool()), secUsers...)
	cert, key := clientCA.ClientFiles(t, "orderd")
	url, logs := secureMain(t, cluster.ListenAddrs()[0], map[string]string{
		"ORDERD_KAFKA_SASL_PASSWORD": secPassword, "ORDERD_KAFKA_TLS_CA_FILE": pki.CAFile,
	}, "--kafka-tls-cert-file", cert, "--kafka-tls-key-file", key,
		"--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-sasl-username", secUser)
	e2eWaitReady(t, url)

	e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders", `{"id":"tls-1"}`), http.StatusCreated)
	doc := e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders/tls-1/transitions", `{"to":"Paid"}`), http.StatusOK)
	assert.Equal(t, "Paid", doc["state"])
	history := e2eRequireStatus(t, e2eDo(t, "GET", url+"/v1/orders/tls-1/history", ""), http.StatusOK)
	assert.Len(t, history["transitions"], 2, "both records read back from the broker")

	assert.Contains(t, logs.String(), `security="TLS (CA file `+pki.CAFile+`) with a client certificate, SASL SCRAM-SHA-256 as \"orderd\""`)
	assert.NotContains(t, logs.String(), secPassword)
}

// waitNotReadyWith waits for the retry loop's log line to say want, and
// checks that orderd is not ready meanwhile.
func waitNotReadyWith(t *testing.T, url string, logs *syncBuffer, want string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "Kafka not usable yet; retrying") && strings.Contains(line, want) {
				return true
			}
		}
		return false
	}, e2eTimeout, 10*time.Millisecond, "no retry line saying %q", want)
	r := e2eDo(t, "GET", url+"/readyz", "")
	assert.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.body)
	assert.Equal(t, http.StatusOK, e2eDo(t, "GET", url+"/healthz", "").status, "alive all the same")
}

func TestServerWithAWrongPasswordIsNotReady(t *testing.T) {
	pki := kfaketest.NewPKI(t, "test CA")
	cluster := kfaketest.StartSecureCluster(t, pki.ServerTLS(t, nil), secUsers...)
	const wrong = "not-the-password-42"
	url, logs := secureMain(t, cluster.ListenAddrs()[0], map[string]string{"ORDERD_KAFKA_SASL_PASSWORD": wrong},
		"--kafka-tls-ca-file", pki.CAFile, "--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", secUser)
	waitNotReadyWith(t, url, logs, "SASL authentication failed (wrong username or password?)")
	assert.NotContains(t, logs.String(), wrong)
}

func TestServerWithAnUntrustedBrokerIsNotReady(t *testing.T) {
	pki := kfaketest.NewPKI(t, "test CA")
	other := kfaketest.NewPKI(t, "another CA")
	cluster := kfaketest.StartSecureCluster(t, pki.ServerTLS(t, nil), secUsers...)
	url, logs := secureMain(t, cluster.ListenAddrs()[0], map[string]string{"ORDERD_KAFKA_SASL_PASSWORD": secPassword},
		"--kafka-tls-ca-file", other.CAFile, "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", secUser)
	waitNotReadyWith(t, url, logs, "TLS: the broker's certificate is not trusted (tls: failed to verify certificate: x509: certificate signed by unknown authority")
	assert.NotContains(t, logs.String(), secPassword)
}

// The real process, its password from its environment: not ready, the
// log line says why, and neither log nor exit shows the password.
func TestServerProcessWithAWrongPassword(t *testing.T) {
	pki := kfaketest.NewPKI(t, "test CA")
	cluster := kfaketest.StartSecureCluster(t, pki.ServerTLS(t, nil), secUsers...)
	const wrong = "process-wrong-password-7"
	t.Setenv(persistence.EnvSASLPassword, wrong) // inherited by the child
	srv := startServerNotReady(t, t.TempDir(), "--kafka-brokers", cluster.ListenAddrs()[0], "--partitions", "1",
		"--replication-factor", "1", "--kafka-tls-ca-file", pki.CAFile, "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", secUser)
	require.Eventually(t, func() bool {
		return strings.Contains(srv.logs.String(), "SASL authentication failed (wrong username or password?)")
	}, serverStartTimeout, 20*time.Millisecond, "no log line naming SASL")
	status, _ := call(t, "GET", srv.url+"/readyz", "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	srv.stop(t, syscall.SIGTERM)
	assert.NotContains(t, srv.logs.String(), wrong)
}
