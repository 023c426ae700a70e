package order

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestValidateID(t *testing.T) {
	for _, id := range []string{"a", "01JDX3K8Z6N4T3Q2W1E0R9Y8U7", "order-1.2_3~4", strings.Repeat("x", IDLenMax)} {
		assert.NoError(t, ValidateID(id), "%q", id)
	}
	for _, id := range []string{"", strings.Repeat("x", IDLenMax+1), "a/b", "a b", "é", "a%2F", "a\x00"} {
		assert.ErrorIs(t, ValidateID(id), ErrInvalidID, "%q", id)
	}
}

func TestNewIDIsValidAndSortsByTime(t *testing.T) {
	var ids []string
	for i := range 100 {
		var entropy [IDEntropyLen]byte
		entropy[0] = byte(255 - i) // later IDs get smaller entropy: time must still win
		id := NewID(t0.Add(time.Duration(i)*time.Millisecond), entropy)
		assert.Len(t, id, 26)
		assert.NoError(t, ValidateID(id))
		ids = append(ids, id)
	}
	assert.True(t, sort.StringsAreSorted(ids))
	assert.Equal(t, "00000000000000000000000000", NewID(time.UnixMilli(0), [IDEntropyLen]byte{}))
	// The ULID spec's maximum timestamp encodes as 7ZZZZZZZZZ.
	assert.Equal(t, "7ZZZZZZZZZ", NewID(time.UnixMilli(1<<48-1), [IDEntropyLen]byte{})[:10])
}
