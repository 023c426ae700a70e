package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
)

// Inventory records share the audit topic (key "inventory:<sku>", ce_type
// orderd.inventory.changed). tail prints each SKU's changes in version
// order and skips what orderd's rule would skip of them (a version at or
// below the last printed, a gap), as it does for orders; it does not check
// the holds of the ledger, which only orderd's state store keeps.

// inventoryLine is one inventory change in --json output.
type inventoryLine struct {
	EventID        string `json:"event_id"`
	SKU            string `json:"sku"`
	Version        uint64 `json:"version"`
	Change         string `json:"change"`
	Quantity       int64  `json:"quantity"`
	OnHand         int64  `json:"on_hand"`
	Reserved       int64  `json:"reserved"`
	OrderID        string `json:"order_id"`
	OrderVersion   uint64 `json:"order_version"`
	At             string `json:"at"`
	Principal      string `json:"principal"`
	RequestID      string `json:"request_id"`
	IdempotencyKey string `json:"idempotency_key"`
	Partition      int    `json:"partition"`
	Offset         int64  `json:"offset"`
}

func (t *tailer) handleInventory(r tailRecord) error {
	ev, ok := decodeTyped(t, r, ceTypeInventory, persistence.DecodeInventory, func(ev order.InventoryEvent) string { return ev.EventID })
	if !ok {
		return nil
	}
	if t.skus == nil {
		t.skus = map[string]uint64{}
	}
	if why := inSequence(t.skus, ev.SKU, ev.Version); why != "" {
		t.note("skipping sku %s v%d (event %s) at partition %d offset %d: %s", ev.SKU, ev.Version, ev.EventID, r.partition, r.offset, why)
		return nil
	}
	t.printed++
	t.bar.beforeOutput()
	return t.printInventory(r, ev)
}

// printInventory writes one change: a JSON line, or
// `2026-12-06T10:30:00Z  inventory:mug  v2  reserve 3 for o-1  on_hand 10  reserved 3`.
func (t *tailer) printInventory(r tailRecord, ev order.InventoryEvent) error {
	at := ev.At.UTC()
	if t.a.g.json {
		b, err := json.Marshal(inventoryLine{EventID: ev.EventID, SKU: ev.SKU, Version: ev.Version, Change: ev.Change.String(),
			Quantity: ev.Quantity, OnHand: ev.OnHand, Reserved: ev.Reserved, OrderID: ev.OrderID, OrderVersion: ev.OrderVersion,
			At: at.Format(time.RFC3339Nano), Principal: ev.Principal, RequestID: ev.RequestID, IdempotencyKey: ev.IdempotencyKey,
			Partition: r.partition, Offset: r.offset})
		if err != nil {
			return err
		}
		_, err = t.out.Write(append(b, '\n'))
		return err
	}
	what := fmt.Sprintf("set on_hand %d", ev.OnHand)
	if ev.Change != order.StockSet {
		what = fmt.Sprintf("%v %d for %s", ev.Change, ev.Quantity, printable(ev.OrderID))
		if ev.OrderVersion != 0 {
			what += fmt.Sprintf(" (v%d)", ev.OrderVersion)
		}
	}
	_, err := fmt.Fprintf(t.out, "%s  %s  v%d  %s  on_hand %d  reserved %d\n", at.Format(time.RFC3339),
		printable(order.InventoryKey(ev.SKU)), ev.Version, what, ev.OnHand, ev.Reserved)
	return err
}

// inSequence is the version rule tail keeps for the records it does not
// fold (inventory, checkouts): each name's versions one after the other.
// It returns why a record is skipped, or "" and notes its version. A tail
// that starts mid-log (a group, or new records only) takes the first
// version it sees of a name as where that name is.
func inSequence(last map[string]uint64, name string, version uint64) string {
	prev, seen := last[name]
	switch {
	case seen && version <= prev:
		return "at or below the version already printed (a duplicate or a fork orderd skipped)"
	case seen && version != prev+1:
		return "skips versions (follows a fork orderd skipped)"
	}
	last[name] = version
	return ""
}

// decodeTyped decodes r, a record of the kind ceType names, and checks its
// CloudEvents headers against what it holds; false, with a note, for a
// record tail must skip.
func decodeTyped[T any](t *tailer, r tailRecord, ceType string, decode func(key, value []byte) (T, error), eventID func(T) string) (T, bool) {
	var zero T
	if r.hasCEType && r.ceType != ceType {
		t.note("skipping the record at partition %d offset %d: ce_type %q is not %s", r.partition, r.offset, r.ceType, ceType)
		return zero, false
	}
	ev, err := decode(r.key, r.value)
	if err != nil {
		t.note("skipping the record at partition %d offset %d: %v", r.partition, r.offset, err)
		return zero, false
	}
	if id := eventID(ev); r.hasCEID && r.ceID != id {
		t.note("skipping the record at partition %d offset %d: ce_id %q is not the event_id %q", r.partition, r.offset, r.ceID, id)
		return zero, false
	}
	return ev, true
}
