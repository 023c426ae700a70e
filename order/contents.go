package order

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"unicode/utf8"
)

// What an order carries besides its lifecycle: who ordered (CustomerID),
// what (Items, priced in Currency) and the Total the server computed, all
// fixed by the creation; and Metadata, string pairs that any create or
// transition may add to (a tracking number on Shipped), later keys winning.
// All of it is in the log forever and in every response, so each part has a
// bound: a hostile client must not bloat the log, and a maximal record must
// stay below the journal's record limit (persistence tests assert that).

// Item is one line of an order. Prices are integer minor units of the
// order's currency (cents for EUR), so no amount is ever rounded.
type Item struct {
	SKU       string
	Quantity  int64
	UnitPrice int64
}

// Contents is what an order carries besides its lifecycle. It is shared and
// never modified once made: Apply makes a new one when an event changes it,
// so readers may keep it while the order moves on.
type Contents struct {
	CustomerID string
	Currency   string // ISO 4217, set exactly when Items is
	Items      []Item
	Total      int64             // sum of Quantity × UnitPrice, in minor units
	Metadata   map[string]string // merged from every event, later keys winning
}

// Bounds on what an order may carry.
const (
	// ItemsMax: a checkout basket, not a bulk import; 100 lines keep a
	// creation record and the order's response around 12 KiB.
	ItemsMax = 100
	// SKULenMax and SKUs in the order ID's characters: inventory will be an
	// actor per SKU, addressed by it in URLs and logs like an order ID.
	SKULenMax = 64
	// QuantityMax: larger quantities are wholesale contracts, not checkout;
	// with UnitPriceMax and ItemsMax it keeps every total far inside int64.
	QuantityMax = 10_000
	// UnitPriceMax: 10^12 minor units (ten billion at two decimals) is more
	// than any one article costs, in any currency we expect.
	UnitPriceMax = 1_000_000_000_000
	// CustomerIDLenMax fits any UUID, e-mail address or shop customer key.
	CustomerIDLenMax = 128
	// MetadataKeysMax bounds the pairs one request adds: metadata is for a
	// few references (tracking numbers, carrier, channel), not a document.
	MetadataKeysMax = 32
	// MetadataKeyLenMax and keys of letters, digits, '_', '-', '.': keys are
	// names a consumer matches on, and are quoted in error messages.
	MetadataKeyLenMax = 64
	// MetadataValueLenMax fits a tracking URL.
	MetadataValueLenMax = 256
	// MetadataBytesMax bounds the keys and values of one request together,
	// so that with every value escaped six-fold (a control character is
	// \u00XX) a maximal record stays under the journal's record limit.
	MetadataBytesMax = 2048
)

// Request fields a ContentsError can name, spelled as clients send them.
const (
	FieldCustomerID = "customer_id"
	FieldItems      = "items"
	FieldCurrency   = "currency"
	FieldMetadata   = "metadata"
)

// ErrInvalidContents matches every ContentsError.
var ErrInvalidContents = errors.New("invalid order contents")

// ContentsError names the member of a request (items[3].quantity) whose
// value is out of bounds or ill-formed.
type ContentsError struct {
	Field  string
	Detail string
}

func (e *ContentsError) Error() string { return e.Field + ": " + e.Detail }

func (e *ContentsError) Is(target error) bool { return target == ErrInvalidContents }

func contentsError(field, format string, args ...any) error {
	return &ContentsError{Field: field, Detail: fmt.Sprintf(format, args...)}
}

// ItemField names a member of items[i] as a client spells it.
func ItemField(i int, member string) string {
	return fmt.Sprintf("%s[%d].%s", FieldItems, i, member)
}

// CheckCustomerID accepts 1 to CustomerIDLenMax visible ASCII characters.
func CheckCustomerID(id string) error {
	switch {
	case id == "":
		return contentsError(FieldCustomerID, "empty; leave it out instead")
	case len(id) > CustomerIDLenMax:
		return contentsError(FieldCustomerID, "%d bytes, at most %d allowed", len(id), CustomerIDLenMax)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return contentsError(FieldCustomerID, "character %q at byte %d (allowed: visible ASCII)", id[i], i)
		}
	}
	return nil
}

// CheckCurrency accepts the form of an ISO 4217 code: three uppercase
// letters. Whether the code is assigned is the payment provider's to judge.
func CheckCurrency(c string) error {
	if len(c) != 3 || !isUpper(c[0]) || !isUpper(c[1]) || !isUpper(c[2]) {
		return contentsError(FieldCurrency, "%q is not an ISO 4217 code (three uppercase letters, such as EUR)", c)
	}
	return nil
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

// CheckItems checks every line of an order, and that there is at least one
// (an order without items leaves the member out).
func CheckItems(items []Item) error {
	switch {
	case len(items) == 0:
		return contentsError(FieldItems, "empty; leave it out for an order without items")
	case len(items) > ItemsMax:
		return contentsError(FieldItems, "%d items, at most %d allowed", len(items), ItemsMax)
	}
	for i, it := range items {
		if err := checkSKU(i, it.SKU); err != nil {
			return err
		}
		if it.Quantity < 1 || it.Quantity > QuantityMax {
			return contentsError(ItemField(i, "quantity"), "%d is outside 1..%d", it.Quantity, QuantityMax)
		}
		if it.UnitPrice < 0 || it.UnitPrice > UnitPriceMax {
			return contentsError(ItemField(i, "unit_price"), "%d is outside 0..%d", it.UnitPrice, UnitPriceMax)
		}
	}
	return nil
}

func checkSKU(i int, sku string) error {
	field := ItemField(i, "sku")
	switch {
	case sku == "":
		return contentsError(field, "empty")
	case len(sku) > SKULenMax:
		return contentsError(field, "%d bytes, at most %d allowed", len(sku), SKULenMax)
	}
	for j := 0; j < len(sku); j++ {
		if !isUnreserved(sku[j]) {
			return contentsError(field, "character %q at byte %d (allowed: letters, digits, '-', '.', '_', '~')", sku[j], j)
		}
	}
	return nil
}

// CheckMetadata checks the pairs one request adds. An empty map is
// allowed: it adds nothing.
func CheckMetadata(md map[string]string) error {
	if len(md) > MetadataKeysMax {
		return contentsError(FieldMetadata, "%d keys, at most %d allowed", len(md), MetadataKeysMax)
	}
	size := 0
	for k, v := range md {
		if err := CheckMetadataKey(k); err != nil {
			return err
		}
		field := FieldMetadata + "." + k
		if len(v) > MetadataValueLenMax {
			return contentsError(field, "%d bytes, at most %d allowed", len(v), MetadataValueLenMax)
		}
		if !utf8.ValidString(v) {
			return contentsError(field, "not valid UTF-8")
		}
		size += len(k) + len(v)
	}
	if size > MetadataBytesMax {
		return contentsError(FieldMetadata, "keys and values are %d bytes together, at most %d allowed", size, MetadataBytesMax)
	}
	return nil
}

// CheckMetadataKey accepts 1 to MetadataKeyLenMax letters, digits, '_',
// '-' and '.'.
func CheckMetadataKey(k string) error {
	switch {
	case k == "":
		return contentsError(FieldMetadata, "a key is empty")
	case len(k) > MetadataKeyLenMax:
		return contentsError(FieldMetadata, "a key is %d bytes, at most %d allowed", len(k), MetadataKeyLenMax)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(isUnreserved(c) && c != '~') {
			return contentsError(FieldMetadata, "key %q: character %q at byte %d (allowed: letters, digits, '_', '-', '.')", k, c, i)
		}
	}
	return nil
}

// CheckOrderContents checks what a creation carries: each part, and that
// items and currency come together (a price means nothing without one).
func CheckOrderContents(customerID, currency string, items []Item) error {
	if customerID != "" {
		if err := CheckCustomerID(customerID); err != nil {
			return err
		}
	}
	switch {
	case items != nil && currency == "":
		return contentsError(FieldCurrency, "required with items")
	case items == nil && currency != "":
		return contentsError(FieldItems, "required with currency")
	case items == nil:
		return nil
	}
	if err := CheckCurrency(currency); err != nil {
		return err
	}
	return CheckItems(items)
}

// Total is the sum of Quantity × UnitPrice over items, refused if it does
// not fit in an int64 (the bounds make that impossible for checked items;
// the log is not trusted to hold only those). Negative parts are refused.
func Total(items []Item) (int64, error) {
	var total uint64
	for i, it := range items {
		if it.Quantity < 0 || it.UnitPrice < 0 {
			return 0, contentsError(FieldItems, "items[%d] has a negative quantity or price", i)
		}
		hi, line := bits.Mul64(uint64(it.Quantity), uint64(it.UnitPrice))
		sum, carry := bits.Add64(total, line, 0)
		if hi != 0 || carry != 0 || sum > math.MaxInt64 {
			return 0, contentsError(FieldItems, "the total does not fit in 64 bits")
		}
		total = sum
	}
	return int64(total), nil
}

// MergeMetadata returns base with update's pairs added, update winning on
// the same key. Neither is modified; with nothing to add, base itself is
// returned.
func MergeMetadata(base, update map[string]string) map[string]string {
	if len(update) == 0 {
		return base
	}
	merged := make(map[string]string, len(base)+len(update))
	maps.Copy(merged, base)
	maps.Copy(merged, update)
	return merged
}

// hasContents reports whether ev carries anything Contents holds.
func hasContents(ev Event) bool {
	return ev.CustomerID != "" || ev.Currency != "" || ev.Items != nil || len(ev.Metadata) > 0
}

// NextContents is the contents of an order after ev, given those before it
// (nil for none): the creation fixes customer, items and total, and every
// event adds its metadata. It returns c itself when ev changes nothing, so
// an order without contents never gets any. Apply uses it, and so does
// whatever rebuilds an order from its events.
func NextContents(c *Contents, ev Event) *Contents {
	if ev.Version == 1 {
		c = nil
	}
	if !hasContents(ev) {
		return c
	}
	next := &Contents{}
	if c != nil {
		*next = *c
	}
	if ev.Version == 1 {
		next.CustomerID, next.Currency, next.Items, next.Total = ev.CustomerID, ev.Currency, ev.Items, ev.Total
	}
	next.Metadata = MergeMetadata(next.Metadata, ev.Metadata)
	return next
}
