package order

import (
	"errors"
	"fmt"
	"time"
)

// Inventory: the stock of one SKU, changed only by events in the log, with
// the same single-writer, apply-rule and replay guarantees as an order
// (DESIGN §10). The SKU's actor decides (DecideInventory), appends, awaits
// the acknowledgement and applies (ApplyInventory); replay and the state
// store apply with the same function.
//
// Every change but an administrative set names the order that caused it.
// Per SKU and order there is one hold, a small ledger entry that moves along
//
//	(none) --reserve q--> held(q) --consume--> consumed(q) --restock--> restocked(q)
//	(none) or held(q) --release--> released
//
// A command the hold has already moved past (a retry, or one that arrives
// after a later step) is a no-op success: it appends nothing and reports
// the hold as it is. That makes every effect exactly-once for a caller that
// runs each step at least once, and a late reserve after a release can never
// hold stock again: a release with no hold writes a release of 0 units, so
// the hold is released before it ever existed.

// Inventory bounds.
const (
	// OnHandMax bounds a SKU's units on hand: a billion units is more than
	// any one warehouse counts, and keeps every sum far inside int64.
	OnHandMax = 1_000_000_000
)

// Request fields an InventoryError can name, spelled as clients send them.
const (
	FieldOnHand   = "on_hand"
	FieldQuantity = "quantity"
	FieldSKU      = "sku"
	FieldOrderID  = "order_id"
)

// StockChange says what an inventory event does. The zero value is invalid.
type StockChange uint8

const (
	_ StockChange = iota
	// StockSet sets the units on hand (an administrative count).
	StockSet
	// StockReserve holds units for an order: reserved += q.
	StockReserve
	// StockRelease gives an order's held units back: reserved -= q.
	StockRelease
	// StockConsume ships an order's held units: on_hand -= q, reserved -= q.
	StockConsume
	// StockRestock puts an order's shipped units back: on_hand += q.
	StockRestock
)

var stockChangeNames = [...]string{StockSet: "set", StockReserve: "reserve", StockRelease: "release", StockConsume: "consume", StockRestock: "restock"}

func (c StockChange) String() string {
	if c.Valid() {
		return stockChangeNames[c]
	}
	return fmt.Sprintf("StockChange(%d)", uint8(c))
}

// Valid reports whether c is one of the changes.
func (c StockChange) Valid() bool { return c >= StockSet && c <= StockRestock }

// ParseStockChange reads a change by its exact (lowercase) name.
func ParseStockChange(name string) (StockChange, bool) {
	for c := StockSet; c <= StockRestock; c++ {
		if stockChangeNames[c] == name {
			return c, true
		}
	}
	return 0, false
}

// Stock is one SKU as the log has made it. The zero Stock (version 0) is a
// SKU nothing was recorded for: nothing on hand, nothing available.
type Stock struct {
	SKU      string
	OnHand   int64
	Reserved int64
	Version  uint64
}

// Exists reports whether any event was recorded for the SKU.
func (s Stock) Exists() bool { return s.Version > 0 }

// Available is what a reserve may still take.
func (s Stock) Available() int64 { return s.OnHand - s.Reserved }

// HoldStatus is where one order's hold on one SKU stands. The zero value is
// "no hold".
type HoldStatus uint8

const (
	_ HoldStatus = iota
	HoldHeld
	HoldReleased
	HoldConsumed
	HoldRestocked
)

var holdStatusNames = [...]string{HoldHeld: "held", HoldReleased: "released", HoldConsumed: "consumed", HoldRestocked: "restocked"}

func (h HoldStatus) String() string {
	if h >= HoldHeld && h <= HoldRestocked {
		return holdStatusNames[h]
	}
	if h == 0 {
		return "none"
	}
	return fmt.Sprintf("HoldStatus(%d)", uint8(h))
}

// Valid reports whether h is a status a hold can have (not "none").
func (h HoldStatus) Valid() bool { return h >= HoldHeld && h <= HoldRestocked }

// Terminal reports whether nothing can move the hold any more.
func (h HoldStatus) Terminal() bool { return h == HoldReleased || h == HoldRestocked }

// Hold is one order's ledger entry on one SKU.
type Hold struct {
	Status       HoldStatus
	Quantity     int64  // units held, consumed or restocked; 0 for a release without a hold
	OrderVersion uint64 // the order version that caused the last change; 0 if none was named
	Version      uint64 // the SKU's version whose event wrote it
}

// Exists reports whether the order ever had a hold on the SKU.
func (h Hold) Exists() bool { return h.Status != 0 }

// InventoryEvent is one accepted change of a SKU: what the journal records
// and what ApplyInventory consumes. OnHand and Reserved are the SKU's after
// the change, so that a reader of the log needs no arithmetic, and Apply
// checks them against its own.
type InventoryEvent struct {
	EventID      string
	SKU          string
	Version      uint64
	Change       StockChange
	Quantity     int64 // the order's units; 0 on a set and on a release without a hold
	OnHand       int64
	Reserved     int64
	OrderID      string // empty exactly on a set
	OrderVersion uint64 // the order version that caused it; 0: none named
	At           time.Time

	Principal      string
	RequestID      string
	IdempotencyKey string
}

// HoldAfter is the order's hold as ev leaves it; the zero Hold for a set.
func HoldAfter(ev InventoryEvent) Hold {
	h := Hold{Quantity: ev.Quantity, OrderVersion: ev.OrderVersion, Version: ev.Version}
	switch ev.Change {
	case StockReserve:
		h.Status = HoldHeld
	case StockRelease:
		h.Status = HoldReleased
	case StockConsume:
		h.Status = HoldConsumed
	case StockRestock:
		h.Status = HoldRestocked
	default:
		return Hold{}
	}
	return h
}

// InventoryCommand asks for one change of a SKU.
type InventoryCommand struct {
	Change StockChange
	SKU    string

	OnHand int64 // StockSet: the new count

	OrderID      string // every change but StockSet
	OrderVersion uint64 // optional: the order version that caused the change
	Quantity     int64  // StockReserve: the units to hold

	// ExpectedVersion, when not zero, must equal the SKU's version
	// (If-Match on a set).
	ExpectedVersion uint64

	EventID        string // chosen by the caller, so that Decide stays deterministic
	Principal      string
	RequestID      string
	IdempotencyKey string
}

// Inventory errors. Each typed error matches exactly one sentinel.
var (
	// ErrOutOfStock: a reserve asked for more than is available.
	ErrOutOfStock = errors.New("out of stock")
	// ErrStockReserved: a set would put fewer units on hand than are
	// reserved; release or consume the holds first.
	ErrStockReserved = errors.New("stock below what is reserved")
	// ErrHoldConflict: the order's hold does not allow the command (a
	// reserve of another quantity than held, a consume without a hold, a
	// restock of what was not consumed).
	ErrHoldConflict = errors.New("the order's hold does not allow this change")
	// ErrSKUNotFound: nothing was ever recorded for the SKU.
	ErrSKUNotFound = errors.New("sku not found")
	// ErrInvalidInventory matches every InventoryError: a command or a
	// field out of bounds.
	ErrInvalidInventory = errors.New("invalid inventory command")
)

// OutOfStockError says which SKU could not give what was asked.
type OutOfStockError struct {
	SKU       string
	Requested int64
	Available int64
}

func (e *OutOfStockError) Error() string {
	return fmt.Sprintf("sku %s: %d requested, %d available", e.SKU, e.Requested, e.Available)
}

func (e *OutOfStockError) Is(target error) bool { return target == ErrOutOfStock }

// StockReservedError is a set below what is reserved.
type StockReservedError struct {
	SKU      string
	OnHand   int64 // asked for
	Reserved int64
}

func (e *StockReservedError) Error() string {
	return fmt.Sprintf("sku %s: cannot set on_hand to %d, %d units are reserved; release or consume the holds first", e.SKU, e.OnHand, e.Reserved)
}

func (e *StockReservedError) Is(target error) bool { return target == ErrStockReserved }

// HoldConflictError says what the order's hold is and what was asked.
type HoldConflictError struct {
	SKU     string
	OrderID string
	Change  StockChange
	Hold    Hold
}

func (e *HoldConflictError) Error() string {
	switch {
	case e.Change == StockReserve:
		return fmt.Sprintf("sku %s: order %s already holds %d units; a reserve must ask for the same quantity", e.SKU, e.OrderID, e.Hold.Quantity)
	case !e.Hold.Exists():
		return fmt.Sprintf("sku %s: order %s holds nothing, so there is nothing to %v", e.SKU, e.OrderID, e.Change)
	}
	return fmt.Sprintf("sku %s: order %s's hold is %v, so there is nothing to %v", e.SKU, e.OrderID, e.Hold.Status, e.Change)
}

func (e *HoldConflictError) Is(target error) bool { return target == ErrHoldConflict }

// InventoryError names the request member that is out of bounds.
type InventoryError struct {
	Field  string
	Detail string
}

func (e *InventoryError) Error() string { return e.Field + ": " + e.Detail }

func (e *InventoryError) Is(target error) bool { return target == ErrInvalidInventory }

// ValidateSKU accepts 1 to SKULenMax letters, digits, '-', '.', '_', '~',
// as items' SKUs are.
func ValidateSKU(sku string) error {
	if err := checkSKU(0, sku); err != nil {
		var ce *ContentsError
		errors.As(err, &ce)
		return &InventoryError{Field: FieldSKU, Detail: ce.Detail}
	}
	return nil
}

// DecideInventory checks cmd against the SKU s and the order's hold h (the
// zero Hold for a set, or when the order has none) and returns the event
// that would carry it out. changed is false for a no-op: the hold has moved
// past the command already, nothing is to be appended, and the caller
// answers with s and h as they are. It changes nothing.
func DecideInventory(s Stock, h Hold, cmd InventoryCommand, now time.Time) (ev InventoryEvent, changed bool, err error) {
	if err := checkInventoryCommand(s, cmd); err != nil {
		return InventoryEvent{}, false, err
	}
	ev = InventoryEvent{
		EventID: cmd.EventID, SKU: cmd.SKU, Version: s.Version + 1, Change: cmd.Change,
		OnHand: s.OnHand, Reserved: s.Reserved, OrderID: cmd.OrderID, OrderVersion: cmd.OrderVersion,
		At: now.UTC(), Principal: cmd.Principal, RequestID: cmd.RequestID, IdempotencyKey: cmd.IdempotencyKey,
	}
	conflict := &HoldConflictError{SKU: cmd.SKU, OrderID: cmd.OrderID, Change: cmd.Change, Hold: h}
	switch cmd.Change {
	case StockSet:
		if cmd.OnHand < s.Reserved {
			return InventoryEvent{}, false, &StockReservedError{SKU: cmd.SKU, OnHand: cmd.OnHand, Reserved: s.Reserved}
		}
		ev.OrderVersion, ev.OnHand = 0, cmd.OnHand
	case StockReserve:
		switch {
		case h.Status == HoldHeld && h.Quantity == cmd.Quantity:
			return InventoryEvent{}, false, nil // a retry
		case h.Status == HoldHeld:
			return InventoryEvent{}, false, conflict
		case h.Exists():
			return InventoryEvent{}, false, nil // the hold has ended: a late reserve holds nothing
		case s.Available() < cmd.Quantity:
			return InventoryEvent{}, false, &OutOfStockError{SKU: cmd.SKU, Requested: cmd.Quantity, Available: max(s.Available(), 0)}
		}
		ev.Quantity, ev.Reserved = cmd.Quantity, s.Reserved+cmd.Quantity
	case StockRelease:
		switch h.Status {
		case HoldHeld:
			ev.Quantity, ev.Reserved = h.Quantity, s.Reserved-h.Quantity
		case 0:
			if cmd.OrderVersion != 0 {
				// A transition's action on an order that never held
				// stock here (created without a checkout): nothing to
				// release, and no reserve can come later (a checkout
				// reserves before it creates its order).
				return InventoryEvent{}, false, nil
			}
			ev.Quantity = 0 // the saga released before it held: a late reserve finds it
		default:
			return InventoryEvent{}, false, nil
		}
	case StockConsume:
		switch h.Status {
		case HoldHeld:
			ev.Quantity, ev.OnHand, ev.Reserved = h.Quantity, s.OnHand-h.Quantity, s.Reserved-h.Quantity
		case 0:
			return InventoryEvent{}, false, conflict
		default:
			return InventoryEvent{}, false, nil
		}
	case StockRestock:
		switch h.Status {
		case HoldConsumed:
			if s.OnHand+h.Quantity > OnHandMax {
				return InventoryEvent{}, false, &InventoryError{Field: FieldQuantity, Detail: fmt.Sprintf("restocking %d units would put %d on hand, at most %d allowed", h.Quantity, s.OnHand+h.Quantity, OnHandMax)}
			}
			ev.Quantity, ev.OnHand = h.Quantity, s.OnHand+h.Quantity
		case HoldReleased, HoldRestocked:
			return InventoryEvent{}, false, nil
		default: // nothing shipped yet: the restock must wait for the consume
			return InventoryEvent{}, false, conflict
		}
	}
	return ev, true, nil
}

// checkInventoryCommand checks what a command names, before any hold.
func checkInventoryCommand(s Stock, cmd InventoryCommand) error {
	if err := ValidateSKU(cmd.SKU); err != nil {
		return err
	}
	if s.Exists() && s.SKU != cmd.SKU {
		return fmt.Errorf("%w: command for sku %q sent to %q", ErrInvalidCommand, cmd.SKU, s.SKU)
	}
	if !cmd.Change.Valid() {
		return fmt.Errorf("%w: unknown stock change %d", ErrInvalidCommand, cmd.Change)
	}
	if cmd.ExpectedVersion != 0 && cmd.ExpectedVersion != s.Version {
		return &VersionMismatchError{Expected: cmd.ExpectedVersion, Current: s.Version}
	}
	if cmd.Change == StockSet {
		if cmd.OrderID != "" {
			return &InventoryError{Field: FieldOrderID, Detail: "a set names no order"}
		}
		if cmd.OnHand < 0 || cmd.OnHand > OnHandMax {
			return &InventoryError{Field: FieldOnHand, Detail: fmt.Sprintf("%d is outside 0..%d", cmd.OnHand, OnHandMax)}
		}
		return nil
	}
	if err := ValidateID(cmd.OrderID); err != nil {
		return &InventoryError{Field: FieldOrderID, Detail: err.Error()}
	}
	if cmd.Change == StockReserve && (cmd.Quantity < 1 || cmd.Quantity > QuantityMax) {
		return &InventoryError{Field: FieldQuantity, Detail: fmt.Sprintf("%d is outside 1..%d", cmd.Quantity, QuantityMax)}
	}
	return nil
}

// ApplyInventory is the one rule by which a recorded event changes a SKU and
// the hold of the order it names, at run time, at replay and in the state
// store alike. h is that order's hold before ev (the zero Hold for a set).
// The event is applied only if it is the SKU's next version, its hold step
// is one the ledger allows from h, and its OnHand and Reserved are what the
// change makes of s; otherwise s and h come back unchanged with an error
// matching ErrRecordDuplicate or ErrRecordFork, and the caller counts and
// skips the record.
func ApplyInventory(s Stock, h Hold, ev InventoryEvent) (Stock, Hold, error) {
	switch {
	case s.Exists() && ev.SKU != s.SKU:
		return s, h, fmt.Errorf("%w: event for sku %q applied to %q", ErrRecordFork, ev.SKU, s.SKU)
	case ev.Version <= s.Version:
		return s, h, fmt.Errorf("%w: sku %s version %d, the sku is at %d", ErrRecordDuplicate, ev.SKU, ev.Version, s.Version)
	case ev.Version != s.Version+1:
		return s, h, fmt.Errorf("%w: sku %s version %d after %d leaves a gap", ErrRecordFork, ev.SKU, ev.Version, s.Version)
	}
	onHand, reserved, ok := inventoryStep(s, h, ev)
	if !ok || onHand != ev.OnHand || reserved != ev.Reserved || reserved < 0 || reserved > onHand || onHand > OnHandMax {
		return s, h, fmt.Errorf("%w: sku %s version %d: %v of %d for order %q (hold %v %d) does not continue on_hand %d, reserved %d (the record says %d, %d)",
			ErrRecordFork, ev.SKU, ev.Version, ev.Change, ev.Quantity, ev.OrderID, h.Status, h.Quantity, s.OnHand, s.Reserved, ev.OnHand, ev.Reserved)
	}
	next := Stock{SKU: ev.SKU, OnHand: onHand, Reserved: reserved, Version: ev.Version}
	nh := h
	if ev.Change != StockSet {
		nh = HoldAfter(ev)
	}
	assertStock(s, next)
	return next, nh, nil
}

// inventoryStep computes on_hand and reserved after ev from s, if the ledger
// allows ev's step from h.
func inventoryStep(s Stock, h Hold, ev InventoryEvent) (onHand, reserved int64, ok bool) {
	q := ev.Quantity
	if q < 0 || q > QuantityMax || (ev.Change == StockSet) != (ev.OrderID == "") {
		return 0, 0, false
	}
	switch ev.Change {
	case StockSet:
		return ev.OnHand, s.Reserved, q == 0
	case StockReserve:
		return s.OnHand, s.Reserved + q, !h.Exists() && q > 0
	case StockRelease:
		held := h.Status == HoldHeld && h.Quantity == q
		return s.OnHand, s.Reserved - q, held || (!h.Exists() && q == 0)
	case StockConsume:
		return s.OnHand - q, s.Reserved - q, h.Status == HoldHeld && h.Quantity == q
	case StockRestock:
		return s.OnHand + q, s.Reserved, h.Status == HoldConsumed && h.Quantity == q
	}
	return 0, 0, false
}

// assertStock panics if ApplyInventory produced an impossible SKU: a bug in
// this package; the actor that called it restarts from the log.
func assertStock(before, after Stock) {
	if after.Version != before.Version+1 || after.Reserved < 0 || after.Reserved > after.OnHand || after.SKU == "" {
		panic(fmt.Sprintf("order: inventory apply broke an invariant: %+v -> %+v", before, after))
	}
}

// InventoryKeyPrefix starts the record key of every inventory event in the
// audit topic: "inventory:" + SKU. ':' is not an order-ID character, so no
// order's key can be one.
const InventoryKeyPrefix = "inventory:"

// InventoryKey is the record key (and the partitioning key) of a SKU.
func InventoryKey(sku string) string { return InventoryKeyPrefix + sku }
