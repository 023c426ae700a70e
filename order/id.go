package order

import (
	"encoding/binary"
	"fmt"
	"time"
)

// IDLenMax bounds order IDs: long enough for any UUID, ULID or shop-specific
// key, short enough that IDs cannot be used to bloat memory or the log.
const IDLenMax = 128

// ValidateID accepts 1 to IDLenMax bytes of URL-unreserved characters
// (RFC 3986: letters, digits, '-', '.', '_', '~'), so an ID never needs
// escaping in a path and reads the same in every log and tool.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if len(id) > IDLenMax {
		return fmt.Errorf("%w: %d bytes, at most %d allowed", ErrInvalidID, len(id), IDLenMax)
	}
	for i := 0; i < len(id); i++ {
		if !isUnreserved(id[i]) {
			return fmt.Errorf("%w: character %q at byte %d (allowed: letters, digits, '-', '.', '_', '~')", ErrInvalidID, id[i], i)
		}
	}
	return nil
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// IDEntropyLen is how many random bytes NewID needs.
const IDEntropyLen = 10

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID makes a ULID: 48 bits of milliseconds since the epoch, then 80
// random bits, in Crockford base32 (26 characters). IDs made later sort
// later as strings. The caller supplies the time and the randomness.
func NewID(now time.Time, entropy [IDEntropyLen]byte) string {
	var raw [16]byte
	ms := uint64(now.UnixMilli())
	binary.BigEndian.PutUint16(raw[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(raw[2:6], uint32(ms))
	copy(raw[6:], entropy[:])
	hi := binary.BigEndian.Uint64(raw[0:8])
	lo := binary.BigEndian.Uint64(raw[8:16])
	var out [26]byte
	// 128 bits as 26 groups of 5 bits, most significant first (the first
	// group holds only the top 3 bits, padded to 5 as ULID prescribes).
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
