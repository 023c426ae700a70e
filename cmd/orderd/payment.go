package main

import (
	"log/slog"
	"net"
	"net/url"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/http/paymentgw"
)

// newPaymentGateway builds the checkout saga's payment gateway: the HTTP
// bridge at --payment-gateway-url, or else the simulated one. close
// releases what it holds (idle connections).
func newPaymentGateway(cfg Config, log *slog.Logger) (gw actors.PaymentGateway, close func(), err error) {
	if cfg.PaymentGatewayURL == "" {
		if !cfg.Embedded() {
			log.Warn("payment gateway: simulated, which approves every token but tok_decline and tok_timeout; give --payment-gateway-url to take real payments")
		} else {
			log.Info("payment gateway: simulated", "declines", actors.SimTokenDecline, "never_answers", actors.SimTokenTimeout)
		}
		return actors.NewSimulatedGateway(cfg.PaymentGatewayTimeout), func() {}, nil
	}
	c, err := paymentgw.New(paymentgw.Config{
		URL:     cfg.PaymentGatewayURL,
		Timeout: cfg.PaymentGatewayTimeout,
		Token:   cfg.PaymentGatewayToken.Reveal(),
	})
	if err != nil {
		return nil, nil, err
	}
	log.Info("payment gateway: HTTP bridge", "url", cfg.PaymentGatewayURL, "timeout", cfg.PaymentGatewayTimeout,
		"token", cfg.PaymentGatewayToken != "")
	if cfg.PaymentGatewayToken != "" && cleartextBeyondLoopback(cfg.PaymentGatewayURL) {
		log.Warn("payment gateway: the bearer token is sent over plain http to another machine; use https", "url", cfg.PaymentGatewayURL)
	}
	return c, c.Close, nil
}

// cleartextBeyondLoopback reports whether u is http:// to a host that may
// be another machine.
func cleartextBeyondLoopback(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "http" {
		return false
	}
	return !loopbackOnly(net.JoinHostPort(p.Hostname(), "0"))
}
