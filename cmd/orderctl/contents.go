package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/orderd/orderd/order"
)

// Flags for what a create orders and the metadata of a create or a
// transition (README, HTTP API): --item SKU:QTY:PRICE and --meta KEY=VALUE,
// each repeatable. They are checked with the server's own bounds before
// anything is sent.

// itemFlags collects --item SKU:QTY:PRICE, price in minor units.
type itemFlags []order.Item

func (f *itemFlags) String() string { return "" }

func (f *itemFlags) Set(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return fmt.Errorf("%q: want SKU:QUANTITY:UNIT_PRICE (the price in minor units, such as cents)", v)
	}
	qty, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return fmt.Errorf("%q: quantity %q is not an integer", v, parts[1])
	}
	price, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return fmt.Errorf("%q: unit price %q is not an integer (minor units, such as cents)", v, parts[2])
	}
	*f = append(*f, order.Item{SKU: parts[0], Quantity: qty, UnitPrice: price})
	return nil
}

// metaFlags collects --meta KEY=VALUE; a later key wins, as on the server.
type metaFlags map[string]string

func (f metaFlags) String() string { return "" }

func (f metaFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("%q: want KEY=VALUE", v)
	}
	f[k] = val
	return nil
}

// itemBody is an item as the API reads it.
type itemBody struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

// contentsBody adds what the flags name to a create's body, after checking
// it as the server would; nothing is added for flags not given.
func contentsBody(body map[string]any, customer, currency string, items itemFlags) error {
	var list []order.Item
	if len(items) > 0 {
		list = items
	}
	if err := order.CheckOrderContents(customer, currency, list); err != nil {
		return flagError(err)
	}
	if customer != "" {
		body[order.FieldCustomerID] = customer
	}
	if currency != "" {
		body[order.FieldCurrency] = currency
	}
	if len(list) > 0 {
		wire := make([]itemBody, len(list))
		for i, it := range list {
			wire[i] = itemBody(it)
		}
		body[order.FieldItems] = wire
	}
	return nil
}

// checkMeta checks --meta pairs as the server would.
func checkMeta(md metaFlags) error {
	return flagError(order.CheckMetadata(md))
}

// flagError names the flag rather than the JSON member the server would,
// for an order's contents and a checkout's request alike.
func flagError(err error) error {
	var field, detail string
	switch e := err.(type) {
	case *order.ContentsError:
		field, detail = e.Field, e.Detail
	case *order.CheckoutError:
		field, detail = e.Field, e.Detail
	default:
		return err
	}
	flag := map[string]string{order.FieldCustomerID: "--customer", order.FieldCurrency: "--currency",
		order.FieldItems: "--item", order.FieldPaymentToken: "--token"}[field]
	switch {
	case flag != "":
	case strings.HasPrefix(field, order.FieldItems):
		flag = "--item"
	default:
		flag = "--meta"
	}
	return fmt.Errorf("%s: %s: %s", flag, field, detail)
}
