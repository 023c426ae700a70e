// Package kfaketest makes franz-go's kfake broker say, in tests, what a real
// broker says only when something is wrong: a produce refused without
// anything written, a produce held until the test lets it go, fetches
// answered with batches no healthy broker serves. It also writes raw record
// batches as a producer other than orderd could. Tests of several packages
// (persistence, cmd/orderd, cmd/orderctl) share it; nothing else imports it.
package kfaketest

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// AnswerNextProduce makes c answer its next produce request with code for
// every partition, without appending anything: with a retriable code, a
// record that never landed, though the client cannot know it.
func AnswerNextProduce(c *kfake.Cluster, code int16) {
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		produce := req.(*kmsg.ProduceRequest)
		resp := produce.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range produce.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
}

// HoldNextProduce makes c hold its next produce request until release is
// called (at the latest when t ends); arrived closes once the request has
// reached the broker. c serves other connections meanwhile, and then handles
// the request as usual.
func HoldNextProduce(t testing.TB, c *kfake.Cluster) (arrived <-chan struct{}, release func()) {
	arrivedCh, releaseCh := make(chan struct{}), make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(releaseCh) }) }
	t.Cleanup(release)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.DropControl() // hold one request only
		close(arrivedCh)
		c.SleepControl(func() { <-releaseCh })
		return nil, nil, false
	})
	return arrivedCh, release
}

// AnswerFetches makes c answer every fetch request from now on itself, with
// each partition asked for (its number set) as fill leaves it.
func AnswerFetches(c *kfake.Cluster, fill func(*kmsg.FetchResponseTopicPartition)) {
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		fetch := req.(*kmsg.FetchRequest)
		resp := fetch.ResponseKind().(*kmsg.FetchResponse)
		for _, ft := range fetch.Topics {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic, rt.TopicID = ft.Topic, ft.TopicID
			for _, fp := range ft.Partitions {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition = fp.Partition
				fill(&rp)
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
}

// Where a v2 record batch keeps what Seal sets, in bytes from its start.
const (
	batchLengthEnd    = 12 // base offset int64, length int32: the length counts what follows
	batchCRCAt        = 17 // after partition leader epoch int32 and magic int8
	batchAttributesAt = 21 // the CRC covers everything from here
)

// Seal encodes b with its Length and CRC set as its producer would set them,
// whatever its records say.
func Seal(b kmsg.RecordBatch) []byte {
	b.Length = int32(len(b.AppendTo(nil)) - batchLengthEnd)
	enc := b.AppendTo(nil)
	binary.BigEndian.PutUint32(enc[batchCRCAt:], crc32.Checksum(enc[batchAttributesAt:], crc32.MakeTable(crc32.Castagnoli)))
	return enc
}

// ProduceBatch writes one raw record batch to a partition of topic, as a
// producer other than orderd could, and returns the broker's refusal if it
// refused it.
func ProduceBatch(ctx context.Context, broker, topic string, partition int32, batch []byte) error {
	// Produce v13 names topics by ID only; this request names it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.MaxVersions(kversion.V3_9_0()))
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}
