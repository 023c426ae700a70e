package persistence

import (
	"errors"
	"fmt"

	"github.com/orderd/orderd/order"
)

// checkoutMembers are the members of both forms of a checkout record
// (codec_checkout.go), as bit indexes.
var checkoutMembers = [...]string{
	"event_id", "checkout_id", "version", "at",
	"step", "outcome", "detail", "authorization_id", "out_of_stock",
	"order_id", "customer_id", "currency", "items", "total", "idempotency_key", "request_digest", "principal", "request_id",
}

// The members each form requires and may have.
const (
	checkoutCommon   uint32 = 1<<0 | 1<<1 | 1<<2 | 1<<3
	checkoutStep     uint32 = checkoutCommon | 1<<4 | 1<<5 | 1<<6
	checkoutStepMay  uint32 = checkoutStep | 1<<7 | 1<<8
	checkoutStart    uint32 = checkoutCommon | 1<<9 | 1<<10 | 1<<11 | 1<<12 | 1<<13 | 1<<14 | 1<<15 | 1<<16 | 1<<17
	checkoutStepName        = 4
)

// DecodeCheckout reads a record written by EncodeCheckout. It is strict:
// one JSON object with exactly the members of one form, each once, of the
// right type, the optional ones only when not empty; the key must be the
// checkout's; the event must pass ValidateCheckoutEvent. Every error
// matches ErrInvalidRecord. It never panics, whatever the input.
func DecodeCheckout(key, value []byte) (order.CheckoutEvent, error) {
	return decodeStrict(key, value, parseCheckout,
		func(ev order.CheckoutEvent) string { return order.CheckoutKey(ev.CheckoutID) }, ValidateCheckoutEvent)
}

func parseCheckout(b []byte) (order.CheckoutEvent, error) {
	p := parser{b: b}
	defer p.releaseScratch()
	var ev order.CheckoutEvent
	seen, err := p.object(checkoutMembers[:], func(i int) error { return p.checkoutMember(i, &ev) })
	if err != nil {
		return ev, err
	}
	return ev, checkCheckoutForm(seen)
}

// checkCheckoutForm: the members seen are those of one form, the step's
// if it names a step, else the start's.
func checkCheckoutForm(seen uint32) error {
	need, may := checkoutStart, checkoutStart
	if seen&(1<<checkoutStepName) != 0 {
		need, may = checkoutStep, checkoutStepMay
	}
	for i, name := range checkoutMembers {
		bit := uint32(1) << i
		switch {
		case need&bit != 0 && seen&bit == 0:
			return fmt.Errorf("member %q is missing", name)
		case may&bit == 0 && seen&bit != 0:
			return fmt.Errorf("member %q is not one of this form's", name)
		}
	}
	return nil
}

// checkoutMember reads the value of member i into ev. Counts are bounded
// here, so that a hostile record cannot make the parser allocate much; the
// other bounds are ValidateCheckoutEvent's, after the parse.
func (p *parser) checkoutMember(i int, ev *order.CheckoutEvent) error {
	name := checkoutMembers[i]
	var err error
	switch name {
	case "version":
		ev.Version, err = p.uint64(name)
	case "total":
		ev.Total, err = p.int64(name)
	case "items":
		ev.Items, err = p.items()
	case "out_of_stock":
		ev.OutOfStock, err = p.skuList(name)
	case "authorization_id":
		ev.AuthorizationID, err = p.textCopy(name)
		if err == nil && ev.AuthorizationID == "" {
			err = errors.New("member authorization_id is empty: it is left out when there is none")
		}
	default:
		var text []byte
		if text, err = p.string(); err != nil {
			return fmt.Errorf("member %s: %w", name, err)
		}
		err = setCheckoutText(ev, name, text)
	}
	return err
}

// setCheckoutText sets a string member; step and outcome by their names.
func setCheckoutText(ev *order.CheckoutEvent, name string, text []byte) error {
	var ok bool
	switch name {
	case "at":
		at, err := parseTime(text)
		if err != nil {
			return fmt.Errorf("member at: %w", err)
		}
		ev.At = at
		return nil
	case "step":
		if ev.Step, ok = order.ParseCheckoutStep(string(text)); !ok {
			return fmt.Errorf("member step: unknown step %q", string(text))
		}
		return nil
	case "outcome":
		if ev.Outcome, ok = order.ParseStepOutcome(string(text)); !ok {
			return fmt.Errorf("member outcome: unknown outcome %q", string(text))
		}
		return nil
	}
	s := string(text)
	switch name {
	case "event_id":
		ev.EventID = s
	case "checkout_id":
		ev.CheckoutID = s
	case "detail":
		ev.Detail = s
	case "order_id":
		ev.OrderID = s
	case "customer_id":
		ev.CustomerID = s
	case "currency":
		ev.Currency = s
	case "idempotency_key":
		ev.IdempotencyKey = s
	case "request_digest":
		ev.RequestDigest = s
	case "principal":
		ev.Principal = s
	case "request_id":
		ev.RequestID = s
	}
	return nil
}

// skuList reads a non-empty array of at most order.ItemsMax strings.
func (p *parser) skuList(name string) ([]string, error) {
	if !p.consume('[') {
		return nil, fmt.Errorf("member %s: want an array at byte %d", name, p.i)
	}
	var list []string
	p.skipSpace()
	if p.consume(']') {
		return nil, fmt.Errorf("member %s is empty: it is left out when there is none", name)
	}
	for {
		if len(list) == order.ItemsMax {
			return nil, fmt.Errorf("member %s: more than %d SKUs", name, order.ItemsMax)
		}
		p.skipSpace()
		sku, err := p.textCopy(name)
		if err != nil {
			return nil, err
		}
		list = append(list, sku)
		p.skipSpace()
		if p.consume(',') {
			continue
		}
		if p.consume(']') {
			return list, nil
		}
		return nil, fmt.Errorf("member %s: want ',' or ']' at byte %d", name, p.i)
	}
}
