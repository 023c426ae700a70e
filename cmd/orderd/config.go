package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/cluster"
	orderhttp "github.com/orderd/orderd/http"
	"github.com/orderd/orderd/http/paymentgw"
	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
)

// Defaults of DESIGN §7. The embedded broker gets fewer partitions than a
// real cluster: it handles every request on one goroutine and fsyncs each
// partition's batch in series, so on one machine one partition measured
// several times faster than sixteen (FACTS.md, kfake and kafka-go sections).
const (
	addrDefault    = "127.0.0.1:8080"
	topicDefault   = "orders.transitions"
	dataDirDefault = "./orderd-data"
	// stateDirName is the state store's directory under --data-dir; the
	// embedded broker's files sit beside it (kfake keeps its own names).
	stateDirName               = "state"
	partitionsClusterDefault   = 16
	partitionsEmbeddedDefault  = 1
	replicationClusterDefault  = 3
	replicationEmbeddedDefault = 1
	requestTimeoutDefault      = 5 * time.Second
	// produceTimeoutMax bounds --produce-timeout: a produce request holds
	// its partition's writes behind it until it ends, so a broker that
	// stopped answering must be noticed within minutes, not hours.
	produceTimeoutMax      = 5 * time.Minute
	shutdownTimeoutDefault = 20 * time.Second
	partitionsMax          = 1024
	replicationFactorMax   = 16
)

// flagHelp is ParseConfig's answer to -h: the usage has been printed.
var flagHelp = flag.ErrHelp

// Config is everything orderd is told at start.
type Config struct {
	Addr              string
	KafkaBrokers      []string // empty: start the embedded broker
	Topic             string
	Partitions        int
	ReplicationFactor int
	DataDir           string
	// EmbeddedKafkaAddr is the loopback host:port of the embedded broker;
	// empty means a free port chosen at start (see the flag's comment).
	EmbeddedKafkaAddr string
	RequestTimeout    time.Duration
	ShutdownTimeout   time.Duration
	// ProduceTimeout is each produce request's deadline
	// (persistence.KafkaConfig.ProduceTimeout).
	ProduceTimeout time.Duration

	// IdempotencyKeysPerOrder and IdempotencyWindow bound the idempotency
	// keys remembered per order (actors.Config).
	IdempotencyKeysPerOrder int
	IdempotencyWindow       time.Duration

	// PaymentTimeout is the payment deadline of a new order that names
	// none (actors.Config, order/deadline.go).
	PaymentTimeout time.Duration

	// PaymentGatewayURL is the payment bridge's base URL (http/paymentgw,
	// docs/payment-gateway.md); empty: the simulated gateway
	// (actors.SimulatedGateway). PaymentGatewayTimeout ends each call to
	// either. PaymentGatewayToken, the bridge's bearer token, comes from
	// ORDERD_PAYMENT_GATEWAY_TOKEN only, never from a flag.
	PaymentGatewayURL     string
	PaymentGatewayTimeout time.Duration
	PaymentGatewayToken   persistence.Secret

	// Limits against abuse: requests per second (and burst) per principal,
	// how long an idle order keeps its actor, and how many actors may live.
	RatePerPrincipal  int
	BurstPerPrincipal int
	IdleActorTimeout  time.Duration
	LiveActorsMax     int
	// EvictAfter is how long an order stays in memory untouched before it
	// is left to the state store alone (actors.Config.EvictAfter).
	EvictAfter time.Duration

	LogLevel string

	// Compression is the codec of the journal's produce requests
	// (persistence.KafkaConfig.Compression).
	Compression string

	// GCHeadroomMiB is the garbage the collector lets accumulate at least
	// between collections while serving (gc.go); 0 leaves GOGC alone.
	GCHeadroomMiB int

	// PprofAddr, when set, serves net/http/pprof on its own loopback
	// listener; empty leaves profiling off.
	PprofAddr string

	// APIKeysFile holds "principal=token" lines; APIKeysInline the same
	// pairs separated by commas (ORDERD_API_KEYS). At most one is set.
	APIKeysFile   string
	APIKeysInline string
	// AllowUnauthenticated lets orderd without keys listen beyond loopback.
	AllowUnauthenticated bool
	// NodeTokenFile holds the bearer token this node sends on its own
	// calls to the other nodes (node_key.go); NodeTokenInline is the token
	// itself (ORDERD_NODE_TOKEN). At most one is set, and only with API
	// keys: the token must be one of them.
	NodeTokenFile   string
	NodeTokenInline persistence.Secret

	// ClusterGroup, when set (with --kafka-brokers), makes this node one of
	// a cluster: the Kafka consumer group of that name on the audit topic
	// decides which node owns which partition (cluster/). AdvertiseURL is
	// the base URL peers forward requests to; ClusterSessionTimeout is how
	// long the group waits for a silent node before its partitions move.
	ClusterGroup          string
	AdvertiseURL          string
	ClusterSessionTimeout time.Duration

	// KafkaSecurity secures the connections to --kafka-brokers (TLS,
	// SASL); the password comes from a file or ORDERD_KAFKA_SASL_PASSWORD,
	// never from a flag.
	KafkaSecurity persistence.SecurityConfig
}

// Embedded reports whether orderd runs its own broker.
func (c Config) Embedded() bool { return len(c.KafkaBrokers) == 0 }

// ParseConfig reads flags, each with an ORDERD_* environment twin; a flag
// given on the command line wins over its twin, and the twin over the default.
func ParseConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	var c Config
	var brokers string
	fs := flag.NewFlagSet("orderd", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&c.Addr, "addr", addrDefault, "HTTP listen address (env ORDERD_ADDR)")
	fs.StringVar(&brokers, "kafka-brokers", "", "comma-separated Kafka bootstrap brokers; empty starts the embedded broker (env ORDERD_KAFKA_BROKERS)")
	fs.StringVar(&c.Topic, "topic", topicDefault, "audit log topic (env ORDERD_TOPIC)")
	fs.IntVar(&c.Partitions, "partitions", 0, fmt.Sprintf("partitions when the topic is created; 0: %d on a cluster, %d embedded (env ORDERD_PARTITIONS)", partitionsClusterDefault, partitionsEmbeddedDefault))
	fs.IntVar(&c.ReplicationFactor, "replication-factor", 0, fmt.Sprintf("replication factor when the topic is created; 0: %d on a cluster, %d embedded (env ORDERD_REPLICATION_FACTOR)", replicationClusterDefault, replicationEmbeddedDefault))
	fs.StringVar(&c.DataDir, "data-dir", dataDirDefault, "the state store's files (in state/) and the embedded broker's (env ORDERD_DATA_DIR)")
	// No fixed default: two orderd on one machine (or orderd beside
	// `orderd broker` or a local Kafka on 9092) would collide on one, and
	// the second would fail to start. Whoever needs a stable address
	// chooses it once.
	fs.StringVar(&c.EmbeddedKafkaAddr, "embedded-kafka-addr", "", "loopback host:port of the embedded broker, for consumers configured once (e.g. 127.0.0.1:9092); empty: a free port, printed in the log (env ORDERD_EMBEDDED_KAFKA_ADDR)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", requestTimeoutDefault, "deadline of one request, journal write included (env ORDERD_REQUEST_TIMEOUT)")
	fs.DurationVar(&c.ProduceTimeout, "produce-timeout", persistence.DefaultProduceTimeout, fmt.Sprintf("deadline of one produce request to the brokers, after which its writes' outcome is unknown; up to %v (env ORDERD_PRODUCE_TIMEOUT)", produceTimeoutMax))
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", shutdownTimeoutDefault, "how long a graceful shutdown may take (env ORDERD_SHUTDOWN_TIMEOUT)")
	fs.IntVar(&c.IdempotencyKeysPerOrder, "idempotency-keys-per-order", actors.IdempotencyKeysPerOrderDefault, "Idempotency-Keys remembered per order, newest kept (env ORDERD_IDEMPOTENCY_KEYS_PER_ORDER)")
	fs.IntVar(&c.RatePerPrincipal, "rate-limit", orderhttp.DefaultRatePerPrincipal, "requests per second per principal (API key, or anonymous); beyond it 429; -1: no limit (env ORDERD_RATE_LIMIT)")
	fs.IntVar(&c.BurstPerPrincipal, "rate-burst", orderhttp.DefaultBurstPerPrincipal, "requests a principal may send at once above its rate (env ORDERD_RATE_BURST)")
	fs.DurationVar(&c.IdleActorTimeout, "idle-actor-timeout", actors.IdleActorTimeoutDefault, "an order untouched this long gives up its actor, kept as compact state (env ORDERD_IDLE_ACTOR_TIMEOUT)")
	fs.DurationVar(&c.EvictAfter, "evict-after", actors.EvictAfterDefault, "an order untouched this long leaves memory; the state store under --data-dir keeps it and its next request loads it (env ORDERD_EVICT_AFTER)")
	fs.IntVar(&c.LiveActorsMax, "live-actors-max", actors.LiveActorsMaxDefault, "orders with a live actor at most; beyond it 503 busy (env ORDERD_LIVE_ACTORS_MAX)")
	fs.DurationVar(&c.IdempotencyWindow, "idempotency-window", actors.IdempotencyWindowDefault, "how long an Idempotency-Key is remembered after its request (env ORDERD_IDEMPOTENCY_WINDOW)")
	fs.DurationVar(&c.PaymentTimeout, "payment-timeout", order.PaymentTimeoutDefault, fmt.Sprintf("how long a new order may wait for payment before it is cancelled, %v..%v; an order may name its own (env ORDERD_PAYMENT_TIMEOUT)", order.PaymentTimeoutMin, order.PaymentTimeoutMax))
	fs.StringVar(&c.PaymentGatewayURL, "payment-gateway-url", "", "base URL of the payment bridge that authorises and voids checkout payments (docs/payment-gateway.md); its bearer token, if any, in "+envPaymentGatewayToken+"; empty: the simulated gateway, which approves every token but tok_decline and tok_timeout (env ORDERD_PAYMENT_GATEWAY_URL)")
	fs.DurationVar(&c.PaymentGatewayTimeout, "payment-gateway-timeout", actors.PaymentCallTimeoutDefault, fmt.Sprintf("deadline of one call to the payment gateway, after which its outcome is unknown and the checkout voids it, %v..%v (env ORDERD_PAYMENT_GATEWAY_TIMEOUT)", actors.PaymentCallTimeoutMin, actors.PaymentCallTimeoutMax))
	fs.StringVar(&c.PprofAddr, "pprof-addr", "", "serve net/http/pprof on this loopback address, e.g. 127.0.0.1:6060; empty: off (env ORDERD_PPROF_ADDR)")
	fs.StringVar(&c.Compression, "compression", persistence.DefaultCompression, "codec of the batches written to the audit log: none, gzip, snappy, lz4 or zstd (env ORDERD_COMPRESSION)")
	fs.IntVar(&c.GCHeadroomMiB, "gc-headroom-mib", gcHeadroomMiBDefault, "MiB of garbage the collector lets accumulate at least between collections (GOGC raised while the live heap is smaller); 0: GOGC alone (env ORDERD_GC_HEADROOM_MIB)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error (env ORDERD_LOG_LEVEL)")
	fs.BoolVar(&c.AllowUnauthenticated, "allow-unauthenticated", false, "without API keys, listen on a non-loopback address anyway: anyone who reaches it may change orders (env ORDERD_ALLOW_UNAUTHENTICATED)")
	fs.StringVar(&c.APIKeysFile, "api-keys-file", "", "file of principal=token lines; clients send Authorization: Bearer <token> (env ORDERD_API_KEYS_FILE, or ORDERD_API_KEYS with the pairs inline, comma-separated)")
	fs.StringVar(&c.NodeTokenFile, "node-token-file", "", "file holding this node's own API token (one of the API keys), sent on its calls to the other nodes of a cluster; that key's principal may act on behalf of others (env ORDERD_NODE_TOKEN_FILE, or "+envNodeToken+" with the token itself)")
	fs.StringVar(&c.ClusterGroup, "cluster-group", "", "run as one node of a cluster: the Kafka consumer group, on the audit topic, whose assignment decides which node owns which partition; needs --kafka-brokers and --advertise-url; empty: a single node (env ORDERD_CLUSTER_GROUP)")
	fs.StringVar(&c.AdvertiseURL, "advertise-url", "", "with --cluster-group, the base URL other nodes reach this one at, e.g. http://10.0.0.5:8080 (env ORDERD_ADVERTISE_URL)")
	fs.DurationVar(&c.ClusterSessionTimeout, "cluster-session-timeout", cluster.DefaultSessionTimeout, fmt.Sprintf("with --cluster-group, how long the group waits for a silent node before its partitions move to the others, %v..%v (env ORDERD_CLUSTER_SESSION_TIMEOUT)", clusterSessionTimeoutMin, clusterSessionTimeoutMax))
	c.KafkaSecurity.FlagPrefix = "--kafka-"
	sec := &c.KafkaSecurity
	fs.BoolVar(&sec.TLS, "kafka-tls", false, "connect to the brokers with TLS, verifying them against the system's roots; any --kafka-tls-* flag implies it (env ORDERD_KAFKA_TLS)")
	fs.StringVar(&sec.TLSCAFile, "kafka-tls-ca-file", "", "PEM file of the CA certificates to verify the brokers with, instead of the system's roots (env ORDERD_KAFKA_TLS_CA_FILE)")
	fs.StringVar(&sec.TLSCertFile, "kafka-tls-cert-file", "", "PEM client certificate for brokers that require one, with --kafka-tls-key-file (env ORDERD_KAFKA_TLS_CERT_FILE)")
	fs.StringVar(&sec.TLSKeyFile, "kafka-tls-key-file", "", "PEM private key of --kafka-tls-cert-file (env ORDERD_KAFKA_TLS_KEY_FILE)")
	fs.StringVar(&sec.TLSServerName, "kafka-tls-server-name", "", "the name the brokers' certificates must carry; empty: the host of each broker's address (env ORDERD_KAFKA_TLS_SERVER_NAME)")
	fs.StringVar(&sec.SASLMechanism, "kafka-sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL (env ORDERD_KAFKA_SASL_MECHANISM)")
	fs.StringVar(&sec.SASLUsername, "kafka-sasl-username", "", "SASL username (env ORDERD_KAFKA_SASL_USERNAME)")
	fs.StringVar(&sec.SASLPasswordFile, "kafka-sasl-password-file", "", "file holding the SASL password; or set "+persistence.EnvSASLPassword+" (no flag takes the password itself) (env ORDERD_KAFKA_SASL_PASSWORD_FILE)")

	// Environment twins become the defaults; Parse then lets flags win.
	var envErrs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := "ORDERD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	})
	if err := errors.Join(envErrs...); err != nil {
		return Config{}, err
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return Config{}, flagHelp
	} else if err != nil {
		return Config{}, err
	}
	c.APIKeysInline = getenv("ORDERD_API_KEYS")
	c.NodeTokenInline = persistence.Secret(getenv(envNodeToken))
	c.KafkaSecurity.SASLPassword = persistence.Secret(getenv(persistence.EnvSASLPassword))
	c.PaymentGatewayToken = persistence.Secret(getenv(envPaymentGatewayToken))
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			c.KafkaBrokers = append(c.KafkaBrokers, b)
		}
	}
	c.applyModeDefaults()
	return c, c.validate()
}

func (c *Config) applyModeDefaults() {
	if c.Partitions == 0 {
		c.Partitions = partitionsClusterDefault
		if c.Embedded() {
			c.Partitions = partitionsEmbeddedDefault
		}
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = replicationClusterDefault
		if c.Embedded() {
			c.ReplicationFactor = replicationEmbeddedDefault
		}
	}
}

func (c Config) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--addr %q: %w", c.Addr, err))
	}
	if c.PprofAddr != "" && !loopbackOnly(c.PprofAddr) {
		errs = append(errs, fmt.Errorf("--pprof-addr %q: profiles reveal the server's internals, so only loopback addresses are accepted", c.PprofAddr))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("--topic must not be empty"))
	}
	if c.Partitions < 1 || c.Partitions > partitionsMax {
		errs = append(errs, fmt.Errorf("--partitions %d: must be 1 to %d", c.Partitions, partitionsMax))
	}
	if c.ReplicationFactor < 1 || c.ReplicationFactor > replicationFactorMax {
		errs = append(errs, fmt.Errorf("--replication-factor %d: must be 1 to %d", c.ReplicationFactor, replicationFactorMax))
	}
	if c.Embedded() && c.ReplicationFactor != 1 {
		errs = append(errs, fmt.Errorf("--replication-factor %d: the embedded broker is one broker, so only 1 is possible", c.ReplicationFactor))
	}
	errs = append(errs, c.validateEmbeddedKafkaAddr()...)
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty: the state store lives there"))
	}
	if c.RatePerPrincipal == 0 || c.RatePerPrincipal < -1 || c.BurstPerPrincipal < 1 {
		errs = append(errs, errors.New("--rate-limit must be positive or -1 (no limit), --rate-burst positive"))
	}
	if c.IdleActorTimeout <= 0 || c.LiveActorsMax < 1 || c.EvictAfter <= 0 {
		errs = append(errs, errors.New("--idle-actor-timeout, --live-actors-max and --evict-after must be positive"))
	}
	if c.IdempotencyKeysPerOrder < 1 || c.IdempotencyWindow <= 0 {
		errs = append(errs, errors.New("--idempotency-keys-per-order and --idempotency-window must be positive"))
	}
	if err := order.CheckPaymentTimeout("--payment-timeout", c.PaymentTimeout); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validatePaymentGateway()...)
	if c.RequestTimeout <= 0 || c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("--request-timeout and --shutdown-timeout must be positive"))
	}
	if c.ProduceTimeout <= 0 || c.ProduceTimeout > produceTimeoutMax {
		errs = append(errs, fmt.Errorf("--produce-timeout %v: must be positive, at most %v", c.ProduceTimeout, produceTimeoutMax))
	}
	if err := persistence.CheckCompression(c.Compression); err != nil {
		errs = append(errs, fmt.Errorf("--compression %q: want none, gzip, snappy, lz4 or zstd", c.Compression))
	}
	if c.GCHeadroomMiB < 0 || c.GCHeadroomMiB > gcHeadroomMiBMax {
		errs = append(errs, fmt.Errorf("--gc-headroom-mib %d: must be 0 to %d", c.GCHeadroomMiB, gcHeadroomMiBMax))
	}
	errs = append(errs, c.validateCluster()...)
	if c.APIKeysFile != "" && c.APIKeysInline != "" {
		errs = append(errs, errors.New("API keys are given both as a file and inline (ORDERD_API_KEYS): choose one"))
	}
	errs = append(errs, c.validateNodeToken()...)
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.Embedded() && c.KafkaSecurity.Enabled():
		errs = append(errs, fmt.Errorf("the --kafka-tls* and --kafka-sasl-* settings (or %s) apply to --kafka-brokers only: the embedded broker has neither TLS nor SASL (it listens on loopback)", persistence.EnvSASLPassword))
	default:
		// Reads the files now, so that a missing one stops orderd at
		// start with its name rather than in a retry loop.
		if _, err := c.KafkaSecurity.Load(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// envPaymentGatewayToken holds the payment bridge's bearer token: an
// environment variable, not a flag, so that it is not in the process list.
const envPaymentGatewayToken = "ORDERD_PAYMENT_GATEWAY_TOKEN"

func (c Config) validatePaymentGateway() []error {
	var errs []error
	if c.PaymentGatewayURL != "" {
		if err := paymentgw.CheckURL(c.PaymentGatewayURL); err != nil {
			errs = append(errs, fmt.Errorf("--payment-gateway-url %q: %w", c.PaymentGatewayURL, err))
		}
	} else if c.PaymentGatewayToken != "" {
		// Most likely the URL was meant to be set too: without it every
		// payment would be "approved" by the simulation.
		errs = append(errs, fmt.Errorf("%s is set but --payment-gateway-url is not: the token is for the payment bridge, and without a URL orderd would use the simulated gateway", envPaymentGatewayToken))
	}
	if t := c.PaymentGatewayTimeout; t < actors.PaymentCallTimeoutMin || t > actors.PaymentCallTimeoutMax {
		errs = append(errs, fmt.Errorf("--payment-gateway-timeout %v: must be %v to %v", t, actors.PaymentCallTimeoutMin, actors.PaymentCallTimeoutMax))
	}
	return errs
}

// Bounds of --cluster-session-timeout: below the minimum a busy machine's
// pauses would move partitions for nothing (each move costs the new owner a
// catch-up); above the maximum a dead node's orders wait too long (the
// failover target is 10 s, which the 6 s default meets).
const (
	clusterSessionTimeoutMin = 3 * time.Second
	clusterSessionTimeoutMax = 5 * time.Minute
)

// validateCluster checks the cluster settings: a cluster needs a Kafka
// shared by its nodes (the embedded broker lives inside one process) and a
// URL at which the others reach this node.
func (c Config) validateCluster() []error {
	if c.ClusterGroup == "" {
		if c.AdvertiseURL != "" {
			return []error{errors.New("--advertise-url is only for a cluster node: give --cluster-group too")}
		}
		return nil
	}
	var errs []error
	if c.Embedded() {
		errs = append(errs, errors.New("--cluster-group needs --kafka-brokers: the nodes of a cluster share one Kafka (an `orderd broker` will do on one machine); the embedded broker lives inside a single orderd"))
	}
	if err := checkAdvertiseURL(c.AdvertiseURL); err != nil {
		errs = append(errs, err)
	}
	if t := c.ClusterSessionTimeout; t < clusterSessionTimeoutMin || t > clusterSessionTimeoutMax {
		errs = append(errs, fmt.Errorf("--cluster-session-timeout %v: must be %v to %v", t, clusterSessionTimeoutMin, clusterSessionTimeoutMax))
	}
	return errs
}

// checkAdvertiseURL requires an absolute http(s) URL with a host and no
// path, query or fragment: peers append the API's paths to it.
func checkAdvertiseURL(s string) error {
	if s == "" {
		return errors.New("--cluster-group needs --advertise-url: the URL other nodes forward requests to, e.g. http://10.0.0.5:8080")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("--advertise-url %q: %w", s, err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return fmt.Errorf("--advertise-url %q: want http://host:port or https://host:port", s)
	case strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("--advertise-url %q: want only scheme, host and port, no path, query or user", s)
	}
	return nil
}

// validateEmbeddedKafkaAddr checks --embedded-kafka-addr: it names where
// the embedded broker listens, so it means nothing with external brokers,
// and the broker has no authentication, so it never serves a network.
func (c Config) validateEmbeddedKafkaAddr() []error {
	switch a := c.EmbeddedKafkaAddr; {
	case a == "":
		return nil
	case !c.Embedded():
		return []error{fmt.Errorf("--embedded-kafka-addr %q: only for the embedded broker, not with --kafka-brokers", a)}
	case !validHostPort(a):
		return []error{fmt.Errorf("--embedded-kafka-addr %q: want host:port, e.g. 127.0.0.1:9092", a)}
	case !loopbackOnly(a):
		return []error{fmt.Errorf("--embedded-kafka-addr %q: the embedded broker has no authentication, so only loopback addresses (127.0.0.1, ::1, localhost) are accepted", a)}
	}
	return nil
}

// validHostPort reports whether addr is host:port with a numeric port.
func validHostPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	_, err = strconv.ParseUint(port, 10, 16)
	return err == nil
}

// loopbackOnly reports whether addr can only be reached from this machine.
func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parseLevel(s string) (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return level, nil
}

// APIKeys loads the configured keys; none configured is (nil, nil).
func (c Config) APIKeys() ([]orderhttp.APIKey, error) {
	switch {
	case c.APIKeysFile != "":
		f, err := os.Open(c.APIKeysFile)
		if err != nil {
			return nil, fmt.Errorf("--api-keys-file: %w", err)
		}
		defer f.Close()
		keys, err := orderhttp.ParseAPIKeys(f)
		if err != nil {
			return nil, fmt.Errorf("--api-keys-file %s: %w", c.APIKeysFile, err)
		}
		return keys, nil
	case c.APIKeysInline != "":
		keys, err := orderhttp.ParseAPIKeys(strings.NewReader(strings.ReplaceAll(c.APIKeysInline, ",", "\n")))
		if err != nil {
			return nil, fmt.Errorf("ORDERD_API_KEYS: %w", err)
		}
		return keys, nil
	}
	return nil, nil
}
