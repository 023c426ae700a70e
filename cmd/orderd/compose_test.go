package main

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net"
	"net/url"
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
	Ports           []string                     `yaml:"ports"` // short syntax: [ip:]host:container[/proto]
}

// composeNodes is how many orderd nodes docker-compose.yml runs: a cluster
// of three, so that one can stop while two serve.
const composeNodes = 3

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

	nodes := orderdNodes(t, f)
	known := orderdEnvNames(t)
	ports := make(map[string]string)   // published host port -> node
	volumes := make(map[string]string) // state volume -> node
	var first string
	for _, name := range slices.Sorted(maps.Keys(nodes)) {
		o := nodes[name]
		checkOrderdNode(t, name, o, kafkas, known)
		port := publishedPort(t, name, o)
		assert.Empty(t, ports[port], "%s publishes host port %s, as %s does", name, port, ports[port])
		ports[port] = name
		vol := stateVolume(t, name, o)
		assert.Empty(t, volumes[vol], "%s keeps its state in volume %s, as %s does", name, vol, volumes[vol])
		volumes[vol] = name
		// One cluster: the same settings everywhere (topic, group, keys...),
		// but for the URL each node advertises.
		if first == "" {
			first = name
			continue
		}
		assert.Equal(t, withoutKey(nodes[first].Environment, "ORDERD_ADVERTISE_URL"), withoutKey(o.Environment, "ORDERD_ADVERTISE_URL"),
			"%s and %s differ in more than ORDERD_ADVERTISE_URL", first, name)
	}
}

// orderdNodes returns the services that run orderd: the one service that
// builds this repository's Dockerfile and those running the image it builds.
func orderdNodes(t *testing.T, f composeFile) map[string]composeService {
	t.Helper()
	var builders []string
	for name, s := range f.Services {
		if s.Build != nil {
			builders = append(builders, name)
		}
	}
	require.Len(t, builders, 1, "one service builds the image, the others run it: %v", builders)
	b := f.Services[builders[0]]
	// Built from the Dockerfile, so orderd is PID 1 and gets SIGTERM;
	// not the Go toolchain image running `go run`.
	assert.Equal(t, repoRoot, buildContext(t, b.Build), "orderd is built from this repository's Dockerfile")
	require.NotEmpty(t, b.Image, "the built image is named, so the other nodes can run it")
	assert.NotContains(t, b.Image, "golang")
	nodes := make(map[string]composeService)
	for name, s := range f.Services {
		if s.Image == b.Image {
			nodes[name] = s
		}
	}
	require.Len(t, nodes, composeNodes, "services running %s", b.Image)
	return nodes
}

// checkOrderdNode checks what every node must have on its own.
func checkOrderdNode(t *testing.T, name string, o composeService, kafkas []string, known map[string]bool) {
	t.Helper()
	assert.Nil(t, o.Command, "%s: the image's ENTRYPOINT runs orderd", name)
	assert.Empty(t, o.WorkingDir, name)
	for _, v := range o.Volumes {
		assert.NotContains(t, v, "/src", "%s: no source mount", name)
		assert.NotContains(t, v, "/go/", "%s: no Go caches", name)
	}
	// Every variable is one orderd reads: a misspelt one would be ignored.
	for k := range o.Environment {
		if strings.HasPrefix(k, "ORDERD_") {
			assert.True(t, known[k], "%s: %s is not a variable orderd reads (a flag's twin)", name, k)
		}
	}

	// Docker kills orderd stop_grace_period after SIGTERM: that must leave
	// its graceful shutdown all the time it may take.
	shutdown, err := time.ParseDuration(o.Environment["ORDERD_SHUTDOWN_TIMEOUT"])
	require.NoError(t, err, "%s: ORDERD_SHUTDOWN_TIMEOUT is set explicitly", name)
	grace, err := time.ParseDuration(o.StopGracePeriod)
	require.NoError(t, err, "%s: stop_grace_period", name)
	assert.Greater(t, grace, shutdown, "%s: stop_grace_period must exceed ORDERD_SHUTDOWN_TIMEOUT", name)

	// On the cluster, with its durability, once every node is healthy.
	assert.Equal(t, "3", o.Environment["ORDERD_REPLICATION_FACTOR"], name)
	var brokers []string
	for _, b := range strings.Split(o.Environment["ORDERD_KAFKA_BROKERS"], ",") {
		host, _, _ := strings.Cut(strings.TrimSpace(b), ":")
		brokers = append(brokers, host)
	}
	assert.ElementsMatch(t, kafkas, brokers, "%s: ORDERD_KAFKA_BROKERS names every Kafka node", name)
	for _, k := range kafkas {
		assert.Equal(t, "service_healthy", o.DependsOn[k]["condition"], "%s: depends_on %s", name, k)
	}
	// One node of a cluster, reachable by the others at its own name.
	assert.NotEmpty(t, o.Environment["ORDERD_CLUSTER_GROUP"], "%s: a node of the cluster", name)
	adv, err := url.Parse(o.Environment["ORDERD_ADVERTISE_URL"])
	require.NoError(t, err, "%s: ORDERD_ADVERTISE_URL", name)
	assert.Equal(t, "http", adv.Scheme, "%s: ORDERD_ADVERTISE_URL", name)
	assert.Equal(t, name, adv.Hostname(), "%s: ORDERD_ADVERTISE_URL names its own service", name)
	assert.Equal(t, listenPort(t, name, o), adv.Port(), "%s: ORDERD_ADVERTISE_URL has the port orderd listens on", name)
	// Listening beyond loopback: orderd refuses to start without keys.
	assert.NotEmpty(t, o.Environment["ORDERD_API_KEYS"], name)
	// A node of a keyed cluster calls the others with its own key.
	assert.Contains(t, o.Environment["ORDERD_API_KEYS"], "="+o.Environment["ORDERD_NODE_TOKEN"], "%s: ORDERD_NODE_TOKEN is one of the keys", name)
	assert.NotEmpty(t, o.Environment["ORDERD_NODE_TOKEN"], name)
	// The image's HEALTHCHECK applies unless the file replaces it.
	assert.NotEqual(t, true, o.Healthcheck["disable"], "%s: the healthcheck stays on", name)
	if o.Healthcheck["test"] == nil {
		_, final := readDockerfile(t)
		assert.NotEmpty(t, final.all("HEALTHCHECK"), "no healthcheck in compose, so the image must have one")
	}
}

// listenPort is the port of the node's ORDERD_ADDR.
func listenPort(t *testing.T, name string, o composeService) string {
	t.Helper()
	_, port, err := net.SplitHostPort(o.Environment["ORDERD_ADDR"])
	require.NoError(t, err, "%s: ORDERD_ADDR", name)
	return port
}

// publishedPort returns the host port of the node's one published port,
// checking that it is on loopback (the token in the file is a demo's) and
// leads to the port orderd listens on.
func publishedPort(t *testing.T, name string, o composeService) string {
	t.Helper()
	require.Len(t, o.Ports, 1, "%s: one published port", name)
	spec, _, _ := strings.Cut(o.Ports[0], "/") // docker-compose config adds "/tcp"
	parts := strings.Split(spec, ":")
	require.Len(t, parts, 3, "%s: ports %q: want ip:host:container", name, o.Ports[0])
	assert.Equal(t, "127.0.0.1", parts[0], "%s: published on loopback only", name)
	assert.Equal(t, listenPort(t, name, o), parts[2], "%s: the published port leads to ORDERD_ADDR", name)
	return parts[1]
}

// stateVolume returns the named volume at the node's data directory (the
// Dockerfile's ORDERD_DATA_DIR), which outlives the container.
func stateVolume(t *testing.T, name string, o composeService) string {
	t.Helper()
	for _, v := range o.Volumes {
		// docker-compose config spells the mount with its mode, ":rw".
		if vol, rest, ok := strings.Cut(v, ":"); ok && strings.HasPrefix(rest, "/var/lib/orderd") {
			assert.False(t, strings.HasPrefix(vol, "/") || strings.HasPrefix(vol, "."), "%s: a named volume, not a bind mount: %s", name, v)
			return vol
		}
	}
	t.Fatalf("%s: no named volume at the data directory: %v", name, o.Volumes)
	return ""
}

// orderdEnvNames are the environment variables orderd's configuration
// reads: every flag's ORDERD_* twin, and the few without a flag
// (ORDERD_API_KEYS, the SASL password).
func orderdEnvNames(t *testing.T) map[string]bool {
	t.Helper()
	names := make(map[string]bool)
	_, err := ParseConfig(nil, func(k string) string { names[k] = true; return "" }, io.Discard)
	require.NoError(t, err)
	require.True(t, names["ORDERD_CLUSTER_GROUP"] && names["ORDERD_ADVERTISE_URL"], "ParseConfig asks for every flag's twin: %v", names)
	return names
}

func withoutKey(m map[string]string, key string) map[string]string {
	c := maps.Clone(m)
	delete(c, key)
	return c
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
