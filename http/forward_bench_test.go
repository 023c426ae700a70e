package http

import (
	"bytes"
	"io"
	"net"
	nethttp "net/http"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// BenchmarkForwardClient compares the two clients forwardClient could use
// for one forwarded transition over loopback (a Fiber peer answering canned
// JSON), serially and from many goroutines.
func BenchmarkForwardClient(b *testing.B) {
	url := benchPeer(b)
	body := []byte(`{"to":"Paid","reason":"card"}`)
	fast := &fasthttp.Client{MaxConnsPerHost: 64, MaxIdemponentCallAttempts: 1}
	slow := &nethttp.Client{Transport: &nethttp.Transport{MaxConnsPerHost: 64, MaxIdleConnsPerHost: 64}}
	// Before the peer shuts down (Cleanup is LIFO): fasthttp's Shutdown
	// waits for every open connection, and net/http may leave one it
	// dialled but never used, which only its client can close.
	b.Cleanup(fast.CloseIdleConnections)
	b.Cleanup(slow.CloseIdleConnections)
	fastDo := func(b *testing.B) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(url + "/v1/orders/o-1/transitions")
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.Header.Set("Authorization", "Bearer 0123456789abcdef-token")
		req.Header.Set("X-Request-ID", "01JBENCHREQUEST")
		req.SetBody(body)
		if err := fast.DoTimeout(req, resp, time.Minute); err != nil || resp.StatusCode() != 200 {
			b.Fatal(err, resp.StatusCode())
		}
		_ = resp.Header.Peek("ETag")
	}
	slowDo := func(b *testing.B) {
		req, _ := nethttp.NewRequest("POST", url+"/v1/orders/o-1/transitions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer 0123456789abcdef-token")
		req.Header.Set("X-Request-ID", "01JBENCHREQUEST")
		resp, err := slow.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		_ = resp.Header.Get("ETag")
	}
	for name, do := range map[string]func(*testing.B){"fasthttp": fastDo, "nethttp": slowDo} {
		b.Run(name+"/serial", func(b *testing.B) {
			for b.Loop() {
				do(b)
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					do(b)
				}
			})
		})
	}
}

// benchPeer serves canned orders on 127.0.0.1:0 until the benchmark ends.
func benchPeer(b *testing.B) string {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Post("/v1/orders/:id/transitions", func(c *fiber.Ctx) error {
		c.Set("ETag", `"2"`)
		c.Set("Content-Type", "application/json")
		return c.SendString(`{"id":"o-1","state":"Paid","version":2,"created_at":"2026-11-05T10:00:00Z","updated_at":"2026-11-05T10:00:01Z"}`)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	b.Cleanup(func() { _ = app.ShutdownWithTimeout(roomyTimeout) })
	return "http://" + ln.Addr().String()
}
