package actors

import (
	"context"
)

// Who the log names as the author of the inventory changes the saga and
// the transition actions make, as PrincipalTimer names the payment timer.
// The record also names the order (the checkout's, or the one whose
// transition asked for the change) and its version, which say why.
const (
	PrincipalCheckout = "system:checkout"
	PrincipalActions  = "system:actions"
)

// CheckoutStock is the saga's view of an InventoryService: a reservation
// and its release, per SKU, named by the checkout's order.
func CheckoutStock(inv InventoryService) StockReservations { return checkoutStock{inv} }

type checkoutStock struct{ inv InventoryService }

func (s checkoutStock) Reserve(ctx context.Context, sku, orderID string, quantity int64) error {
	_, err := s.inv.Reserve(ctx, HoldRef{SKU: sku, OrderID: orderID, Principal: PrincipalCheckout}, quantity)
	return err
}

// Release has OrderVersion 0: the saga's own compensation, which records a
// release even of nothing held, so that a reserve of this order arriving
// late (its outcome was unknown) holds nothing.
func (s checkoutStock) Release(ctx context.Context, sku, orderID string) error {
	_, err := s.inv.Release(ctx, HoldRef{SKU: sku, OrderID: orderID, Principal: PrincipalCheckout})
	return err
}

// ActionStock is the transition actions' view of an InventoryService. Each
// change names the order's version that asked for it, so a release of an
// order that never held stock records nothing (order.DecideInventory).
func ActionStock(inv InventoryService) StockActions { return actionStock{inv} }

type actionStock struct{ inv InventoryService }

func actionRef(sku, orderID string, version uint64) HoldRef {
	return HoldRef{SKU: sku, OrderID: orderID, OrderVersion: version, Principal: PrincipalActions}
}

func (s actionStock) Release(ctx context.Context, sku, orderID string, version uint64) error {
	_, err := s.inv.Release(ctx, actionRef(sku, orderID, version))
	return err
}

func (s actionStock) Consume(ctx context.Context, sku, orderID string, version uint64) error {
	_, err := s.inv.Consume(ctx, actionRef(sku, orderID, version))
	return err
}

func (s actionStock) Restock(ctx context.Context, sku, orderID string, version uint64) error {
	_, err := s.inv.Restock(ctx, actionRef(sku, orderID, version))
	return err
}
