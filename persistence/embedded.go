package persistence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultEmbeddedAddr listens on a free loopback port.
const DefaultEmbeddedAddr = "127.0.0.1:0"

// EmbeddedConfig configures the embedded broker.
type EmbeddedConfig struct {
	// DataDir holds the broker's segments and state; required, created if
	// missing. A broker started again on the same directory finds its
	// topics and records; two brokers cannot use it at once.
	DataDir string
	// Addr is the loopback host:port to listen on; DefaultEmbeddedAddr if
	// empty. Only loopback addresses are accepted: the broker has no
	// authentication and no replication, so it must not serve a network.
	Addr string
	// Logger receives the broker's own log at the levels it enables; nil
	// keeps the broker quiet.
	Logger *slog.Logger
}

// Embedded is a single Kafka-protocol broker running in this process
// (franz-go's kfake), so that orderd works with no Kafka cluster through the
// same kafka-go code path as with one.
//
// Durability: every produced batch is fsynced (segment and index) before it is
// acknowledged (kfake.SyncWrites). But kfake ignores the error of that fsync:
// a batch whose fsync failed (disk full, I/O error) is still acknowledged, and
// may be lost in a crash. There is one broker and one copy of the data: this
// is a single-machine convenience, not a replicated log.
type Embedded struct {
	cluster   *kfake.Cluster
	addr      string
	listener  *inProcessListener
	unlock    func()
	closeOnce sync.Once
}

// dataDirLockName is the file in the data directory that an embedded broker
// holds locked while it runs.
const dataDirLockName = "orderd.lock"

// StartEmbedded starts the broker and returns once it accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("persistence: the embedded broker needs a data directory")
	}
	addr := cfg.Addr
	if addr == "" {
		addr = DefaultEmbeddedAddr
	}
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	logger := kfake.Logger(quietLogger{})
	if cfg.Logger != nil {
		logger = slogAdapter{cfg.Logger.With("component", "kfake")}
	}
	var listener *inProcessListener
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		// kfake always asks to listen on 127.0.0.1:<port>; ListenFn
		// lets us choose the whole address instead, and add
		// in-process connections beside it (Dial).
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			tcp, err := net.Listen(network, addr)
			if err != nil {
				return nil, err
			}
			listener = newInProcessListener(tcp)
			return listener, nil
		}),
		kfake.DataDir(cfg.DataDir),
		// Without SyncWrites kfake leaves written batches in the page
		// cache: an acknowledged transition could vanish in a crash.
		kfake.SyncWrites(),
		kfake.WithLogger(logger),
	)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("persistence: starting the embedded broker in %s: %w", cfg.DataDir, err)
	}
	addrs := cluster.ListenAddrs()
	if len(addrs) != 1 {
		cluster.Close()
		unlock()
		return nil, fmt.Errorf("persistence: embedded broker listens on %d addresses, want 1", len(addrs))
	}
	return &Embedded{cluster: cluster, addr: addrs[0], listener: listener, unlock: unlock}, nil
}

// Addr returns the host:port the broker listens on, for KafkaConfig.Brokers.
func (e *Embedded) Addr() string { return e.addr }

// Dial is KafkaConfig.Dial for a journal in this process: a connection to
// this broker's address is made in-process (inProcessListener says why), any
// other over TCP.
func (e *Embedded) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	if address == e.addr {
		return e.listener.dial(ctx)
	}
	return dialTCP(ctx, network, address)
}

// InProcessConns reports how many in-process connections Dial has made.
func (e *Embedded) InProcessConns() int64 { return e.listener.dialed.Load() }

// Close stops the broker, closes its connections, writes its state to the
// data directory and releases the directory. It is safe to call more than
// once.
func (e *Embedded) Close() {
	e.closeOnce.Do(func() {
		e.cluster.Close()
		e.unlock()
	})
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("persistence: embedded broker address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("persistence: embedded broker address %q is not loopback: it has no authentication and must not serve a network", addr)
}

type quietLogger struct{}

func (quietLogger) Logf(kfake.LogLevel, string, ...any) {}

// slogAdapter routes kfake's printf-style log into slog, formatting only
// what the handler keeps.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Logf(level kfake.LogLevel, format string, args ...any) {
	var lvl slog.Level
	switch level {
	case kfake.LogLevelError:
		lvl = slog.LevelError
	case kfake.LogLevelWarn:
		lvl = slog.LevelWarn
	case kfake.LogLevelInfo, kfake.LogLevelDebug:
		// kfake's Info is per connection and per group member
		// ("request unable to be handled" at every disconnect):
		// detail for debugging the broker, not news for an operator.
		lvl = slog.LevelDebug
	default:
		return
	}
	if !a.l.Enabled(context.Background(), lvl) {
		return
	}
	a.l.Log(context.Background(), lvl, fmt.Sprintf(format, args...))
}
