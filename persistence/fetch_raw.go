package persistence

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The fetch side of reading the log: Fetch requests sent over a connection of
// our own to the partition's leader, encoded and decoded with franz-go's
// kmsg, which leaves each partition's record batches as the raw bytes of the
// response for readBatches. kafka-go stays the client for everything else
// (metadata, offsets, writes). The connection is secured as kafka-go's are:
// TLS in the dial function (Security.Dial), and then the SASL exchange,
// which this path speaks itself (authenticate).

// Limits of the fast path.
const (
	// rawFetchVersionMin is the first Fetch version whose responses carry
	// record batches (v2) and that takes an isolation level; Kafka 4
	// accepts nothing older either.
	rawFetchVersionMin = 4
	// rawFetchVersionMax is the last version that names topics; v13 wants
	// topic IDs, which would take another metadata lookup for nothing.
	rawFetchVersionMax = 12
	// rawFetchSlackBytes is how far a response may exceed the fetch size:
	// a broker returns a first batch larger than the fetch size whole, so
	// that a reader always moves on, and a batch is up to the topic's
	// max.message.bytes (1 MiB by default; orderd writes at most
	// DefaultBatchBytesMax). A larger response fails the fetch.
	rawFetchSlackBytes = 8 << 20
	// rawFirstBufferBytes is a fetcher's first receive buffer when its
	// first answer fits: enough for ApiVersions and a short tail's fetch.
	rawFirstBufferBytes = 64 << 10
	// rawResponseBytesMin is the smallest response a round trip accepts:
	// its correlation ID.
	rawResponseBytesMin = 4
	// rawSASLHandshakeVersion: v1 is the version after which the SASL
	// exchange travels in SaslAuthenticate requests (v0 sends it as bare
	// bytes, which this path does not speak).
	rawSASLHandshakeVersion = 1
	// rawSASLAuthenticateVersionMax is the newest SaslAuthenticate we
	// speak (v2 is flexible; kmsg encodes it).
	rawSASLAuthenticateVersionMax = 2
	// rawSASLStepsMax bounds the round trips of one SASL exchange:
	// SCRAM takes two, PLAIN one; a broker that keeps challenging is
	// broken.
	rawSASLStepsMax = 8
)

// errFetch matches every way a fetch can fail that is not a verdict on the
// log: the connection, the broker's answer, a leader that moved. The reader
// connects again and goes on (readPartition).
var errFetch = errors.New("fetch failed")

// rawFetcher fetches one partition on its own connection. It is used by one
// goroutine and must be closed.
type rawFetcher struct {
	conn          net.Conn
	formatter     *kmsg.RequestFormatter
	correlationID int32
	req           *kmsg.FetchRequest // reused: only the offset changes
	resp          kmsg.FetchResponse
	fetchBytes    int
	out, in       []byte // request and response buffers, reused
	inFlight      bool   // a fetch request was sent and its response not read
	inFlightAt    int64  // that request's offset
	// highWatermark is the partition's end offset as the last response
	// gave it: how far behind the log a reader is.
	highWatermark int64
}

// openRawFetcher connects to partition p's leader and agrees on a Fetch
// version. Every error matches errFetch.
func (src *logSource) openRawFetcher(ctx context.Context, p int) (*rawFetcher, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	leader, err := src.leaderOf(ctx, p)
	if err != nil {
		return nil, err
	}
	dial := src.security.Dial(src.dial) // TLS, as kafka-go's connections
	if dial == nil {
		dial = dialTCP
	}
	conn, err := dial(ctx, "tcp", leader)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFetch, err)
	}
	f := &rawFetcher{
		conn:       conn,
		formatter:  kmsg.NewRequestFormatter(kmsg.FormatterClientID(src.clientID)),
		fetchBytes: src.fetchBytes,
	}
	versions, err := f.apiVersions(ctx)
	if err == nil {
		if mech := src.security.SASL(); mech != nil {
			err = f.authenticate(ctx, mech, leader, versions)
		}
	}
	var version int16
	if err == nil {
		version, err = fetchVersion(versions)
	}
	if err != nil {
		f.close()
		return nil, err
	}
	f.req = newRawFetchRequest(version, src.topic, int32(p), src.fetchBytes)
	return f, nil
}

// leaderOf returns the host:port of partition p's leader, as kafka-go's
// metadata has it.
func (src *logSource) leaderOf(ctx context.Context, p int) (string, error) {
	md, err := src.meta.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{src.topic}})
	if err != nil {
		return "", fmt.Errorf("%w: metadata: %w", errFetch, err)
	}
	for _, t := range md.Topics {
		if t.Name != src.topic {
			continue
		}
		for _, tp := range t.Partitions {
			if tp.ID == p && tp.Error == nil && tp.Leader.Host != "" {
				return net.JoinHostPort(tp.Leader.Host, strconv.Itoa(tp.Leader.Port)), nil
			}
		}
	}
	return "", fmt.Errorf("%w: no leader known for partition %d", errFetch, p)
}

// apiVersions asks the broker which versions of each request it serves
// (ApiVersions v0, which every broker answers, also before SASL).
func (f *rawFetcher) apiVersions(ctx context.Context) (map[int16]kmsg.ApiVersionsResponseApiKey, error) {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if err := f.roundTrip(ctx, req, resp); err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("%w: api versions: %w", errFetch, err)
	}
	versions := make(map[int16]kmsg.ApiVersionsResponseApiKey, len(resp.ApiKeys))
	for _, k := range resp.ApiKeys {
		versions[k.ApiKey] = k
	}
	return versions, nil
}

// fetchVersion picks the newest Fetch version both sides speak.
func fetchVersion(versions map[int16]kmsg.ApiVersionsResponseApiKey) (int16, error) {
	k, ok := versions[kmsg.NewPtrFetchRequest().Key()]
	if !ok {
		return 0, errors.New("the broker does not list Fetch")
	}
	v := min(k.MaxVersion, rawFetchVersionMax)
	if v < rawFetchVersionMin || v < k.MinVersion {
		return 0, fmt.Errorf("the broker serves Fetch v%d to v%d, orderd speaks v%d to v%d",
			k.MinVersion, k.MaxVersion, rawFetchVersionMin, rawFetchVersionMax)
	}
	return v, nil
}

// authenticate runs the SASL exchange as kafka-go does (SaslHandshake v1,
// then SaslAuthenticate until the mechanism is satisfied), driving the same
// sasl.Mechanism. Refused credentials match ErrSASLAuthFailed, a mechanism
// the broker does not enable ErrSASLMechanism.
func (f *rawFetcher) authenticate(ctx context.Context, mech sasl.Mechanism, leader string, versions map[int16]kmsg.ApiVersionsResponseApiKey) error {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version = rawSASLHandshakeVersion
	hs.Mechanism = mech.Name()
	hsResp := hs.ResponseKind().(*kmsg.SASLHandshakeResponse)
	if err := f.roundTrip(ctx, hs, hsResp); err != nil {
		return err
	}
	if err := kerr.ErrorForCode(hsResp.ErrorCode); err != nil {
		return fmt.Errorf("%w (%s; the broker enables %s): %w", ErrSASLMechanism, mech.Name(),
			strings.Join(hsResp.SupportedMechanisms, ", "), err)
	}
	authKey := kmsg.NewPtrSASLAuthenticateRequest().Key()
	auth, ok := versions[authKey]
	if !ok {
		return errors.New("the broker does not list SaslAuthenticate")
	}
	version := min(auth.MaxVersion, rawSASLAuthenticateVersionMax)
	// Some mechanisms (not ours, but any kafka-go one may be given) want
	// to know the broker; kafka-go tells them so.
	host, portText, _ := net.SplitHostPort(leader)
	port, _ := strconv.Atoi(portText)
	ctx = sasl.WithMetadata(ctx, &sasl.Metadata{Host: host, Port: port})
	session, state, err := mech.Start(ctx)
	if err != nil {
		return fmt.Errorf("SASL %s: %w", mech.Name(), err)
	}
	for range rawSASLStepsMax {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version = version
		req.SASLAuthBytes = state
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		if err := f.roundTrip(ctx, req, resp); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
				// A broker may answer failed credentials by
				// hanging up (kfake does).
				return fmt.Errorf("%w: the broker hung up during the exchange", ErrSASLAuthFailed)
			}
			return err
		}
		if resp.ErrorCode == kerr.SaslAuthenticationFailed.Code {
			msg := kerr.SaslAuthenticationFailed.Message
			if resp.ErrorMessage != nil {
				msg = *resp.ErrorMessage
			}
			return fmt.Errorf("%w: %s", ErrSASLAuthFailed, msg)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("SASL %s: %w", mech.Name(), err)
		}
		var done bool
		done, state, err = session.Next(ctx, resp.SASLAuthBytes)
		if err != nil {
			return fmt.Errorf("SASL %s: %w", mech.Name(), err)
		}
		if done {
			return nil
		}
	}
	return fmt.Errorf("SASL %s: not done after %d round trips", mech.Name(), rawSASLStepsMax)
}

// newRawFetchRequest asks for one partition, as kafka-go's fetch did: no
// fetch session, no leader epoch check, uncommitted records too (orderd
// writes no transactions).
func newRawFetchRequest(version int16, topic string, p int32, fetchBytes int) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(fetchWaitMax / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = int32(fetchBytes)
	req.IsolationLevel = 0
	req.SessionID, req.SessionEpoch = 0, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = p
	rp.PartitionMaxBytes = int32(fetchBytes)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// fetch returns the record batches of the partition from offset on. They
// are valid until the next fetch. An error matches errFetch unless ctx
// ended.
func (f *rawFetcher) fetch(ctx context.Context, offset int64) ([]byte, error) {
	if f.inFlight && f.inFlightAt != offset {
		// Prefetched an offset the caller did not come to: drop it.
		f.inFlight = false
		if err := f.receive(ctx, f.req, &f.resp); err != nil {
			return nil, err
		}
	}
	if !f.inFlight {
		if err := f.prefetch(ctx, offset); err != nil {
			return nil, err
		}
	}
	f.inFlight = false
	if err := f.receive(ctx, f.req, &f.resp); err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(f.resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("%w: fetch: %w", errFetch, err)
	}
	want := f.req.Topics[0]
	for _, t := range f.resp.Topics {
		if t.Topic != want.Topic {
			continue
		}
		for _, rp := range t.Partitions {
			if rp.Partition != want.Partitions[0].Partition {
				continue
			}
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				// NOT_LEADER and friends: the reader looks the
				// leader up again.
				return nil, fmt.Errorf("%w: fetch: %w", errFetch, err)
			}
			f.highWatermark = rp.HighWatermark
			return rp.RecordBatches, nil
		}
	}
	return nil, fmt.Errorf("%w: fetch response without the partition", errFetch)
}

// prefetch sends the fetch request for offset without waiting for its
// response, so that the broker prepares the next response while the caller
// reads the current one (a broker answers a connection's requests in order).
// fetch(offset) then takes it.
func (f *rawFetcher) prefetch(ctx context.Context, offset int64) error {
	if f.inFlight {
		return nil
	}
	f.req.Topics[0].Partitions[0].FetchOffset = offset
	if err := f.send(ctx, f.req); err != nil {
		return err
	}
	f.inFlight, f.inFlightAt = true, offset
	return nil
}

// roundTrip sends req and reads its response into resp.
func (f *rawFetcher) roundTrip(ctx context.Context, req kmsg.Request, resp kmsg.Response) error {
	if err := f.send(ctx, req); err != nil {
		return err
	}
	return f.receive(ctx, req, resp)
}

func (f *rawFetcher) send(ctx context.Context, req kmsg.Request) error {
	f.correlationID++
	f.out = f.formatter.AppendRequest(f.out[:0], req, f.correlationID)
	return f.withDeadline(ctx, func() error {
		if _, err := f.conn.Write(f.out); err != nil {
			return fmt.Errorf("%w: sending %s: %w", errFetch, kmsg.NameForKey(req.Key()), err)
		}
		return nil
	})
}

// receive reads the response to the last request sent, which was req.
func (f *rawFetcher) receive(ctx context.Context, req kmsg.Request, resp kmsg.Response) error {
	return f.withDeadline(ctx, func() error {
		var size [4]byte
		if _, err := io.ReadFull(f.conn, size[:]); err != nil {
			return fmt.Errorf("%w: reading %s response: %w", errFetch, kmsg.NameForKey(req.Key()), err)
		}
		n := int64(int32(binary.BigEndian.Uint32(size[:])))
		if n < rawResponseBytesMin || n > int64(f.fetchBytes)+rawFetchSlackBytes {
			return fmt.Errorf("%w: %s response of %d bytes", errFetch, kmsg.NameForKey(req.Key()), n)
		}
		switch {
		case int64(cap(f.in)) >= n:
		case cap(f.in) == 0 && n <= rawFirstBufferBytes:
			// The first answer (ApiVersions) is small, and so is
			// the whole read of a short tail (a checkout's or a
			// cold order's): a full fetch's buffer would be 4 MiB
			// zeroed for a few KiB.
			f.in = make([]byte, rawFirstBufferBytes)
		default:
			// At least a full fetch, so that a long read
			// allocates it once.
			f.in = make([]byte, max(n, int64(f.fetchBytes)))
		}
		f.in = f.in[:n]
		if _, err := io.ReadFull(f.conn, f.in); err != nil {
			return fmt.Errorf("%w: reading %s response: %w", errFetch, kmsg.NameForKey(req.Key()), err)
		}
		body, err := f.responseBody(req, f.in)
		if err != nil {
			return err
		}
		resp.SetVersion(req.GetVersion())
		if err := resp.ReadFrom(body); err != nil {
			return fmt.Errorf("%w: decoding %s response: %w", errFetch, kmsg.NameForKey(req.Key()), err)
		}
		return nil
	})
}

// withDeadline runs one read or write on the connection within
// fetchTimeout. If ctx ends meanwhile, the I/O stops at once and the error
// is ctx's; any other error matches errFetch.
func (f *rawFetcher) withDeadline(ctx context.Context, io func() error) error {
	if err := f.conn.SetDeadline(time.Now().Add(fetchTimeout)); err != nil {
		return fmt.Errorf("%w: %w", errFetch, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err := io()
	if ctxErr := ctx.Err(); err != nil && ctxErr != nil {
		return ctxErr
	}
	return err
}

// responseBody checks the response header (the correlation ID, and the
// tagged fields of a flexible response) and returns what follows it.
func (f *rawFetcher) responseBody(req kmsg.Request, b []byte) ([]byte, error) {
	if id := int32(binary.BigEndian.Uint32(b)); id != f.correlationID {
		return nil, fmt.Errorf("%w: response to request %d, want %d", errFetch, id, f.correlationID)
	}
	b = b[4:]
	// ApiVersions answers with the old header at every version, so that
	// a client can read it before it knows what the broker speaks.
	if !req.IsFlexible() || req.Key() == kmsg.NewPtrApiVersionsRequest().Key() {
		return b, nil
	}
	tags, w := binary.Uvarint(b)
	if w <= 0 || tags > uint64(len(b)) {
		return nil, fmt.Errorf("%w: bad response header", errFetch)
	}
	b = b[w:]
	for range tags {
		_, w := binary.Uvarint(b) // tag number
		if w <= 0 {
			return nil, fmt.Errorf("%w: bad response header tag", errFetch)
		}
		b = b[w:]
		size, w := binary.Uvarint(b)
		if w <= 0 || size > uint64(len(b)-w) {
			return nil, fmt.Errorf("%w: bad response header tag", errFetch)
		}
		b = b[w+int(size):]
	}
	return b, nil
}

// close closes the connection; a nil fetcher is fine.
func (f *rawFetcher) close() {
	if f != nil {
		_ = f.conn.Close()
	}
}
