package order

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTotal(t *testing.T) {
	tests := []struct {
		name  string
		items []Item
		want  int64
	}{
		{"none", nil, 0},
		{"one line", []Item{{SKU: "a", Quantity: 3, UnitPrice: 250}}, 750},
		{"free and paid", []Item{{SKU: "a", Quantity: 2, UnitPrice: 0}, {SKU: "b", Quantity: 1, UnitPrice: 1999}}, 1999},
		{"every bound at once", maxItems(), ItemsMax * QuantityMax * UnitPriceMax},
		{"exactly MaxInt64", []Item{{SKU: "a", Quantity: 1, UnitPrice: math.MaxInt64}}, math.MaxInt64},
	}
	for _, tt := range tests {
		got, err := Total(tt.items)
		require.NoError(t, err, tt.name)
		assert.Equal(t, tt.want, got, tt.name)
	}
	// Beyond the bounds only a corrupt log or a bug could go; still refused.
	for name, items := range map[string][]Item{
		"one line overflows":    {{SKU: "a", Quantity: math.MaxInt64, UnitPrice: 2}},
		"the sum overflows":     {{SKU: "a", Quantity: 1, UnitPrice: math.MaxInt64}, {SKU: "b", Quantity: 1, UnitPrice: 1}},
		"above int64, no carry": {{SKU: "a", Quantity: 1 << 32, UnitPrice: 1 << 31}},
		"negative":              {{SKU: "a", Quantity: -1, UnitPrice: 5}},
	} {
		_, err := Total(items)
		assert.ErrorIs(t, err, ErrInvalidContents, name)
	}
}

func maxItems() []Item {
	items := make([]Item, ItemsMax)
	for i := range items {
		items[i] = Item{SKU: strings.Repeat("s", SKULenMax), Quantity: QuantityMax, UnitPrice: UnitPriceMax}
	}
	return items
}

func TestMergeMetadata(t *testing.T) {
	base := map[string]string{"a": "1", "b": "2"}
	merged := MergeMetadata(base, map[string]string{"b": "3", "c": "4"})
	assert.Equal(t, map[string]string{"a": "1", "b": "3", "c": "4"}, merged, "later keys win")
	assert.Equal(t, map[string]string{"a": "1", "b": "2"}, base, "base is not modified")
	assert.Equal(t, map[string]string{"c": "1"}, MergeMetadata(nil, map[string]string{"c": "1"}))
	assert.Nil(t, MergeMetadata(nil, nil))
	assert.Equal(t, base, MergeMetadata(base, map[string]string{}))
}

// Contents through Decide and Apply: the creation fixes them, every event
// merges its metadata, and an order without any never gets a Contents.
func TestContentsThroughDecideAndApply(t *testing.T) {
	create := Command{Kind: CommandCreate, OrderID: "o-1", EventID: "e-1", CustomerID: "cus-7", Currency: "EUR",
		Items:    []Item{{SKU: "mug", Quantity: 2, UnitPrice: 1250}, {SKU: "tea", Quantity: 1, UnitPrice: 499}},
		Metadata: map[string]string{"channel": "web", "tracking_number": "none"}}
	ev, err := Decide(Order{}, create, t0)
	require.NoError(t, err)
	assert.Equal(t, int64(2999), ev.Total)
	o, err := Apply(Order{}, ev)
	require.NoError(t, err)
	require.NotNil(t, o.Contents)
	assert.Equal(t, Contents{CustomerID: "cus-7", Currency: "EUR", Items: create.Items, Total: 2999,
		Metadata: map[string]string{"channel": "web", "tracking_number": "none"}}, *o.Contents)

	created := o.Contents
	for _, step := range []struct {
		to State
		md map[string]string
	}{{Paid, nil}, {Shipped, map[string]string{"tracking_number": "DHL 0034", "carrier": "DHL"}}} {
		ev, err := Decide(o, Command{Kind: CommandTransition, OrderID: "o-1", EventID: "e", To: step.to, Metadata: step.md}, t0)
		require.NoError(t, err)
		assert.Equal(t, step.md, ev.Metadata)
		o, err = Apply(o, ev)
		require.NoError(t, err)
	}
	assert.Equal(t, map[string]string{"channel": "web", "tracking_number": "DHL 0034", "carrier": "DHL"}, o.Contents.Metadata)
	assert.Equal(t, "EUR", o.Contents.Currency, "the creation's contents stay")
	assert.Equal(t, map[string]string{"channel": "web", "tracking_number": "none"}, created.Metadata, "an earlier Contents is never modified")

	plain, err := Decide(Order{}, Command{Kind: CommandCreate, OrderID: "o-2", EventID: "e-2"}, t0)
	require.NoError(t, err)
	p, err := Apply(Order{}, plain)
	require.NoError(t, err)
	ev, err = Decide(p, Command{Kind: CommandTransition, OrderID: "o-2", EventID: "e-3", To: Paid, Metadata: map[string]string{}}, t0)
	require.NoError(t, err)
	assert.Nil(t, ev.Metadata, "an empty object adds nothing")
	p, err = Apply(p, ev)
	require.NoError(t, err)
	assert.Nil(t, p.Contents, "an order without contents gets none")
}

// TestDecideRefusesContents: every bound, refused with the member named.
func TestDecideRefusesContents(t *testing.T) {
	item := Item{SKU: "sku-1", Quantity: 1, UnitPrice: 100}
	items := func(mutate func(*Item)) []Item {
		list := []Item{item, item, item, item}
		mutate(&list[3])
		return list
	}
	manyKeys := map[string]string{}
	for i := range MetadataKeysMax + 1 {
		manyKeys["k"+strings.Repeat("x", i)] = ""
	}
	bigValues := map[string]string{}
	for i := range MetadataBytesMax/MetadataValueLenMax + 1 {
		bigValues["k"+strings.Repeat("x", i)] = strings.Repeat("v", MetadataValueLenMax)
	}
	tests := []struct {
		name  string
		cmd   func(*Command)
		field string
	}{
		{"items without currency", func(c *Command) { c.Currency = "" }, "currency"},
		{"currency without items", func(c *Command) { c.Items = nil }, "items"},
		{"no items", func(c *Command) { c.Items = []Item{} }, "items"},
		{"too many items", func(c *Command) { c.Items = make([]Item, ItemsMax+1) }, "items"},
		{"empty sku", func(c *Command) { c.Items = items(func(i *Item) { i.SKU = "" }) }, "items[3].sku"},
		{"long sku", func(c *Command) { c.Items = items(func(i *Item) { i.SKU = strings.Repeat("s", SKULenMax+1) }) }, "items[3].sku"},
		{"sku with a space", func(c *Command) { c.Items = items(func(i *Item) { i.SKU = "a b" }) }, "items[3].sku"},
		{"quantity 0", func(c *Command) { c.Items = items(func(i *Item) { i.Quantity = 0 }) }, "items[3].quantity"},
		{"quantity above the bound", func(c *Command) { c.Items = items(func(i *Item) { i.Quantity = QuantityMax + 1 }) }, "items[3].quantity"},
		{"negative price", func(c *Command) { c.Items = items(func(i *Item) { i.UnitPrice = -1 }) }, "items[3].unit_price"},
		{"price above the bound", func(c *Command) { c.Items = items(func(i *Item) { i.UnitPrice = UnitPriceMax + 1 }) }, "items[3].unit_price"},
		{"lowercase currency", func(c *Command) { c.Currency = "eur" }, "currency"},
		{"four-letter currency", func(c *Command) { c.Currency = "EURO" }, "currency"},
		{"customer with a space", func(c *Command) { c.CustomerID = " " }, "customer_id"},
		{"long customer", func(c *Command) { c.CustomerID = strings.Repeat("c", CustomerIDLenMax+1) }, "customer_id"},
		{"too many keys", func(c *Command) { c.Metadata = manyKeys }, "metadata"},
		{"empty key", func(c *Command) { c.Metadata = map[string]string{"": "v"} }, "metadata"},
		{"long key", func(c *Command) { c.Metadata = map[string]string{strings.Repeat("k", MetadataKeyLenMax+1): "v"} }, "metadata"},
		{"key with a slash", func(c *Command) { c.Metadata = map[string]string{"a/b": "v"} }, "metadata"},
		{"long value", func(c *Command) { c.Metadata = map[string]string{"note": strings.Repeat("v", MetadataValueLenMax+1)} }, "metadata.note"},
		{"invalid UTF-8", func(c *Command) { c.Metadata = map[string]string{"note": "\xff"} }, "metadata.note"},
		{"too many bytes", func(c *Command) { c.Metadata = bigValues }, "metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := Command{Kind: CommandCreate, OrderID: "o-1", EventID: "e-1", CustomerID: "c", Currency: "EUR", Items: []Item{item}}
			tt.cmd(&cmd)
			_, err := Decide(Order{}, cmd, t0)
			var ce *ContentsError
			require.ErrorAs(t, err, &ce)
			assert.ErrorIs(t, err, ErrInvalidContents)
			assert.Equal(t, tt.field, ce.Field)
		})
	}
	// At the bounds: accepted.
	atBounds := map[string]string{}
	for i := range MetadataKeysMax {
		atBounds[strings.Repeat("k", i+1)] = strings.Repeat("v", MetadataBytesMax/MetadataKeysMax-i-1)
	}
	require.NoError(t, CheckMetadata(atBounds))
	_, err := Decide(Order{}, Command{Kind: CommandCreate, OrderID: "o-1", EventID: "e-1",
		CustomerID: strings.Repeat("c", CustomerIDLenMax), Currency: "JPY", Items: maxItems(), Metadata: atBounds}, t0)
	require.NoError(t, err)
}
