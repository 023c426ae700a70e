package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/orderd/orderd/order"
)

// inventoryPath is the collection of SKUs (README, HTTP API).
const inventoryPath = "/v1/inventory"

// stockView is a SKU's stock as the API returns it.
type stockView struct {
	SKU       string `json:"sku"`
	OnHand    int64  `json:"on_hand"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
	Version   uint64 `json:"version"`
}

const inventorySynopsis = "inventory get SKU | inventory set SKU N [--if-match VERSION] [--idempotency-key K]"

// cmdInventory is `inventory get SKU` and `inventory set SKU N`.
func cmdInventory(ctx context.Context, a *app, args []string) int {
	if len(args) == 0 {
		return a.usageError("inventory: want get or set (%s)", inventorySynopsis)
	}
	switch args[0] {
	case "get":
		return cmdInventoryGet(ctx, a, args[1:])
	case "set":
		return cmdInventorySet(ctx, a, args[1:])
	}
	return a.usageError("inventory: unknown subcommand %q (%s)", args[0], inventorySynopsis)
}

func cmdInventoryGet(ctx context.Context, a *app, args []string) int {
	const synopsis = "inventory get SKU"
	fs := a.flagSet("inventory get")
	pos, code, done := a.parseCommand(fs, synopsis, args, 1)
	if done {
		return code
	}
	if err := order.ValidateSKU(pos[0]); err != nil {
		return a.commandUsageError(fs, synopsis, "SKU: %v", err)
	}
	return a.stockCall(ctx, request{method: http.MethodGet, path: skuPath(pos[0])})
}

func cmdInventorySet(ctx context.Context, a *app, args []string) int {
	const synopsis = "inventory set SKU N [--if-match VERSION] [--idempotency-key K]"
	fs := a.flagSet("inventory set")
	ifMatch := fs.String("if-match", "", "set only if the SKU is at this version (a number, or * for any)")
	key := fs.String("idempotency-key", "", "Idempotency-Key, recorded in the audit log (default: a random key)")
	pos, code, done := a.parseCommand(fs, synopsis, args, 2)
	if done {
		return code
	}
	if err := order.ValidateSKU(pos[0]); err != nil {
		return a.commandUsageError(fs, synopsis, "SKU: %v", err)
	}
	n, err := strconv.ParseInt(pos[1], 10, 64)
	if err != nil || n < 0 || n > order.OnHandMax {
		return a.commandUsageError(fs, synopsis, "N %q: want the units on hand, 0 to %d", pos[1], order.OnHandMax)
	}
	k, err := idempotencyKey(*key)
	if err != nil {
		return a.commandUsageError(fs, synopsis, "%v", err)
	}
	header := map[string]string{"Idempotency-Key": k}
	if *ifMatch != "" {
		etag, err := parseIfMatch(*ifMatch)
		if err != nil {
			return a.commandUsageError(fs, synopsis, "%v", err)
		}
		header["If-Match"] = etag
	}
	body := struct {
		OnHand int64 `json:"on_hand"`
	}{n}
	return a.stockCall(ctx, request{method: http.MethodPut, path: skuPath(pos[0]), body: body,
		header: header, write: true, idempotencyKey: k})
}

// stockCall sends a request answered with a SKU's stock and prints it:
// `mug  on_hand 10  reserved 3  available 7  v4`.
func (a *app) stockCall(ctx context.Context, req request) int {
	resp, code := a.do(ctx, req)
	if code != exitOK {
		return code
	}
	if resp.status != http.StatusOK {
		if resp.status >= 200 && resp.status < 300 {
			return a.unexpected(resp, fmt.Errorf("status %d, want %d", resp.status, http.StatusOK))
		}
		return a.failed(req, resp)
	}
	if a.g.json {
		writeLine(a.stdout, resp.body)
		return exitOK
	}
	var s stockView
	if err := json.Unmarshal(resp.body, &s); err != nil {
		return a.unexpected(resp, err)
	}
	fmt.Fprintf(a.stdout, "%s  on_hand %d  reserved %d  available %d  v%d\n", s.SKU, s.OnHand, s.Reserved, s.Available, s.Version)
	return exitOK
}

// skuPath is the path of one SKU; SKUs are validated, but escape anyway.
func skuPath(sku string) string { return inventoryPath + "/" + url.PathEscape(sku) }
