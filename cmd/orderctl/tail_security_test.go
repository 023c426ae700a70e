package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
	"github.com/orderd/orderd/persistence/kfaketest"
)

const (
	secUser     = "auditor"
	secPassword = "c0rrect-h0rse-battery"
)

// secureTopic starts a broker with TLS and SASL (every mechanism) and writes
// orders' lifecycles to orderd's topic through orderd's journal, secured
// the same way. It returns the broker's address, the CA file and the
// events, in order.
func secureTopic(t *testing.T) (addr, caFile string, events []order.Event) {
	t.Helper()
	pki := kfaketest.NewPKI(t, "test CA")
	var users []kfaketest.SASLUser
	for _, m := range []string{persistence.SASLPlain, persistence.SASLScramSHA256, persistence.SASLScramSHA512} {
		users = append(users, kfaketest.SASLUser{Mechanism: m, User: secUser, Password: secPassword})
	}
	addr = kfaketest.StartSecureCluster(t, pki.ServerTLS(t, nil), users...).ListenAddrs()[0]
	sec, err := persistence.SecurityConfig{TLSCAFile: pki.CAFile, SASLMechanism: persistence.SASLScramSHA256,
		SASLUsername: secUser, SASLPassword: secPassword}.Load()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), ctlRunLimit)
	defer cancel()
	j, err := persistence.OpenKafka(ctx, persistence.KafkaConfig{Brokers: []string{addr}, Partitions: 1, Security: sec,
		ProduceTimeout: roomyProduceTimeout})
	require.NoError(t, err)
	defer j.Close()
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for i, id := range []string{"sec-1", "sec-2"} {
		create := order.Event{EventID: fmt.Sprintf("e%d-1", i), OrderID: id, Version: 1, To: order.Created, At: at, Principal: "p"}
		pay := order.Event{EventID: fmt.Sprintf("e%d-2", i), OrderID: id, Version: 2, From: order.Created, To: order.Paid, At: at, Principal: "p"}
		for _, ev := range []order.Event{create, pay} {
			require.NoError(t, j.Append(ctx, ev))
			events = append(events, ev)
		}
	}
	return addr, pki.CAFile, events
}

func requireTailed(t *testing.T, events []order.Event, r result) {
	t.Helper()
	require.Equal(t, exitOK, r.code, r.stderr)
	lines := tailLines(t, r.stdout)
	require.Len(t, lines, len(events), r.stdout)
	for i, ev := range events {
		assert.Equal(t, ev.EventID, lines[i].EventID)
		assert.Equal(t, ev.OrderID, lines[i].OrderID)
		assert.Equal(t, ev.Version, lines[i].Version)
	}
}

func TestTailOverTLSAndSASL(t *testing.T) {
	addr, caFile, events := secureTopic(t)

	// Flags, the password from the environment: partition readers.
	r := ctl(t, map[string]string{persistence.EnvSASLPassword: secPassword}, "tail", "--brokers", addr,
		"--tls-ca-file", caFile, "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", secUser,
		"--from-beginning", "--until-end", "--json")
	requireTailed(t, events, r)

	// orderd's environment alone, the password in a file: a consumer
	// group, whose coordinator connections and commits are secured too.
	passwordFile := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(passwordFile, []byte(secPassword+"\n"), 0o600))
	env := map[string]string{
		envBrokers: addr, "ORDERD_KAFKA_TLS_CA_FILE": caFile, "ORDERD_KAFKA_SASL_MECHANISM": "PLAIN",
		"ORDERD_KAFKA_SASL_USERNAME": secUser, "ORDERD_KAFKA_SASL_PASSWORD_FILE": passwordFile,
	}
	r = ctl(t, env, "tail", "--group", "mailer", "--until-end", "--json")
	requireTailed(t, events, r)
	r = ctl(t, env, "tail", "--group", "mailer", "--until-end", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Empty(t, r.stdout, "the group committed what it printed")
}

func TestTailSecurityRefusals(t *testing.T) {
	addr, caFile, _ := secureTopic(t)
	other := kfaketest.NewPKI(t, "another CA")

	const wrong = "wr0ng-password"
	r := ctl(t, map[string]string{persistence.EnvSASLPassword: wrong}, "tail", "--brokers", addr,
		"--tls-ca-file", caFile, "--sasl-mechanism", "SCRAM-SHA-256", "--sasl-username", secUser, "--from-beginning", "--until-end")
	assert.Equal(t, exitUnavailable, r.code)
	assert.Contains(t, r.stderr, "SASL authentication failed (wrong username or password?)")
	assert.NotContains(t, r.stderr+r.stdout, wrong)

	r = ctl(t, map[string]string{persistence.EnvSASLPassword: secPassword}, "tail", "--brokers", addr,
		"--tls-ca-file", other.CAFile, "--sasl-mechanism", "PLAIN", "--sasl-username", secUser, "--from-beginning", "--until-end")
	assert.Equal(t, exitUnavailable, r.code)
	assert.Contains(t, r.stderr, "TLS: the broker's certificate is not trusted (tls: failed to verify certificate: x509:")
	assert.NotContains(t, r.stderr+r.stdout, secPassword)
}

func TestTailSecurityUsageErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nowhere.pem")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no username", map[string]string{persistence.EnvSASLPassword: "p"}, []string{"--sasl-mechanism", "PLAIN"}, "--sasl-username is required with --sasl-mechanism"},
		{"no password", nil, []string{"--sasl-mechanism", "PLAIN", "--sasl-username", "u"}, "give --sasl-password-file or set ORDERD_KAFKA_SASL_PASSWORD"},
		{"unknown mechanism", map[string]string{"ORDERD_KAFKA_SASL_MECHANISM": "GSSAPI"}, nil, `--sasl-mechanism "GSSAPI"`},
		{"key without cert", nil, []string{"--tls-key-file", "k.pem"}, "--tls-cert-file and --tls-key-file go together"},
		{"unreadable CA file", nil, []string{"--tls-ca-file", missing}, "--tls-ca-file: open " + missing},
		{"bad TLS twin", map[string]string{"ORDERD_KAFKA_TLS": "maybe"}, nil, `ORDERD_KAFKA_TLS="maybe": want true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ctl(t, tt.env, append([]string{"tail", "--brokers", "127.0.0.1:1"}, tt.args...)...)
			assert.Equal(t, exitUsage, r.code)
			assert.Contains(t, r.stderr, tt.want)
		})
	}
}
