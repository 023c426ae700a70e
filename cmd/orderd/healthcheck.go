package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheckTimeoutDefault bounds one probe. It is shorter than the
// image's HEALTHCHECK --timeout (Dockerfile), so that a hung server is
// reported by this command, with a reason in `docker inspect`, rather than
// by Docker killing it.
const healthcheckTimeoutDefault = 3 * time.Second

// healthcheckTimeoutMax keeps a typo (--timeout 5h) from holding a
// container's health probe for hours.
const healthcheckTimeoutMax = time.Minute

// healthcheckBodyMax is how much of a failing answer is quoted on stderr:
// enough for a problem document's title, not a flood in Docker's health log.
const healthcheckBodyMax = 256

// runHealthcheck is `orderd healthcheck`: exit 0 only when /readyz answers
// 200, 1 when it answers anything else or nothing in time, 2 on a usage
// error. It exists because the container image has no shell and no curl:
// its HEALTHCHECK runs this, with the image's ORDERD_ADDR in its
// environment, so the probe follows the listen address by itself.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("orderd healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := getenv("ORDERD_ADDR")
	if addr == "" {
		addr = addrDefault
	}
	url := fs.String("url", "", "orderd's base URL; default: http:// and the address in ORDERD_ADDR, with 127.0.0.1 for an unspecified host")
	timeout := fs.Duration("timeout", healthcheckTimeoutDefault, "deadline of the probe")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "orderd healthcheck: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *timeout <= 0 || *timeout > healthcheckTimeoutMax {
		fmt.Fprintf(stderr, "orderd healthcheck: --timeout %v: want more than 0 and at most %v\n", *timeout, healthcheckTimeoutMax)
		return 2
	}
	if *url == "" {
		u, err := localURL(addr)
		if err != nil {
			fmt.Fprintf(stderr, "orderd healthcheck: ORDERD_ADDR %q: %v\n", addr, err)
			return 2
		}
		*url = u
	}
	if err := probeReady(ctx, *url+"/readyz", *timeout); err != nil {
		fmt.Fprintf(stderr, "orderd healthcheck: %v\n", err)
		return 1
	}
	return 0
}

// localURL is the URL at which this machine reaches a server listening on
// addr: an unspecified host (every interface) is reached on loopback.
func localURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// probeReady asks url once and wants 200. It follows no redirect and uses
// no proxy from the environment: the answer must be orderd's own.
func probeReady(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, healthcheckBodyMax))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return nil
}
