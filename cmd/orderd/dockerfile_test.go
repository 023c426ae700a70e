package main

import (
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Dockerfile's build runs here on a busy shared machine, from a cold
// cache in CI: two builds measured about two minutes cold, seconds warm;
// with two runs of the suite at once they build side by side, each on half
// the machine, so the bound leaves room for several times that.
const (
	dockerBuildTimeout = 15 * time.Minute
	// healthcheckRunTimeout bounds one run of the HEALTHCHECK command (its
	// own probe gives up after 3 s).
	healthcheckRunTimeout = roomyTimeout
)

const repoRoot = "../.."

// dockerStage is one FROM of a Dockerfile and the instructions under it.
type dockerStage struct {
	from, name   string
	instructions []dockerInstruction
}

type dockerInstruction struct {
	keyword string // upper case
	args    string // the rest, continuation lines joined
}

// parseDockerfile splits a Dockerfile into stages and instructions: lines
// ending in a backslash continue, comment lines (also inside a
// continuation) are dropped, as Docker does.
func parseDockerfile(t *testing.T, text string) []dockerStage {
	t.Helper()
	var stages []dockerStage
	var pending strings.Builder
	flush := func() {
		line := strings.TrimSpace(pending.String())
		pending.Reset()
		if line == "" {
			return
		}
		keyword, args, _ := strings.Cut(line, " ")
		in := dockerInstruction{keyword: strings.ToUpper(keyword), args: strings.TrimSpace(args)}
		if in.keyword == "FROM" {
			from, name, _ := strings.Cut(in.args, " AS ")
			stages = append(stages, dockerStage{from: strings.TrimSpace(from), name: strings.TrimSpace(name)})
			return
		}
		require.NotEmpty(t, stages, "%s before the first FROM", in.keyword)
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, in)
	}
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if rest, ok := strings.CutSuffix(trimmed, `\`); ok {
			pending.WriteString(rest + " ")
			continue
		}
		pending.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

// all returns the arguments of every instruction with keyword.
func (s dockerStage) all(keyword string) []string {
	var out []string
	for _, in := range s.instructions {
		if in.keyword == keyword {
			out = append(out, in.args)
		}
	}
	return out
}

// env reads the stage's ENV instructions (KEY=value form, which is the
// only one this Dockerfile uses; the older `ENV KEY value` form fails).
func (s dockerStage) env(t *testing.T) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for _, args := range s.all("ENV") {
		for _, word := range shellWords(t, args) {
			k, v, ok := strings.Cut(word, "=")
			require.True(t, ok, "ENV %s: want KEY=value", args)
			vars[k] = v
		}
	}
	return vars
}

// shellWords splits a command line as sh would for the plain words, single
// and double quotes and backslashes a Dockerfile RUN line may hold; it fails
// on anything it would have to run ($, `, globs, redirections, ;).
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var word strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			require.GreaterOrEqual(t, end, 0, "unterminated ' in %q", line)
			word.WriteString(line[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			end := strings.IndexByte(line[i+1:], '"')
			require.GreaterOrEqual(t, end, 0, "unterminated \" in %q", line)
			quoted := line[i+1 : i+1+end]
			require.NotContains(t, quoted, "$", "expansion in %q", line)
			require.NotContains(t, quoted, `\`, "escape in %q", line)
			word.WriteString(quoted)
			i += end + 1
			inWord = true
		case c == '\\' && i+1 < len(line):
			word.WriteByte(line[i+1])
			i++
			inWord = true
		case strings.IndexByte("$`*?[<>;|&(){}", c) >= 0:
			t.Fatalf("shellWords: %q needs a shell (%c); keep the build line plain", line, c)
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

// goBuilds returns the stage's `go build` command lines, split into words.
func (s dockerStage) goBuilds(t *testing.T) [][]string {
	t.Helper()
	var builds [][]string
	for _, run := range s.all("RUN") {
		for _, cmd := range strings.Split(run, "&&") {
			cmd = strings.TrimSpace(cmd)
			if strings.HasPrefix(cmd, "go build ") {
				builds = append(builds, shellWords(t, cmd))
			}
		}
	}
	return builds
}

// execForm parses a JSON-array (exec form) instruction argument.
func execForm(t *testing.T, what, args string) []string {
	t.Helper()
	var argv []string
	require.NoError(t, json.Unmarshal([]byte(args), &argv), "%s %s: want the exec form, a JSON array", what, args)
	require.NotEmpty(t, argv, what)
	return argv
}

func readDockerfile(t *testing.T) (builder, final dockerStage) {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	require.NoError(t, err)
	stages := parseDockerfile(t, string(text))
	require.GreaterOrEqual(t, len(stages), 2, "multi-stage: a builder and a final image")
	for _, s := range stages {
		if strings.HasPrefix(s.from, "golang:") {
			builder = s
		}
	}
	require.NotEmpty(t, builder.from, "a golang: builder stage")
	return builder, stages[len(stages)-1]
}

// TestDockerfileProperties checks what the image must be, statically: the
// runtime behaviour is TestDockerfileBuild's.
func TestDockerfileProperties(t *testing.T) {
	builder, final := readDockerfile(t)

	// The builder is the go.mod's exact toolchain, pinned.
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	require.NoError(t, err)
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	require.NotNil(t, goLine)
	assert.Regexp(t, `^golang:`+regexp.QuoteMeta(string(goLine[1]))+`-\w+$`, builder.from, "the builder image pins go.mod's Go version")
	assert.Equal(t, "0", builder.env(t)["CGO_ENABLED"], "static binaries")
	builds := builder.goBuilds(t)
	var packages []string
	for _, argv := range builds {
		assert.Contains(t, argv, "-trimpath", argv)
		packages = append(packages, argv[len(argv)-1])
	}
	assert.ElementsMatch(t, []string{"./cmd/orderd", "./cmd/orderctl"}, packages)

	// The final image: small, non-root, orderd as PID 1, a health check.
	assert.NotContains(t, final.from, "golang", "the final image is not the toolchain")
	assert.Regexp(t, `^(scratch|gcr\.io/distroless/static[\w-]*:[\w.-]+)$`, final.from, "a minimal base, pinned by tag")
	users := final.all("USER")
	require.NotEmpty(t, users, "the final stage sets USER")
	uid, _, _ := strings.Cut(users[len(users)-1], ":")
	n, err := strconv.Atoi(uid)
	require.NoError(t, err, "USER is numeric, so runtimes can check it is not root")
	assert.NotZero(t, n, "USER is not root")

	entrypoints := final.all("ENTRYPOINT")
	require.Len(t, entrypoints, 1)
	assert.Equal(t, "orderd", filepath.Base(execForm(t, "ENTRYPOINT", entrypoints[0])[0]))
	assert.Empty(t, final.all("CMD"), "no CMD: arguments to docker run go to orderd")

	checks := final.all("HEALTHCHECK")
	require.Len(t, checks, 1)
	_, cmd, ok := strings.Cut(checks[0], "CMD ")
	require.True(t, ok, "HEALTHCHECK ... CMD [...]")
	probe := execForm(t, "HEALTHCHECK CMD", cmd)
	assert.Equal(t, []string{"orderd", "healthcheck"}, []string{filepath.Base(probe[0]), probe[1]}, "the image has no curl: orderd probes /readyz")

	// The data directory is the volume, owned by the user orderd runs as.
	vars := final.env(t)
	assert.Equal(t, []string{vars["ORDERD_DATA_DIR"]}, final.all("VOLUME"))
	assert.Contains(t, final.all("COPY"), fmt.Sprintf("--from=%s --chown=%s /out/data %s", builder.name, users[0], vars["ORDERD_DATA_DIR"]))
	_, port, err := net.SplitHostPort(vars["ORDERD_ADDR"])
	require.NoError(t, err)
	assert.Equal(t, []string{port}, final.all("EXPOSE"))
	assert.NotEqual(t, "127.0.0.1", strings.Split(vars["ORDERD_ADDR"], ":")[0], "reachable through a published port")

	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	require.NoError(t, err)
	for _, want := range []string{".git", "**/orderd-data"} {
		assert.Contains(t, strings.Split(string(ignore), "\n"), want, ".dockerignore")
	}
}

// TestDockerfileBuild builds orderd and orderctl exactly as the Dockerfile
// does (its go build lines, its builder ENV, in this repository, only the
// output directory moved), checks that they are static, and runs the image's
// ENTRYPOINT and HEALTHCHECK commands: the probe fails while orderd is down
// and while it is up but not ready, passes once it is ready, and SIGTERM
// ends orderd with a graceful shutdown and exit 0.
func TestDockerfileBuild(t *testing.T) {
	builder, final := readDockerfile(t)
	out := t.TempDir()
	built := map[string]string{} // base name in the image -> path here
	ctx, cancel := context.WithTimeout(context.Background(), dockerBuildTimeout)
	defer cancel()
	for _, argv := range builder.goBuilds(t) {
		i := slices.Index(argv, "-o")
		require.True(t, i > 0 && i+1 < len(argv), "go build -o <path>: %v", argv)
		argv = slices.Clone(argv)
		name := filepath.Base(argv[i+1])
		argv[i+1] = filepath.Join(out, name)
		built[name] = argv[i+1]
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = repoRoot
		cmd.Env = imageBuildEnv(t, builder)
		start := time.Now()
		output, err := cmd.CombinedOutput()
		require.NoError(t, err, "%v:\n%s", argv, output)
		t.Logf("%v took %v", argv, time.Since(start).Round(time.Millisecond))
		requireStatic(t, argv[i+1])
	}

	entry := execForm(t, "ENTRYPOINT", final.all("ENTRYPOINT")[0])
	_, hc, _ := strings.Cut(final.all("HEALTHCHECK")[0], "CMD ")
	probe := execForm(t, "HEALTHCHECK CMD", hc)
	orderd, ok := built[filepath.Base(entry[0])]
	require.True(t, ok, "the ENTRYPOINT %s is one of the built binaries %v", entry[0], built)
	probeBin, ok := built[filepath.Base(probe[0])]
	require.True(t, ok, "the HEALTHCHECK runs one of the built binaries")

	// The image's environment, but on a free loopback port (no API keys
	// here) and a temporary data directory.
	imageEnv := final.env(t)
	imageEnv["ORDERD_ADDR"] = freeLoopbackAddr(t)
	imageEnv["ORDERD_DATA_DIR"] = t.TempDir()
	runProbe := func() (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), healthcheckRunTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, probeBin, probe[1:]...)
		cmd.Env = withEnv(imageEnv)
		output, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), string(output)
		}
		require.NoError(t, err, "running the HEALTHCHECK command")
		return 0, string(output)
	}

	code, output := runProbe()
	assert.Equal(t, 1, code, "nothing listens yet: %s", output)

	// Listening, /healthz 200, but not ready: its Kafka is unreachable.
	notReady := withMap(imageEnv, map[string]string{"ORDERD_KAFKA_BROKERS": freeLoopbackAddr(t)})
	srv := startImageServer(t, orderd, entry[1:], notReady)
	require.Eventually(t, func() bool {
		status, _ := call(t, "GET", "http://"+imageEnv["ORDERD_ADDR"]+"/healthz", "", nil)
		return status == 200
	}, serverStartTimeout, 20*time.Millisecond)
	// The probe's verdict on orderd's answer: on a busy machine one run
	// can end at the probe's own 3 s deadline instead.
	require.Eventually(t, func() bool {
		code, output = runProbe()
		return !strings.Contains(output, "deadline exceeded")
	}, serverStartTimeout, 50*time.Millisecond, "the HEALTHCHECK never got an answer from orderd in time")
	assert.Equal(t, 1, code, "live but not ready: %s", output)
	assert.Contains(t, output, "/readyz: 503")
	srv.stop(t, syscall.SIGTERM)

	srv = startImageServer(t, orderd, entry[1:], imageEnv)
	require.Eventually(t, func() bool {
		code, _ := runProbe()
		return code == 0
	}, serverStartTimeout, 50*time.Millisecond, "the HEALTHCHECK never passed\n%s", srv.logs.String())
	srv.stop(t, syscall.SIGTERM)
	assert.Contains(t, srv.logs.String(), "msg=\"shutting down\"")
	assert.Regexp(t, `msg=stopped err=<nil>`, srv.logs.String(), "a graceful shutdown")
}

// imageBuildEnv is this environment with what the golang image and the
// builder stage set: GOTOOLCHAIN=local as the image has it, the stage's ENV,
// and none of this machine's Go settings that the image does not have.
func imageBuildEnv(t *testing.T, builder dockerStage) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains([]string{"GOFLAGS", "CGO_ENABLED", "GOOS", "GOARCH", "GOEXPERIMENT", "GOTOOLCHAIN"}, k) {
			env = append(env, kv)
		}
	}
	env = append(env, "GOTOOLCHAIN=local")
	for k, v := range builder.env(t) {
		env = append(env, k+"="+v)
	}
	return env
}

// withEnv is this environment without any ORDERD_* variable, plus vars.
func withEnv(vars map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORDERD_") {
			env = append(env, kv)
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

func withMap(base, extra map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(extra))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// requireStatic fails unless path is an ELF executable with no program
// interpreter and no shared libraries: it runs on an image without libc.
func requireStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "%s has a program interpreter: dynamically linked", path)
		assert.NotEqual(t, elf.PT_DYNAMIC, p.Type, "%s has a dynamic section", path)
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs, "%s needs shared libraries", path)
}

// startImageServer runs the built orderd as the image would (its ENTRYPOINT
// arguments, the image's environment) and returns once it listens.
func startImageServer(t *testing.T, bin string, args []string, vars map[string]string) *serverProcess {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = withEnv(vars)
	return startProcess(t, cmd)
}
