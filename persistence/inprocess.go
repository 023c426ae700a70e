package persistence

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// inProcessListener is the embedded broker's listener: its TCP socket, for
// every other client (orderctl, consumers of the audit topic), and in-process
// connections (net.Pipe) for this process's own journal.
//
// Why: over loopback TCP, each hop of a produce request (our connection
// to the broker's reader, the broker's writer back to our connection) waits
// for the Go scheduler to poll the network, which a server busy on both
// processors does only when it runs out of other work or every ~10 ms, and
// then waits again in the global run queue behind the HTTP goroutines. Traced
// under an open-loop 10,000 requests/s, those waits made most of the produce
// requests that took over 10 ms (one took 36.6 ms with a 0.5 ms fsync in it).
// A pipe hands the bytes to the waiting goroutine directly, and the scheduler
// runs it next. The bytes are the same Kafka protocol either way, written and
// read by the same kafka-go code; only the transport differs.
type inProcessListener struct {
	tcp      net.Listener
	accepted chan acceptResult // from acceptTCP
	pipes    chan net.Conn     // the broker's ends of in-process connections
	closed   chan struct{}
	once     sync.Once
	dialed   atomic.Int64 // in-process connections made, for tests
}

type acceptResult struct {
	conn net.Conn
	err  error
}

func newInProcessListener(tcp net.Listener) *inProcessListener {
	l := &inProcessListener{
		tcp:      tcp,
		accepted: make(chan acceptResult),
		pipes:    make(chan net.Conn),
		closed:   make(chan struct{}),
	}
	go l.acceptTCP()
	return l
}

// acceptTCP hands the TCP listener's connections to Accept. It ends once the
// TCP listener fails, which Close makes it do.
func (l *inProcessListener) acceptTCP() {
	for {
		conn, err := l.tcp.Accept()
		select {
		case l.accepted <- acceptResult{conn, err}:
		case <-l.closed:
			if conn != nil {
				conn.Close()
			}
			return
		}
		if err != nil {
			return
		}
	}
}

// Accept returns the next connection, in-process or TCP.
func (l *inProcessListener) Accept() (net.Conn, error) {
	select {
	case conn := <-l.pipes:
		return conn, nil
	case r := <-l.accepted:
		return r.conn, r.err
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops both kinds of connection; it is safe to call more than once.
func (l *inProcessListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.closed)
		err = l.tcp.Close()
	})
	return err
}

// Addr is the TCP address, the one the broker advertises in its metadata.
func (l *inProcessListener) Addr() net.Addr { return l.tcp.Addr() }

// dial makes an in-process connection to the broker.
func (l *inProcessListener) dial(ctx context.Context) (net.Conn, error) {
	broker, client := net.Pipe()
	select {
	case l.pipes <- broker:
		l.dialed.Add(1)
		return client, nil
	case <-l.closed:
		broker.Close()
		client.Close()
		return nil, fmt.Errorf("persistence: dialing the embedded broker in-process: %w", net.ErrClosed)
	case <-ctx.Done():
		broker.Close()
		client.Close()
		return nil, ctx.Err()
	}
}
