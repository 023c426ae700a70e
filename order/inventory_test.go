package order

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stock10 has 10 on hand, 3 of them reserved, at version 5.
var stock10 = Stock{SKU: "mug", OnHand: 10, Reserved: 3, Version: 5}

func invCmd(c StockChange) InventoryCommand {
	cmd := InventoryCommand{Change: c, SKU: "mug", OrderID: "o-1", OrderVersion: 2, EventID: "e-1"}
	if c == StockReserve {
		cmd.Quantity = 2
	}
	if c == StockSet {
		cmd.OrderID, cmd.OrderVersion, cmd.OnHand = "", 0, 7
	}
	return cmd
}

// TestDecideInventoryMatrix covers every command against every hold the
// order can have: what each appends (stock after, hold after), which are
// no-ops, which are refused.
func TestDecideInventoryMatrix(t *testing.T) {
	type want struct {
		noop          bool
		err           error
		onHand, resvd int64
		hold          HoldStatus
		qty           int64
	}
	holds := map[string]Hold{
		"none":      {},
		"held2":     {Status: HoldHeld, Quantity: 2, Version: 4},
		"held1":     {Status: HoldHeld, Quantity: 1, Version: 4},
		"released":  {Status: HoldReleased, Quantity: 2, Version: 4},
		"consumed":  {Status: HoldConsumed, Quantity: 2, Version: 4},
		"restocked": {Status: HoldRestocked, Quantity: 2, Version: 4},
	}
	tests := []struct {
		change StockChange
		hold   string
		want   want
	}{
		{StockReserve, "none", want{onHand: 10, resvd: 5, hold: HoldHeld, qty: 2}},
		{StockReserve, "held2", want{noop: true}},
		{StockReserve, "held1", want{err: ErrHoldConflict}},
		{StockReserve, "released", want{noop: true}},
		{StockReserve, "consumed", want{noop: true}},
		{StockReserve, "restocked", want{noop: true}},
		{StockRelease, "none", want{noop: true}}, // an action (OrderVersion 2); the saga's release of nothing is TestInventoryLifecycles'
		{StockRelease, "held2", want{onHand: 10, resvd: 1, hold: HoldReleased, qty: 2}},
		{StockRelease, "released", want{noop: true}},
		{StockRelease, "consumed", want{noop: true}},
		{StockRelease, "restocked", want{noop: true}},
		{StockConsume, "none", want{err: ErrHoldConflict}},
		{StockConsume, "held2", want{onHand: 8, resvd: 1, hold: HoldConsumed, qty: 2}},
		{StockConsume, "released", want{noop: true}},
		{StockConsume, "consumed", want{noop: true}},
		{StockConsume, "restocked", want{noop: true}},
		{StockRestock, "none", want{err: ErrHoldConflict}},
		{StockRestock, "held2", want{err: ErrHoldConflict}},
		{StockRestock, "released", want{noop: true}},
		{StockRestock, "consumed", want{onHand: 12, resvd: 3, hold: HoldRestocked, qty: 2}},
		{StockRestock, "restocked", want{noop: true}},
		{StockSet, "none", want{onHand: 7, resvd: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.change.String()+"/"+tt.hold, func(t *testing.T) {
			h := holds[tt.hold]
			ev, changed, err := DecideInventory(stock10, h, invCmd(tt.change), t0)
			if tt.want.err != nil {
				require.ErrorIs(t, err, tt.want.err)
				assert.False(t, changed)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, !tt.want.noop, changed)
			if tt.want.noop {
				assert.Zero(t, ev)
				return
			}
			assert.Equal(t, uint64(6), ev.Version)
			assert.Equal(t, tt.want.onHand, ev.OnHand)
			assert.Equal(t, tt.want.resvd, ev.Reserved)
			s, nh, err := ApplyInventory(stock10, h, ev)
			require.NoError(t, err, "whatever Decide accepts, Apply accepts")
			assert.Equal(t, Stock{SKU: "mug", OnHand: tt.want.onHand, Reserved: tt.want.resvd, Version: 6}, s)
			if tt.change == StockSet {
				assert.Equal(t, h, nh)
				return
			}
			assert.Equal(t, Hold{Status: tt.want.hold, Quantity: tt.want.qty, OrderVersion: 2, Version: 6}, nh)
		})
	}
}

func TestReserveOutOfStock(t *testing.T) {
	cmd := invCmd(StockReserve)
	cmd.Quantity = 8
	_, _, err := DecideInventory(stock10, Hold{}, cmd, t0)
	var oos *OutOfStockError
	require.ErrorAs(t, err, &oos)
	assert.ErrorIs(t, err, ErrOutOfStock)
	assert.Equal(t, OutOfStockError{SKU: "mug", Requested: 8, Available: 7}, *oos)

	// A SKU never set has nothing available.
	_, _, err = DecideInventory(Stock{}, Hold{}, invCmd(StockReserve), t0)
	require.ErrorAs(t, err, &oos)
	assert.Equal(t, int64(0), oos.Available)

	// The last units are available, exactly.
	cmd.Quantity = 7
	ev, changed, err := DecideInventory(stock10, Hold{}, cmd, t0)
	require.NoError(t, err)
	assert.True(t, changed)
	assert.Equal(t, int64(10), ev.Reserved)
}

func TestSetBelowReservedIsRefused(t *testing.T) {
	cmd := invCmd(StockSet)
	cmd.OnHand = 2
	_, _, err := DecideInventory(stock10, Hold{}, cmd, t0)
	var sre *StockReservedError
	require.ErrorAs(t, err, &sre)
	assert.ErrorIs(t, err, ErrStockReserved)
	assert.Equal(t, int64(3), sre.Reserved)
	cmd.OnHand = 3 // down to exactly what is reserved: fine
	_, _, err = DecideInventory(stock10, Hold{}, cmd, t0)
	require.NoError(t, err)
}

func TestDecideInventoryBounds(t *testing.T) {
	tests := map[string]struct {
		cmd   func(*InventoryCommand)
		field string
	}{
		"negative on_hand":   {func(c *InventoryCommand) { c.Change, c.OrderID, c.OnHand = StockSet, "", -1 }, FieldOnHand},
		"on_hand over max":   {func(c *InventoryCommand) { c.Change, c.OrderID, c.OnHand = StockSet, "", OnHandMax+1 }, FieldOnHand},
		"set with an order":  {func(c *InventoryCommand) { c.Change = StockSet }, FieldOrderID},
		"zero quantity":      {func(c *InventoryCommand) { c.Quantity = 0 }, FieldQuantity},
		"quantity over max":  {func(c *InventoryCommand) { c.Quantity = QuantityMax + 1 }, FieldQuantity},
		"no order":           {func(c *InventoryCommand) { c.OrderID = "" }, FieldOrderID},
		"order with a colon": {func(c *InventoryCommand) { c.OrderID = "a:b" }, FieldOrderID},
		"empty sku":          {func(c *InventoryCommand) { c.SKU = "" }, FieldSKU},
		"sku with a slash":   {func(c *InventoryCommand) { c.SKU = "a/b" }, FieldSKU},
		"sku too long":       {func(c *InventoryCommand) { c.SKU = string(make([]byte, SKULenMax+1)) }, FieldSKU},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cmd := invCmd(StockReserve)
			tt.cmd(&cmd)
			_, _, err := DecideInventory(Stock{}, Hold{}, cmd, t0)
			var ie *InventoryError
			require.ErrorAs(t, err, &ie)
			assert.ErrorIs(t, err, ErrInvalidInventory)
			assert.Equal(t, tt.field, ie.Field)
		})
	}
}

func TestDecideInventoryIfMatch(t *testing.T) {
	cmd := invCmd(StockSet)
	cmd.ExpectedVersion = 4
	_, _, err := DecideInventory(stock10, Hold{}, cmd, t0)
	var vme *VersionMismatchError
	require.ErrorAs(t, err, &vme)
	assert.Equal(t, uint64(5), vme.Current)
	cmd.ExpectedVersion = 5
	_, _, err = DecideInventory(stock10, Hold{}, cmd, t0)
	require.NoError(t, err)
}

// TestApplyInventorySkips: the one rule refuses duplicates, gaps, another
// SKU's records, totals that do not follow, and steps the ledger does not
// allow, and changes nothing when it does.
func TestApplyInventorySkips(t *testing.T) {
	held := Hold{Status: HoldHeld, Quantity: 2, Version: 4}
	good := InventoryEvent{EventID: "e", SKU: "mug", Version: 6, Change: StockRelease, Quantity: 2, OnHand: 10, Reserved: 1, OrderID: "o-1", At: t0}
	_, _, err := ApplyInventory(stock10, held, good)
	require.NoError(t, err)
	tests := map[string]struct {
		ev   func(*InventoryEvent)
		hold Hold
		want error
	}{
		"duplicate":               {func(e *InventoryEvent) { e.Version = 5 }, held, ErrRecordDuplicate},
		"gap":                     {func(e *InventoryEvent) { e.Version = 7 }, held, ErrRecordFork},
		"other sku":               {func(e *InventoryEvent) { e.SKU = "tea" }, held, ErrRecordFork},
		"totals do not follow":    {func(e *InventoryEvent) { e.Reserved = 2 }, held, ErrRecordFork},
		"release of another qty":  {func(e *InventoryEvent) { e.Quantity, e.Reserved = 1, 2 }, held, ErrRecordFork},
		"release of nothing held": {func(e *InventoryEvent) {}, Hold{}, ErrRecordFork},
		"reserve while held":      {func(e *InventoryEvent) { e.Change, e.Reserved = StockReserve, 5 }, held, ErrRecordFork},
		"consume more than held":  {func(e *InventoryEvent) { e.Change, e.Quantity, e.OnHand, e.Reserved = StockConsume, 3, 7, 0 }, held, ErrRecordFork},
		"restock of held":         {func(e *InventoryEvent) { e.Change, e.OnHand, e.Reserved = StockRestock, 12, 3 }, held, ErrRecordFork},
		"set below reserved":      {func(e *InventoryEvent) { e.Change, e.OrderID, e.Quantity, e.OnHand, e.Reserved = StockSet, "", 0, 2, 3 }, Hold{}, ErrRecordFork},
		"set with an order":       {func(e *InventoryEvent) { e.Change, e.Quantity, e.OnHand, e.Reserved = StockSet, 0, 9, 3 }, Hold{}, ErrRecordFork},
		"reserve beyond on hand":  {func(e *InventoryEvent) { e.Change, e.Quantity, e.Reserved = StockReserve, 8, 11 }, Hold{}, ErrRecordFork},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ev := good
			tt.ev(&ev)
			s, h, err := ApplyInventory(stock10, tt.hold, ev)
			require.ErrorIs(t, err, tt.want)
			assert.Equal(t, stock10, s)
			assert.Equal(t, tt.hold, h)
		})
	}
}

// TestInventoryLifecycles runs the life of two orders' holds through
// Decide and Apply, repeating every command, and checks the totals.
func TestInventoryLifecycles(t *testing.T) {
	s := Stock{}
	holds := map[string]Hold{}
	now := t0
	run := func(cmd InventoryCommand) (bool, error) {
		cmd.SKU, cmd.EventID = "mug", "e"
		now = now.Add(time.Second)
		ev, changed, err := DecideInventory(s, holds[cmd.OrderID], cmd, now)
		if err != nil || !changed {
			return false, err
		}
		next, h, err := ApplyInventory(s, holds[cmd.OrderID], ev)
		require.NoError(t, err)
		s = next
		if cmd.OrderID != "" {
			holds[cmd.OrderID] = h
		}
		return true, nil
	}
	steps := []struct {
		cmd     InventoryCommand
		applied bool
	}{
		{InventoryCommand{Change: StockSet, OnHand: 5}, true},
		{InventoryCommand{Change: StockReserve, OrderID: "a", Quantity: 3}, true},
		{InventoryCommand{Change: StockReserve, OrderID: "a", Quantity: 3}, false},
		{InventoryCommand{Change: StockReserve, OrderID: "b", Quantity: 2}, true},
		{InventoryCommand{Change: StockConsume, OrderID: "a"}, true},
		{InventoryCommand{Change: StockConsume, OrderID: "a"}, false},
		{InventoryCommand{Change: StockRelease, OrderID: "a"}, false}, // after consume: nothing to give back
		{InventoryCommand{Change: StockRelease, OrderID: "b"}, true},
		{InventoryCommand{Change: StockReserve, OrderID: "b", Quantity: 2}, false}, // late: holds nothing
		{InventoryCommand{Change: StockRestock, OrderID: "a"}, true},
		{InventoryCommand{Change: StockRestock, OrderID: "a"}, false},
		{InventoryCommand{Change: StockRelease, OrderID: "c"}, true},               // released before held
		{InventoryCommand{Change: StockReserve, OrderID: "c", Quantity: 1}, false}, // so the late reserve holds nothing
		// A transition's action on an order that held nothing here: no record.
		{InventoryCommand{Change: StockRelease, OrderID: "d", OrderVersion: 2}, false},
		{InventoryCommand{Change: StockReserve, OrderID: "d", Quantity: 1}, true},
	}
	for i, st := range steps {
		applied, err := run(st.cmd)
		require.NoError(t, err, "step %d", i)
		assert.Equal(t, st.applied, applied, "step %d", i)
	}
	assert.Equal(t, Stock{SKU: "mug", OnHand: 5, Reserved: 1, Version: 8}, s)
	assert.Equal(t, HoldRestocked, holds["a"].Status)
	assert.Equal(t, HoldReleased, holds["b"].Status)
	assert.Equal(t, Hold{Status: HoldReleased, Version: 7}, holds["c"])
}

func TestStockChangeNames(t *testing.T) {
	for c := StockSet; c <= StockRestock; c++ {
		got, ok := ParseStockChange(c.String())
		require.True(t, ok)
		assert.Equal(t, c, got)
	}
	_, ok := ParseStockChange("Set")
	assert.False(t, ok, "names are exact")
	assert.False(t, StockChange(0).Valid())
	assert.Equal(t, "inventory:mug", InventoryKey("mug"))
}
