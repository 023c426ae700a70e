package main

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// The checkout and inventory API as the harness drives it (issue 16): black
// box over HTTP, nothing imported from the server.
const (
	checkoutsPath = "/v1/checkouts"
	inventoryPath = "/v1/inventory/"

	checkoutCompleted   = "completed"
	checkoutCompensated = "compensated"

	// problemOutOfStock is the type of the 409 a checkout short of stock gets.
	problemOutOfStock = "urn:orderd:problem:out-of-stock"

	tokenApproved = "tok_visa"
	tokenDeclined = "tok_decline"
)

// stockAnswer is the answer to a PUT or GET of a SKU's stock.
type stockAnswer struct {
	status    int
	err       error
	SKU       string `json:"sku"`
	OnHand    int64  `json:"on_hand"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
	Version   uint64 `json:"version"`
	decoded   bool
}

// putStock sets sku's units on hand.
func (c *apiClient) putStock(sku string, onHand int64) stockAnswer {
	body := `{"on_hand":` + strconv.FormatInt(onHand, 10) + `}`
	return c.stockRequest(fasthttp.MethodPut, sku, body)
}

// getStock reads sku's stock.
func (c *apiClient) getStock(sku string) stockAnswer {
	return c.stockRequest(fasthttp.MethodGet, sku, "")
}

func (c *apiClient) stockRequest(method, sku, body string) stockAnswer {
	status, _, raw, err := c.send(method, inventoryPath+url.PathEscape(sku), nil, body)
	a := stockAnswer{status: status, err: err}
	if err == nil && status == fasthttp.StatusOK {
		a.decoded = json.Unmarshal(raw, &a) == nil && a.SKU == sku
	}
	return a
}

// checkoutAnswer is what the harness keeps of one answer about a checkout:
// to a POST /v1/checkouts, or to a GET of one.
type checkoutAnswer struct {
	status     int   // 0: no HTTP answer
	err        error // the transport error, when status is 0
	retryAfter time.Duration
	location   string
	body       checkoutBody
	decoded    bool // the body was JSON
}

// checkoutBody is the union of the members the harness reads from a
// checkout and from the 409 out-of-stock problem.
type checkoutBody struct {
	ID         string         `json:"id"`
	Status     checkoutStatus `json:"status"`
	OrderID    string         `json:"order_id"`
	Type       string         `json:"type"`
	CheckoutID string         `json:"checkout_id"`
	OutOfStock []string       `json:"out_of_stock"`
}

// checkoutStatus is a checkout's status member, a string. A problem
// document's status is its HTTP status, a number: that decodes to "".
type checkoutStatus string

func (s *checkoutStatus) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	str, _ := v.(string)
	*s = checkoutStatus(str)
	return nil
}

// postCheckout starts a checkout; key is its Idempotency-Key, the same on
// every retry.
func (c *apiClient) postCheckout(key string, body []byte) checkoutAnswer {
	return c.checkoutRequest(fasthttp.MethodPost, checkoutsPath, key, string(body))
}

// getCheckout reads the checkout at path (its Location).
func (c *apiClient) getCheckout(path string) checkoutAnswer {
	return c.checkoutRequest(fasthttp.MethodGet, path, "", "")
}

func (c *apiClient) checkoutRequest(method, path, key, body string) checkoutAnswer {
	var header map[string]string
	if key != "" {
		header = map[string]string{"Idempotency-Key": key}
	}
	status, h, raw, err := c.send(method, path, header, body)
	a := checkoutAnswer{status: status, err: err}
	if err != nil {
		return a
	}
	a.retryAfter = parseRetryAfter(h.Peek(fasthttp.HeaderRetryAfter))
	a.location = string(h.Peek(fasthttp.HeaderLocation))
	a.decoded = json.Unmarshal(raw, &a.body) == nil
	return a
}

// send is one request to path with the given headers and body (none when
// empty); it returns the status, a copy of the headers that matter and the body.
func (c *apiClient) send(method, path string, header map[string]string, body string) (int, *fasthttp.ResponseHeader, []byte, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(c.base + path)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if body != "" {
		req.Header.SetContentTypeBytes(contentJSON)
		req.SetBodyString(body)
	}
	if err := c.hc.DoTimeout(req, resp, c.timeout); err != nil {
		return 0, nil, nil, err
	}
	// The response goes back to fasthttp's pool: keep copies.
	h := &fasthttp.ResponseHeader{}
	resp.Header.CopyTo(h)
	return resp.StatusCode(), h, append([]byte(nil), resp.Body()...), nil
}

// parseRetryAfter reads Retry-After in seconds (orderd never sends the
// HTTP-date form); 0 when absent or unreadable.
func parseRetryAfter(v []byte) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(string(v)))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// checkoutRequestBody is the JSON of a checkout of items by customer.
func checkoutRequestBody(customer string, items []checkoutItem, token string) []byte {
	type item struct {
		SKU       string `json:"sku"`
		Quantity  int64  `json:"quantity"`
		UnitPrice int64  `json:"unit_price"`
	}
	body := struct {
		CustomerID string            `json:"customer_id"`
		Currency   string            `json:"currency"`
		Items      []item            `json:"items"`
		Payment    map[string]string `json:"payment"`
	}{CustomerID: customer, Currency: "EUR", Payment: map[string]string{"token": token}}
	for _, it := range items {
		body.Items = append(body.Items, item{SKU: it.sku, Quantity: it.quantity, UnitPrice: it.unitPrice})
	}
	b, _ := json.Marshal(body) // cannot fail: strings and integers
	return b
}
