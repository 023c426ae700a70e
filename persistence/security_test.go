package persistence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence/kfaketest"
)

const (
	testSASLUser     = "orderd"
	testSASLPassword = "s3cret-Pa55word"
)

// testSASLUsers are the users of a secure test cluster: one per mechanism.
var testSASLUsers = []kfaketest.SASLUser{
	{Mechanism: SASLPlain, User: testSASLUser, Password: testSASLPassword},
	{Mechanism: SASLScramSHA256, User: testSASLUser, Password: testSASLPassword},
	{Mechanism: SASLScramSHA512, User: testSASLUser, Password: testSASLPassword},
}

// openSecureJournal opens a journal on addr over TCP, secured as sc says.
func openSecureJournal(t *testing.T, addr string, sc SecurityConfig) (*KafkaJournal, error) {
	t.Helper()
	sec, err := sc.Load()
	require.NoError(t, err)
	j, err := OpenKafka(testContext(t), KafkaConfig{Brokers: []string{addr}, Partitions: 1, Security: sec, Logger: testLogger(t),
		ProduceTimeout: testProduceTimeoutRoomy})
	if err == nil {
		t.Cleanup(func() { _ = j.Close() })
	}
	return j, err
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// Every mechanism, over TLS: the journal opens, appends, replays and loads,
// and its raw fetch path (fetch_raw.go) authenticates itself rather than
// falling back to kafka-go.
func TestKafkaOverTLSAndSASL(t *testing.T) {
	pki := kfaketest.NewPKI(t, "test CA")
	cluster := kfaketest.StartSecureCluster(t, pki.ServerTLS(t, nil), testSASLUsers...)
	addr := cluster.ListenAddrs()[0]
	for _, mech := range []string{SASLPlain, SASLScramSHA256, SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			sc := SecurityConfig{TLSCAFile: pki.CAFile, SASLMechanism: mech, SASLUsername: testSASLUser,
				// A final newline in the file is not part of the password.
				SASLPasswordFile: writeFile(t, "password", testSASLPassword+"\n")}
			j, err := openSecureJournal(t, addr, sc)
			require.NoError(t, err)
			id := "secure-" + mech
			events := lifecycle(id, 3)
			for _, ev := range events {
				require.NoError(t, j.Append(testContext(t), ev))
			}
			loaded, err := j.Load(testContext(t), id)
			require.NoError(t, err)
			assert.Equal(t, events, loaded)
			replayed, _ := replayAll(t, j)
			assert.Equal(t, events, byOrder(replayed)[id])

			raw, err := j.src.openRawFetcher(testContext(t), 0)
			require.NoError(t, err, "the log reader authenticates on its own connection")
			raw.close()
			_, got := readOffsets(t, j, 0, int64(len(replayed)))
			assert.Len(t, got, len(replayed))
		})
	}
}

// The password may come from the environment instead of a file.
func TestKafkaSASLPasswordFromTheEnvironment(t *testing.T) {
	cluster := kfaketest.StartSecureCluster(t, nil, testSASLUsers...)
	j, err := openSecureJournal(t, cluster.ListenAddrs()[0], SecurityConfig{
		SASLMechanism: "scram-sha-512", SASLUsername: testSASLUser, SASLPassword: testSASLPassword})
	require.NoError(t, err)
	require.NoError(t, j.Append(testContext(t), lifecycleEvent("env", 1)))
	_, got := readOffsets(t, j, 0, 1)
	assert.Len(t, got, 1)
}

// What a refusal looks like: an error that says which setting is wrong.
func TestKafkaSecurityRefusalsSayWhy(t *testing.T) {
	pki := kfaketest.NewPKI(t, "test CA")
	other := kfaketest.NewPKI(t, "another CA")
	secured := kfaketest.StartSecureCluster(t, pki.ServerTLS(t, nil), testSASLUsers...).ListenAddrs()[0]
	mutual := kfaketest.StartSecureCluster(t, pki.ServerTLS(t, pki.Pool())).ListenAddrs()[0]
	plaintext := kfaketest.StartSecureCluster(t, nil).ListenAddrs()[0]
	sasl := func(mech, password string) SecurityConfig {
		return SecurityConfig{TLSCAFile: pki.CAFile, SASLMechanism: mech, SASLUsername: testSASLUser, SASLPassword: Secret(password)}
	}
	tests := []struct {
		name string
		addr string
		sc   SecurityConfig
		want error
		text string
	}{
		{"wrong PLAIN password", secured, sasl(SASLPlain, "wrong"), ErrSASLAuthFailed, "SASL authentication failed"},
		{"wrong SCRAM password", secured, sasl(SASLScramSHA256, "wrong"), ErrSASLAuthFailed, "SASL authentication failed"},
		{"unknown user", secured, SecurityConfig{TLSCAFile: pki.CAFile, SASLMechanism: SASLScramSHA512, SASLUsername: "nobody", SASLPassword: "x"}, ErrSASLAuthFailed, "wrong username or password"},
		{"untrusted CA", secured, SecurityConfig{TLSCAFile: other.CAFile}, ErrTLSUntrusted, "certificate is not trusted (tls: failed to verify certificate: x509:"},
		{"system roots", secured, SecurityConfig{TLS: true}, ErrTLSUntrusted, "x509"},
		{"wrong server name", secured, SecurityConfig{TLSCAFile: pki.CAFile, TLSServerName: "kafka.example"}, ErrTLSWrongName, "kafka.example"},
		{"no client certificate", mutual, SecurityConfig{TLSCAFile: pki.CAFile}, ErrTLSRefused, "client certificate"},
		{"TLS to a plaintext port", plaintext, SecurityConfig{TLSCAFile: pki.CAFile}, ErrTLSNoAnswer, "is this its TLS port?"},
		{"no SASL where it is required", secured, SecurityConfig{TLSCAFile: pki.CAFile}, ErrBrokerHungUp, "require TLS or SASL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := openSecureJournal(t, tt.addr, tt.sc)
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.want)
			assert.Contains(t, err.Error(), tt.text)
			assert.NotContains(t, err.Error(), testSASLPassword)
		})
	}
}

// A broker that requires client certificates takes the right one, on
// every connection, the raw fetch path's included.
func TestKafkaMutualTLS(t *testing.T) {
	pki := kfaketest.NewPKI(t, "test CA")
	clients := kfaketest.NewPKI(t, "client CA")
	cluster := kfaketest.StartSecureCluster(t, pki.ServerTLS(t, clients.Pool()), testSASLUsers[1])
	cert, key := clients.ClientFiles(t, "orderd")
	j, err := openSecureJournal(t, cluster.ListenAddrs()[0], SecurityConfig{
		TLSCAFile: pki.CAFile, TLSCertFile: cert, TLSKeyFile: key,
		SASLMechanism: SASLScramSHA256, SASLUsername: testSASLUser, SASLPassword: testSASLPassword})
	require.NoError(t, err)
	require.NoError(t, j.Append(testContext(t), lifecycleEvent("mtls", 1)))
	_, got := readOffsets(t, j, 0, 1)
	assert.Equal(t, []order.Event{lifecycleEvent("mtls", 1)}, got)

	// The health probe's connections are secured too: it clears a
	// failed produce once the broker answers it.
	kfaketest.AnswerNextProduce(cluster, kerr.NotLeaderForPartition.Code)
	require.ErrorIs(t, j.Append(testContext(t), lifecycleEvent("mtls-2", 1)), order.ErrJournalUnavailable)
	require.Error(t, j.Healthy())
	waitFor(t, "the probe to reach the broker over TLS and SASL", func() bool { return j.Healthy() == nil })

	// A certificate from a CA the broker does not trust is refused.
	stranger, strangerKey := pki.ClientFiles(t, "stranger")
	_, err = openSecureJournal(t, cluster.ListenAddrs()[0], SecurityConfig{
		TLSCAFile: pki.CAFile, TLSCertFile: stranger, TLSKeyFile: strangerKey,
		SASLMechanism: SASLScramSHA256, SASLUsername: testSASLUser, SASLPassword: testSASLPassword})
	assert.ErrorIs(t, err, ErrTLSRefused)
}

func TestSecurityConfigCheck(t *testing.T) {
	tests := []struct {
		name string
		sc   SecurityConfig
		want string
	}{
		{"cert without key", SecurityConfig{TLSCertFile: "c.pem"}, "--kafka-tls-cert-file and --kafka-tls-key-file go together"},
		{"key without cert", SecurityConfig{TLSKeyFile: "k.pem"}, "--kafka-tls-cert-file and --kafka-tls-key-file go together"},
		{"unknown mechanism", SecurityConfig{SASLMechanism: "GSSAPI", SASLUsername: "u", SASLPassword: "p"}, `--kafka-sasl-mechanism "GSSAPI": want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`},
		{"no username", SecurityConfig{SASLMechanism: SASLPlain, SASLPassword: "p"}, "--kafka-sasl-username is required"},
		{"no password", SecurityConfig{SASLMechanism: SASLPlain, SASLUsername: "u"}, "give --kafka-sasl-password-file or set ORDERD_KAFKA_SASL_PASSWORD"},
		{"two passwords", SecurityConfig{SASLMechanism: SASLPlain, SASLUsername: "u", SASLPassword: "p", SASLPasswordFile: "f"}, "both in --kafka-sasl-password-file and in ORDERD_KAFKA_SASL_PASSWORD"},
		{"username without mechanism", SecurityConfig{SASLUsername: "u"}, "without --kafka-sasl-mechanism"},
		{"password without mechanism", SecurityConfig{SASLPassword: "p"}, "without --kafka-sasl-mechanism"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.sc.FlagPrefix = "--kafka-"
			err := tt.sc.Check()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			_, err = tt.sc.Load()
			assert.Error(t, err, "Load checks too")
		})
	}
	sec, err := SecurityConfig{}.Load()
	require.NoError(t, err)
	assert.Nil(t, sec, "nothing configured: plaintext")
	assert.Nil(t, sec.Dial(nil), "a nil Security leaves the dial function alone")
	assert.Nil(t, sec.SASL())
}

func TestSecurityLoadNamesTheFile(t *testing.T) {
	pki := kfaketest.NewPKI(t, "test CA")
	cert, key := pki.ClientFiles(t, "orderd")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	notPEM := writeFile(t, "ca.txt", "not a certificate")
	tests := []struct {
		name string
		sc   SecurityConfig
		want []string
	}{
		{"CA file missing", SecurityConfig{TLSCAFile: missing}, []string{"--tls-ca-file", missing, "no such file"}},
		{"CA file without certificates", SecurityConfig{TLSCAFile: notPEM}, []string{"--tls-ca-file", notPEM, "no PEM certificate"}},
		{"cert file missing", SecurityConfig{TLSCertFile: missing, TLSKeyFile: key}, []string{"--tls-cert-file", missing}},
		{"key file missing", SecurityConfig{TLSCertFile: cert, TLSKeyFile: missing}, []string{"--tls-key-file", missing}},
		{"key of another certificate", SecurityConfig{TLSCertFile: cert, TLSKeyFile: writeFile(t, "k.pem", "junk")}, []string{"--tls-cert-file", "--tls-key-file"}},
		{"password file missing", SecurityConfig{SASLMechanism: SASLPlain, SASLUsername: "u", SASLPasswordFile: missing}, []string{"--sasl-password-file", missing}},
		{"password file empty", SecurityConfig{SASLMechanism: SASLPlain, SASLUsername: "u", SASLPasswordFile: writeFile(t, "empty", "\n")}, []string{"--sasl-password-file", "empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.sc.FlagPrefix = "--"
			_, err := tt.sc.Load()
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	sec, err := SecurityConfig{TLSCAFile: pki.CAFile, TLSCertFile: cert, TLSKeyFile: key,
		SASLMechanism: SASLScramSHA256, SASLUsername: "orders", SASLPassword: testSASLPassword}.Load()
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf(`TLS (CA file %s) with a client certificate, SASL SCRAM-SHA-256 as "orders"`, pki.CAFile), sec.String())
}

// The password never shows in what a program may print of its
// configuration: fmt in every form, slog, JSON.
func TestSecretNeverPrints(t *testing.T) {
	sc := SecurityConfig{SASLMechanism: SASLPlain, SASLUsername: "u", SASLPassword: testSASLPassword}
	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		fmt.Fprintf(&out, verb+"\n", sc)
		fmt.Fprintf(&out, verb+"\n", sc.SASLPassword)
	}
	slog.New(slog.NewTextHandler(&out, nil)).Info("config", "security", sc, "password", sc.SASLPassword)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("config", "security", sc, "password", sc.SASLPassword)
	b, err := json.Marshal(sc)
	require.NoError(t, err)
	out.Write(b)
	assert.NotContains(t, out.String(), testSASLPassword)
	assert.NotContains(t, out.String(), fmt.Sprintf("%x", testSASLPassword))
	assert.Contains(t, out.String(), "[redacted]")
	assert.Equal(t, testSASLPassword, sc.SASLPassword.Reveal())

	sec, err := sc.Load()
	require.NoError(t, err)
	assert.NotContains(t, sec.String(), testSASLPassword)
}
