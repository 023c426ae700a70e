package main

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigIdempotencyWindow(t *testing.T) {
	c, err := ParseConfig(nil, env(map[string]string{
		"ORDERD_IDEMPOTENCY_KEYS_PER_ORDER": "3",
		"ORDERD_IDEMPOTENCY_WINDOW":         "2h",
	}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 3, c.IdempotencyKeysPerOrder)
	assert.Equal(t, 2*time.Hour, c.IdempotencyWindow)

	c, err = ParseConfig([]string{"--idempotency-keys-per-order", "5", "--idempotency-window", "90m"},
		env(map[string]string{"ORDERD_IDEMPOTENCY_KEYS_PER_ORDER": "3"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 5, c.IdempotencyKeysPerOrder, "the flag wins")
	assert.Equal(t, 90*time.Minute, c.IdempotencyWindow)

	for _, args := range [][]string{
		{"--idempotency-keys-per-order", "0"},
		{"--idempotency-window", "0s"},
		{"--idempotency-window", "-1h"},
	} {
		_, err := ParseConfig(args, env(nil), io.Discard)
		assert.ErrorContains(t, err, "--idempotency-", args)
	}
}
