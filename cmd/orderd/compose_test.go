package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// composeConfigTimeout bounds `docker-compose config`, a Python program
// that starts in about a second here; generous for a busy machine.
const composeConfigTimeout = roomyTimeout

// composeFile is the part of docker-compose.yml these tests read. The
// environment must be written as a map (KEY: value), as it is.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image           string                       `yaml:"image"`
	Build           any                          `yaml:"build"` // "." or {context, dockerfile}
	Command         any                          `yaml:"command"`
	WorkingDir      string                       `yaml:"working_dir"`
	Environment     map[string]string            `yaml:"environment"`
	StopGracePeriod string                       `yaml:"stop_grace_period"`
	DependsOn       map[string]map[string]string `yaml:"depends_on"`
	Healthcheck     map[string]any               `yaml:"healthcheck"`
	Volumes         []string                     `yaml:"volumes"`
}

// TestComposeFile checks docker-compose.yml as written (YAML merge keys
// resolved by the parser) and, where Debian's docker-compose is installed,
// as docker-compose itself resolves it. CI installs it (.ci/run), so there
// its absence is a failure, not a skip.
func TestComposeFile(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	require.NoError(t, err)
	t.Run("as written", func(t *testing.T) {
		checkCompose(t, text)
	})
	t.Run("docker-compose config", func(t *testing.T) {
		bin, err := exec.LookPath("docker-compose")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("docker-compose is not installed; .ci/run installs it (apt-get install docker-compose)")
			}
			t.Skip("docker-compose is not installed (Debian: apt-get install docker-compose)")
		}
		ctx, cancel := context.WithTimeout(context.Background(), composeConfigTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "-f", "docker-compose.yml", "config")
		cmd.Dir = repoRoot
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Run(), "docker-compose config:\n%s", stderr.String())
		checkCompose(t, stdout.Bytes())
	})
}

func checkCompose(t *testing.T, text []byte) {
	t.Helper()
	var f composeFile
	require.NoError(t, yaml.Unmarshal(text, &f))

	// Three Kafka nodes: three copies, two must acknowledge, and no
	// election of a replica that may have lost acknowledged records.
	var kafkas []string
	for name, s := range f.Services {
		if !strings.HasPrefix(s.Image, "apache/kafka:") {
			continue
		}
		kafkas = append(kafkas, name)
		assert.Equal(t, "3", s.Environment["KAFKA_DEFAULT_REPLICATION_FACTOR"], name)
		assert.Equal(t, "2", s.Environment["KAFKA_MIN_INSYNC_REPLICAS"], name)
		assert.Equal(t, "false", s.Environment["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"], name)
		assert.NotEmpty(t, s.Healthcheck, "%s: orderd waits for it to be healthy", name)
	}
	require.Len(t, kafkas, 3)

	o, ok := f.Services["orderd"]
	require.True(t, ok, "an orderd service")
	// Built from the Dockerfile, so orderd is PID 1 and gets SIGTERM;
	// not the Go toolchain image running `go run`.
	assert.Equal(t, repoRoot, buildContext(t, o.Build), "orderd is built from this repository's Dockerfile")
	assert.NotContains(t, o.Image, "golang")
	assert.Nil(t, o.Command, "the image's ENTRYPOINT runs orderd")
	assert.Empty(t, o.WorkingDir)
	for _, v := range o.Volumes {
		assert.NotContains(t, v, "/src", "no source mount")
		assert.NotContains(t, v, "/go/", "no Go caches")
	}
	// The state store outlives the container (Dockerfile: ORDERD_DATA_DIR).
	// (docker-compose config spells the mount with its mode, ":rw".)
	assert.True(t, slices.ContainsFunc(o.Volumes, func(v string) bool {
		return strings.HasPrefix(v, "orderd-state:/var/lib/orderd")
	}), "a named volume at the data directory: %v", o.Volumes)

	// Docker kills orderd stop_grace_period after SIGTERM: that must leave
	// its graceful shutdown all the time it may take.
	shutdown, err := time.ParseDuration(o.Environment["ORDERD_SHUTDOWN_TIMEOUT"])
	require.NoError(t, err, "ORDERD_SHUTDOWN_TIMEOUT is set explicitly")
	grace, err := time.ParseDuration(o.StopGracePeriod)
	require.NoError(t, err, "stop_grace_period")
	assert.Greater(t, grace, shutdown, "stop_grace_period must exceed ORDERD_SHUTDOWN_TIMEOUT")

	// On the cluster, with its durability, once every node is healthy.
	assert.Equal(t, "3", o.Environment["ORDERD_REPLICATION_FACTOR"])
	var brokers []string
	for _, b := range strings.Split(o.Environment["ORDERD_KAFKA_BROKERS"], ",") {
		host, _, _ := strings.Cut(strings.TrimSpace(b), ":")
		brokers = append(brokers, host)
	}
	assert.ElementsMatch(t, kafkas, brokers, "ORDERD_KAFKA_BROKERS names every Kafka node")
	for _, k := range kafkas {
		assert.Equal(t, "service_healthy", o.DependsOn[k]["condition"], "depends_on %s", k)
	}
	// Listening beyond loopback: orderd refuses to start without keys.
	assert.NotEmpty(t, o.Environment["ORDERD_API_KEYS"])
	// The image's HEALTHCHECK applies unless the file replaces it.
	assert.NotEqual(t, true, o.Healthcheck["disable"], "the healthcheck stays on")
	if o.Healthcheck["test"] == nil {
		_, final := readDockerfile(t)
		assert.NotEmpty(t, final.all("HEALTHCHECK"), "no healthcheck in compose, so the image must have one")
	}
}

// buildContext returns the build context of a service relative to the
// repository (docker-compose config writes it absolute), checking that the
// Dockerfile is the default one.
func buildContext(t *testing.T, build any) string {
	t.Helper()
	var dir string
	switch b := build.(type) {
	case string:
		dir = b
	case map[string]any:
		dir, _ = b["context"].(string)
		if df, ok := b["dockerfile"].(string); ok {
			assert.Equal(t, "Dockerfile", df)
		}
	default:
		t.Fatalf("build: %v (%T): want a context", build, build)
	}
	abs, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	if filepath.IsAbs(dir) {
		rel, err := filepath.Rel(abs, dir)
		require.NoError(t, err)
		return filepath.Join(repoRoot, rel)
	}
	return filepath.Join(repoRoot, dir)
}
