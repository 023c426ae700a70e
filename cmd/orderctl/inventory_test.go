package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInventoryGetSet(t *testing.T) {
	s := startServer(t)

	r := s.ctl(t, "inventory", "get", "mug")
	assert.Equal(t, exitNotFound, r.code, r.stderr)
	assert.Contains(t, r.stderr, "SKU not found")

	assert.Equal(t, "mug  on_hand 10  reserved 0  available 10  v1\n", s.must(t, "inventory", "set", "mug", "10"))
	assert.Equal(t, "mug  on_hand 4  reserved 0  available 4  v2\n", s.must(t, "inventory", "set", "mug", "4", "--if-match", "1"))
	assert.Equal(t, "mug  on_hand 4  reserved 0  available 4  v2\n", s.must(t, "inventory", "get", "mug"))

	r = s.ctl(t, "inventory", "set", "mug", "5", "--if-match", "1")
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Contains(t, r.stderr, "current version: 2")

	var st stockView
	require.NoError(t, json.Unmarshal([]byte(s.must(t, "--json", "inventory", "get", "mug")), &st))
	assert.Equal(t, stockView{SKU: "mug", OnHand: 4, Available: 4, Version: 2}, st)
}

func TestInventoryUsageErrors(t *testing.T) {
	env := map[string]string{envURL: "http://" + closedAddr(t)}
	for _, tt := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"inventory"}, "want get or set"},
		{[]string{"inventory", "count", "mug"}, `unknown subcommand "count"`},
		{[]string{"inventory", "get"}, "want 1 argument(s), got 0"},
		{[]string{"inventory", "get", "a/b"}, "SKU: "},
		{[]string{"inventory", "set", "mug"}, "want 2 argument(s), got 1"},
		{[]string{"inventory", "set", "mug", "--", "-1"}, `want the units on hand`},
		{[]string{"inventory", "set", "mug", "ten"}, `want the units on hand`},
		{[]string{"inventory", "set", "mug", "1", "--if-match", "latest"}, `--if-match "latest": want a version`},
	} {
		r := ctl(t, env, tt.args...)
		assert.Equal(t, exitUsage, r.code, "%q: %s", tt.args, r.stderr)
		assert.Contains(t, r.stderr, tt.stderr, "%q", tt.args)
	}
}

// TestTailPrintsInventory: inventory records on the topic are printed as
// such, beside the orders', and skipped by --order.
func TestTailPrintsInventory(t *testing.T) {
	s := startServer(t)
	s.must(t, "inventory", "set", "mug", "10")
	s.must(t, "inventory", "set", "mug", "7")
	s.must(t, "create", "--id", "o-1")

	r := ctl(t, nil, "tail", "--brokers", s.broker, "--from-beginning", "--until-end")
	require.Equal(t, exitOK, r.code, r.stderr)
	assertNoTailErrors(t, r.stderr)
	assert.Regexp(t, `(?m)^\S+Z  inventory:mug  v1  set on_hand 10  on_hand 10  reserved 0$`, r.stdout)
	assert.Regexp(t, `(?m)^\S+Z  inventory:mug  v2  set on_hand 7  on_hand 7  reserved 0$`, r.stdout)
	assert.Contains(t, r.stdout, "  o-1  v1  -> Created\n")

	r = ctl(t, nil, "tail", "--brokers", s.broker, "--from-beginning", "--until-end", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"sku":"mug","version":2,"change":"set","quantity":0,"on_hand":7,"reserved":0`)

	r = ctl(t, nil, "tail", "--brokers", s.broker, "--from-beginning", "--until-end", "--order", "o-1")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.NotContains(t, r.stdout, "inventory")
}
