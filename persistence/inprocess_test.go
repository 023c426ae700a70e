package persistence

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEmbeddedDialIsInProcessForItselfOnly(t *testing.T) {
	e := startTestBroker(t)

	own, err := e.Dial(testContext(t), "tcp", e.Addr())
	require.NoError(t, err)
	defer own.Close()
	assert.Equal(t, "pipe", own.RemoteAddr().Network(), "its own address is reached in-process")
	assert.EqualValues(t, 1, e.InProcessConns())

	other, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer other.Close()
	conn, err := e.Dial(testContext(t), "tcp", other.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	assert.Equal(t, "tcp", conn.RemoteAddr().Network(), "any other address over TCP")
	assert.EqualValues(t, 1, e.InProcessConns())
}

// The journal writes in-process while a client elsewhere reads the same
// records over TCP: the audit log stays a Kafka topic that others consume.
func TestEmbeddedServesTCPClientsBesideTheInProcessJournal(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	want := lifecycleEvent("seen-over-tcp", 1)
	require.NoError(t, j.Append(testContext(t), want))
	require.Positive(t, e.InProcessConns())

	client := rawClient(t, e) // its requests bounded by testContext
	resp, err := client.Fetch(testContext(t), &kafka.FetchRequest{Topic: DefaultTopic, Partition: 0, Offset: 0, MaxBytes: 1 << 20})
	require.NoError(t, err)
	require.NoError(t, resp.Error)
	rec, err := resp.Records.ReadRecord()
	require.NoError(t, err)
	key, err := io.ReadAll(rec.Key)
	require.NoError(t, err)
	value, err := io.ReadAll(rec.Value)
	require.NoError(t, err)
	got, err := DecodeEvent(key, value)
	require.NoError(t, err)
	assert.Equal(t, want.EventID, got.EventID)
}

func TestEmbeddedDialAfterCloseFails(t *testing.T) {
	e := startTestBroker(t)
	e.Close()
	_, err := e.Dial(testContext(t), "tcp", e.Addr())
	assert.ErrorIs(t, err, net.ErrClosed)
}

func TestInProcessListener(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := newInProcessListener(tcp)

	// Nobody accepts yet: a dial waits, and gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = l.dial(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	// Both kinds of connection come out of Accept, and carry bytes.
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- conn
		}
	}()
	pipe, err := l.dial(testContext(t))
	require.NoError(t, err)
	tcpConn, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	for _, client := range []net.Conn{pipe, tcpConn} {
		server := <-accepted
		go func() { _, _ = client.Write([]byte("ping")) }()
		buf := make([]byte, 4)
		_, err := server.Read(buf)
		require.NoError(t, err)
		assert.Equal(t, "ping", string(buf))
		server.Close()
		client.Close()
	}

	// Close ends Accept and the TCP accept loop, and refuses dials.
	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "a second Close is harmless")
	_, open := <-accepted
	assert.False(t, open, "Accept returned an error after Close")
	waitFor(t, "the TCP accept loop to end", func() bool { return countGoroutines("(*inProcessListener).acceptTCP") == 0 })
	_, err = l.dial(testContext(t))
	assert.True(t, errors.Is(err, net.ErrClosed), "dial after Close: %v", err)
}
