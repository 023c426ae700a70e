package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderd/orderd/order"
)

// Inventory in the store (order/inventory.go): per SKU its stock, and per
// SKU and order the hold, the ledger entry that makes every reserve,
// release, consume and restock take effect once.
//
//	i <len><sku>              → stock: version, on hand, reserved (uvarints)
//	r <len><sku> <len><order> → hold: status byte, quantity, order version, sku version (uvarints)
//
// They are written by the feeder in the batch of the records that change
// them, with the partition's checkpoint, like everything else here. The
// store keeps no inventory event itself: the log is the history, and the
// actors need only the stock and the holds. The ledger grows by one entry
// per order and SKU ever reserved; it lives here, on disk, and the SKU
// actors read entries one at a time (Hold), so memory does not grow with it.
// formatVersion went to 2 with these keys: a store of format 1 may have been
// fed past inventory records by an orderd that did not know them.
const (
	prefixStock = 'i'
	prefixHold  = 'r'
)

func stockKey(sku string) []byte { return appendPart([]byte{prefixStock}, sku) }

func holdKey(sku, orderID string) []byte {
	return appendPart(appendPart([]byte{prefixHold}, sku), orderID)
}

func encodeStock(s order.Stock) []byte {
	b := binary.AppendUvarint(nil, s.Version)
	b = binary.AppendUvarint(b, uint64(s.OnHand))
	return binary.AppendUvarint(b, uint64(s.Reserved))
}

// decodeStock reads what encodeStock wrote, and refuses a stock the apply
// rule cannot have made.
func decodeStock(sku string, v []byte) (order.Stock, error) {
	var n [3]uint64
	rest := v
	for i := range n {
		x, w := binary.Uvarint(rest)
		if w <= 0 {
			return order.Stock{}, fmt.Errorf("%w: bad stock", errFormat)
		}
		n[i], rest = x, rest[w:]
	}
	if len(rest) != 0 || n[0] == 0 || n[1] > order.OnHandMax || n[2] > n[1] {
		return order.Stock{}, fmt.Errorf("%w: bad stock %v", errFormat, n)
	}
	return order.Stock{SKU: sku, Version: n[0], OnHand: int64(n[1]), Reserved: int64(n[2])}, nil
}

func encodeHold(h order.Hold) []byte {
	b := binary.AppendUvarint([]byte{byte(h.Status)}, uint64(h.Quantity))
	b = binary.AppendUvarint(b, h.OrderVersion)
	return binary.AppendUvarint(b, h.Version)
}

func decodeHold(v []byte) (order.Hold, error) {
	if len(v) < 1 || !order.HoldStatus(v[0]).Valid() {
		return order.Hold{}, fmt.Errorf("%w: bad hold status", errFormat)
	}
	var n [3]uint64
	rest := v[1:]
	for i := range n {
		x, w := binary.Uvarint(rest)
		if w <= 0 {
			return order.Hold{}, fmt.Errorf("%w: bad hold", errFormat)
		}
		n[i], rest = x, rest[w:]
	}
	if len(rest) != 0 || n[0] > order.QuantityMax || n[2] == 0 {
		return order.Hold{}, fmt.Errorf("%w: bad hold %v", errFormat, n)
	}
	return order.Hold{Status: order.HoldStatus(v[0]), Quantity: int64(n[0]), OrderVersion: n[1], Version: n[2]}, nil
}

// decodeHoldKey returns the SKU and order a hold key names.
func decodeHoldKey(k []byte) (sku, orderID string, err error) {
	if len(k) == 0 || k[0] != prefixHold {
		return "", "", fmt.Errorf("%w: not a hold key", errFormat)
	}
	sku, rest, err := readPart(k[1:])
	if err != nil {
		return "", "", err
	}
	orderID, rest, err = readPart(rest)
	if err != nil || len(rest) != 0 || sku == "" || orderID == "" {
		return "", "", fmt.Errorf("%w: bad hold key", errFormat)
	}
	return sku, orderID, nil
}

// ApplyInventory applies ev, decoded from an inventory record, by the one
// rule (order.ApplyInventory) against the SKU and the order's hold as the
// store and this batch hold them. A record the rule skips changes nothing
// and its error (order.ErrRecordDuplicate or order.ErrRecordFork) is
// returned.
func (b *Batch) ApplyInventory(ev order.InventoryEvent) error {
	prev, err := b.stock(ev.SKU)
	if err != nil {
		return err
	}
	var hold order.Hold
	if ev.Change != order.StockSet {
		if hold, err = b.hold(ev.SKU, ev.OrderID); err != nil {
			return err
		}
	}
	next, nextHold, err := order.ApplyInventory(prev, hold, ev)
	if err != nil {
		return err
	}
	b.stocks[ev.SKU] = next
	if err := b.b.Set(stockKey(ev.SKU), encodeStock(next), nil); err != nil {
		return err
	}
	if ev.Change == order.StockSet {
		return nil
	}
	b.holds[holdKeyOf(ev.SKU, ev.OrderID)] = nextHold
	if err := b.moveHeld(ev.SKU, ev.OrderID, hold, nextHold); err != nil {
		return err
	}
	return b.b.Set(holdKey(ev.SKU, ev.OrderID), encodeHold(nextHold), nil)
}

func holdKeyOf(sku, orderID string) [2]string { return [2]string{sku, orderID} }

func (b *Batch) stock(sku string) (order.Stock, error) {
	if s, ok := b.stocks[sku]; ok {
		return s, nil
	}
	return stockIn(b.s, b.s.db, sku)
}

func (b *Batch) hold(sku, orderID string) (order.Hold, error) {
	if h, ok := b.holds[holdKeyOf(sku, orderID)]; ok {
		return h, nil
	}
	return holdIn(b.s, b.s.db, sku, orderID)
}

// Stock implements order.InventoryStore.
func (s *Store) Stock(_ context.Context, sku string) (order.Stock, error) {
	return stockIn(s, s.db, sku)
}

// Hold implements order.InventoryStore.
func (s *Store) Hold(_ context.Context, sku, orderID string) (order.Hold, error) {
	return holdIn(s, s.db, sku, orderID)
}

var _ order.InventoryStore = (*Store)(nil)

func stockIn(s *Store, r pebble.Reader, sku string) (order.Stock, error) {
	v, err := getIn(s, r, stockKey(sku))
	if errors.Is(err, pebble.ErrNotFound) {
		return order.Stock{}, nil
	}
	if err != nil {
		return order.Stock{}, err
	}
	st, err := decodeStock(sku, v)
	if err != nil {
		return order.Stock{}, fmt.Errorf("%w: sku %s: %w", order.ErrStoreUnusable, sku, err)
	}
	return st, nil
}

func holdIn(s *Store, r pebble.Reader, sku, orderID string) (order.Hold, error) {
	v, err := getIn(s, r, holdKey(sku, orderID))
	if errors.Is(err, pebble.ErrNotFound) {
		return order.Hold{}, nil
	}
	if err != nil {
		return order.Hold{}, err
	}
	h, err := decodeHold(v)
	if err != nil {
		return order.Hold{}, fmt.Errorf("%w: hold of %s on %s: %w", order.ErrStoreUnusable, orderID, sku, err)
	}
	return h, nil
}

// getIn is get on a reader (the store or a snapshot of it).
func getIn(s *Store, r pebble.Reader, key []byte) ([]byte, error) {
	v, closer, err := r.Get(key)
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, err
		}
		return nil, s.readErr(err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// InventoryView is one consistent view of the store for loading a SKU: its
// stock, the holds, and partition p's checkpoint, all as of one moment, so
// that a reader of the log's tail from the checkpoint on misses nothing and
// sees nothing twice. Close it when done.
type InventoryView struct {
	s          *Store
	snap       *pebble.Snapshot
	Checkpoint int64
}

// InventoryView opens a view for reading a SKU of partition p.
func (s *Store) InventoryView(p int) (*InventoryView, error) {
	if p < 0 || p >= s.id.Partitions {
		return nil, fmt.Errorf("store: partition %d of %d", p, s.id.Partitions)
	}
	snap := s.db.NewSnapshot()
	v := &InventoryView{s: s, snap: snap}
	raw, err := getIn(s, snap, checkpointKey(p))
	switch {
	case err == nil:
		if v.Checkpoint, err = decodeCheckpoint(raw); err != nil {
			_ = snap.Close()
			return nil, fmt.Errorf("%w: partition %d: %w", order.ErrStoreUnusable, p, err)
		}
	case !errors.Is(err, pebble.ErrNotFound):
		_ = snap.Close()
		return nil, err
	}
	return v, nil
}

// Stock is the SKU as of the view.
func (v *InventoryView) Stock(sku string) (order.Stock, error) { return stockIn(v.s, v.snap, sku) }

// Hold is the order's hold on the SKU as of the view.
func (v *InventoryView) Hold(sku, orderID string) (order.Hold, error) {
	return holdIn(v.s, v.snap, sku, orderID)
}

// Close releases the view.
func (v *InventoryView) Close() error { return v.snap.Close() }
