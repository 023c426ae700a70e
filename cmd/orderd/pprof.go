package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofServer serves net/http/pprof on its own listener, apart from the API:
// profiles are for whoever runs the machine, not for API clients, so it
// listens on loopback only (Config.validate) and needs no API key.
type pprofServer struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// startPprof listens on addr and serves the profiles in the background.
func startPprof(addr string) (*pprofServer, error) {
	if !loopbackOnly(addr) {
		return nil, fmt.Errorf("--pprof-addr %q: only loopback addresses are accepted", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof: listening on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	p := &pprofServer{ln: ln, done: make(chan struct{}),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(ln) // ends with http.ErrServerClosed on Close
	}()
	return p, nil
}

// Addr is the address the profiles are served on.
func (p *pprofServer) Addr() string { return p.ln.Addr().String() }

// Close stops serving at once (a running CPU profile is cut short).
func (p *pprofServer) Close() error {
	err := p.srv.Close()
	<-p.done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
