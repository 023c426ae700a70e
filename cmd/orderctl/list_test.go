package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestList(t *testing.T) {
	s := startServer(t)
	for _, o := range []struct{ id, customer, to string }{
		{"o-1", "alice", "Paid"}, {"o-2", "bob", ""}, {"o-3", "alice", "Paid"}, {"o-4", "alice", ""}, {"o-5", "bob", "Paid"},
	} {
		s.must(t, "create", "--id", o.id, "--customer", o.customer, "--currency", "EUR", "--item", "sku-1:2:150")
		if o.to != "" {
			s.must(t, "transition", o.id, o.to)
		}
	}

	// One page of two, and the way to the next on stderr.
	r := s.ctl(t, "list", "--limit", "2")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, []string{"o-1", "o-2"}, listedIDs(r.stdout))
	assert.Contains(t, r.stderr, "--cursor ")
	cursor := strings.Fields(r.stderr[strings.LastIndex(r.stderr, "--cursor ")+len("--cursor "):])[0]
	r = s.ctl(t, "list", "--limit", "2", "--cursor", cursor)
	assert.Equal(t, []string{"o-3", "o-4"}, listedIDs(r.stdout))

	// --all follows every page; filters, a state in any case.
	assert.Equal(t, []string{"o-1", "o-2", "o-3", "o-4", "o-5"}, listedIDs(s.must(t, "list", "--limit", "2", "--all")))
	assert.Equal(t, []string{"o-1", "o-3", "o-5"}, listedIDs(s.must(t, "list", "--state", "paid", "--limit", "1", "--all")))
	assert.Equal(t, []string{"o-1", "o-3"}, listedIDs(s.must(t, "list", "--state", "Paid", "--customer", "alice", "--all")))
	out := s.must(t, "list", "--customer", "bob")
	assert.Equal(t, []string{"o-2", "o-5"}, listedIDs(out))
	assert.Contains(t, out, "sku-1", "each order as get prints it, items included")

	// --json: the server's page, one document per line.
	out = s.must(t, "--json", "list", "--limit", "3", "--all")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	var first listView
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	assert.Len(t, first.Orders, 3)
	assert.NotEmpty(t, first.NextCursor)
	assert.Equal(t, "alice", first.Orders[0].CustomerID)

	// Mistakes are usage errors: nothing is sent.
	for _, args := range [][]string{
		{"list", "--limit", "0"}, {"list", "--limit", "1001"}, {"list", "--state", "lost"},
		{"list", "--customer", "a b"}, {"list", "extra"},
	} {
		r := s.ctl(t, args...)
		assert.Equal(t, exitUsage, r.code, "%q: %s", args, r.stderr)
	}
	// A cursor made for another filter is the server's 400.
	r = s.ctl(t, "list", "--state", "Paid", "--cursor", cursor)
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Contains(t, r.stderr, "another filter")
}

// listedIDs are the IDs of the orders list printed (the first word of each
// order's line; what an order carries is indented below it).
func listedIDs(out string) []string {
	var ids []string
	for line := range strings.Lines(out) {
		if line != "" && line[0] != ' ' {
			ids = append(ids, strings.Fields(line)[0])
		}
	}
	return ids
}
