package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	orderhttp "github.com/orderd/orderd/http"
)

// TestNodeKey: the node token names one of the API keys, from a file or
// ORDERD_NODE_TOKEN; every mistake is refused with what to do, never with
// the token.
func TestNodeKey(t *testing.T) {
	keys := []orderhttp.APIKey{{Principal: "alice", Token: "0123456789abcdef-alice"}, {Principal: "node", Token: "0123456789abcdef-node"}}
	dir := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}
	parse := func(args []string, vars map[string]string) (Config, error) {
		return ParseConfig(args, env(vars), io.Discard)
	}
	withKeys := map[string]string{"ORDERD_API_KEYS": "alice=0123456789abcdef-alice"}

	c, err := parse([]string{"--node-token-file", file("token", "0123456789abcdef-node\n")}, withKeys)
	require.NoError(t, err)
	k, err := c.NodeKey(keys)
	require.NoError(t, err)
	assert.Equal(t, keys[1], k)

	c, err = parse(nil, map[string]string{"ORDERD_API_KEYS": "x=0123456789abcdef-xxxx", envNodeToken: " 0123456789abcdef-node "})
	require.NoError(t, err)
	k, err = c.NodeKey(keys)
	require.NoError(t, err)
	assert.Equal(t, "node", k.Principal)
	assert.NotContains(t, c.NodeTokenInline.String(), "abcdef", "the token is redacted when printed")

	c, err = parse(nil, nil)
	require.NoError(t, err)
	k, err = c.NodeKey(keys)
	require.NoError(t, err)
	assert.Equal(t, orderhttp.APIKey{}, k, "none configured")

	for _, tt := range []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"not a key", []string{"--node-token-file", file("other", "0123456789abcdef-other")}, withKeys, "none of the API keys"},
		{"empty file", []string{"--node-token-file", file("empty", "\n")}, withKeys, "the file is empty"},
		{"two lines", []string{"--node-token-file", file("two", "0123456789abcdef-node\n0123456789abcdef-alice\n")}, withKeys, "more than one line"},
		{"missing file", []string{"--node-token-file", filepath.Join(dir, "nope")}, withKeys, "--node-token-file"},
	} {
		c, err := parse(tt.args, tt.vars)
		require.NoError(t, err, tt.name)
		_, err = c.NodeKey(keys)
		require.Error(t, err, tt.name)
		assert.Contains(t, err.Error(), tt.want, tt.name)
		assert.NotContains(t, err.Error(), "abcdef", "%s: the error shows no token", tt.name)
	}

	_, err = parse([]string{"--node-token-file", file("t2", "0123456789abcdef-node")}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "none are configured")
	_, err = parse([]string{"--node-token-file", file("t3", "0123456789abcdef-node")},
		map[string]string{"ORDERD_API_KEYS": "a=0123456789abcdef-aaaa", envNodeToken: "0123456789abcdef-node"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "choose one")
}
