package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/orderd/orderd/persistence"
)

// tail's TLS and SASL flags are orderd's without its "kafka-" prefix (as
// --brokers is orderd's --kafka-brokers), and their environment twins are
// orderd's own, ORDERD_KAFKA_<FLAG>: one environment configures both. The
// password, as for orderd, comes from --sasl-password-file or
// ORDERD_KAFKA_SASL_PASSWORD, never from a flag. The implementation is
// orderd's (persistence/security.go).

// envKafka is the environment twin of a tail flag: ORDERD_KAFKA_TLS_CA_FILE
// for --tls-ca-file.
func envKafka(flagName string) string {
	return "ORDERD_KAFKA_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// securityFlags defines the flags on fs, their defaults from the
// environment, and returns what reads them once fs is parsed.
func (a *app) securityFlags(fs *flag.FlagSet) func() (persistence.SecurityConfig, error) {
	sc := persistence.SecurityConfig{FlagPrefix: "--"}
	str := func(p *string, name, usage string) {
		fs.StringVar(p, name, a.getenv(envKafka(name)), usage+" (env "+envKafka(name)+")")
	}
	tlsEnv, tlsEnvErr := false, error(nil)
	if v := a.getenv(envKafka("tls")); v != "" {
		if tlsEnv, tlsEnvErr = strconv.ParseBool(v); tlsEnvErr != nil {
			tlsEnvErr = fmt.Errorf("%s=%q: want true or false", envKafka("tls"), v)
		}
	}
	fs.BoolVar(&sc.TLS, "tls", tlsEnv, "connect to the brokers with TLS, verifying them against the system's roots; any --tls-* flag implies it (env "+envKafka("tls")+")")
	str(&sc.TLSCAFile, "tls-ca-file", "PEM file of the CA certificates to verify the brokers with, instead of the system's roots")
	str(&sc.TLSCertFile, "tls-cert-file", "PEM client certificate for brokers that require one, with --tls-key-file")
	str(&sc.TLSKeyFile, "tls-key-file", "PEM private key of --tls-cert-file")
	str(&sc.TLSServerName, "tls-server-name", "the name the brokers' certificates must carry; empty: the host of each broker's address")
	str(&sc.SASLMechanism, "sasl-mechanism", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL")
	str(&sc.SASLUsername, "sasl-username", "SASL username")
	str(&sc.SASLPasswordFile, "sasl-password-file", "file holding the SASL password; or set "+persistence.EnvSASLPassword+" (no flag takes the password itself)")
	return func() (persistence.SecurityConfig, error) {
		sc.SASLPassword = persistence.Secret(a.getenv(persistence.EnvSASLPassword))
		if tlsEnvErr != nil {
			return sc, tlsEnvErr
		}
		return sc, sc.Check()
	}
}
