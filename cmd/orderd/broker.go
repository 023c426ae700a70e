package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/orderd/orderd/persistence"
)

// brokerAddrDefault is the Kafka port, on loopback: the embedded broker has
// no authentication and no replication, so it never serves a network.
const brokerAddrDefault = "127.0.0.1:9092"

// brokerConfig is what `orderd broker` is told.
type brokerConfig struct {
	Addr    string
	DataDir string
}

// parseBrokerConfig reads the broker subcommand's flags, with ORDERD_*
// twins as for the server (ORDERD_DATA_DIR is shared with it).
func parseBrokerConfig(args []string, getenv func(string) string, usage io.Writer) (brokerConfig, error) {
	var c brokerConfig
	fs := flag.NewFlagSet("orderd broker", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&c.Addr, "addr", brokerAddrDefault, "loopback address to serve the Kafka protocol on (env ORDERD_BROKER_ADDR)")
	fs.StringVar(&c.DataDir, "data-dir", dataDirDefault, "the broker's files (env ORDERD_DATA_DIR)")
	if v := getenv("ORDERD_BROKER_ADDR"); v != "" {
		c.Addr = v
	}
	if v := getenv("ORDERD_DATA_DIR"); v != "" {
		c.DataDir = v
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return c, flagHelp
	} else if err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.DataDir == "" {
		return c, errors.New("--data-dir must not be empty")
	}
	return c, nil
}

// runBroker runs the embedded broker as its own process until ctx ends, so
// that it can be stopped, killed and restarted apart from orderd (which then
// uses it with --kafka-brokers). Same code, same durability as in-process.
func runBroker(ctx context.Context, c brokerConfig, log *slog.Logger) error {
	dir, err := filepath.Abs(c.DataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating the data directory: %w", err)
	}
	broker, err := persistence.StartEmbedded(persistence.EmbeddedConfig{DataDir: dir, Addr: c.Addr})
	if err != nil {
		return err
	}
	log.Info("broker listening", "addr", broker.Addr(), "data_dir", dir,
		"note", "single-broker convenience with fsynced writes, not a replicated cluster")
	<-ctx.Done()
	log.Info("broker shutting down", "cause", context.Cause(ctx))
	broker.Close()
	log.Info("broker stopped")
	return nil
}
