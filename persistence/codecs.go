package persistence

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/segmentio/kafka-go/compress"
)

// Decompression with bounds, for every record batch this process reads.
//
// kafka-go's codecs believe what a batch says about itself. Measured on
// kafka-go v0.4.51: a snappy batch of 120 bytes whose xerial chunk header
// claimed 1.5 GiB made it allocate 1.5 GiB before it found the data missing
// (a claim of 4 GiB is one byte away), a 112 KiB zstd batch that declared a
// 512 MiB window made the decoder allocate 512 MiB, and what a batch expands
// to had no bound at all. Replay and the re-read of a fenced order read a
// topic that anyone allowed to produce to it can write; one such batch would
// take the server down at every start.
//
// So the batch reader (batch.go) expands records with these readers, which
// never allocate on a length the batch claims beyond
// batchDecompressedBytesMax, and fail a batch which expands beyond it.
// Writing stays kafka-go's own.
var boundedReaders = map[compress.Compression]func(io.Reader) io.ReadCloser{
	compress.Gzip:   compress.Gzip.Codec().NewReader, // its window is 32 KiB
	compress.Lz4:    compress.Lz4.Codec().NewReader,  // its blocks are at most 4 MiB
	compress.Snappy: newSnappyReader,
	compress.Zstd:   newZstdReader,
}

// errExpandsBeyond fails a batch whose records expand beyond the bound.
var errExpandsBeyond = fmt.Errorf("expands beyond %d bytes", batchDecompressedBytesMax)

// newBoundedReader returns codec's reader of r, which yields at most
// batchDecompressedBytesMax bytes. codec must be in boundedReaders.
func newBoundedReader(codec compress.Compression, r io.Reader) io.ReadCloser {
	return &boundedReader{r: boundedReaders[codec](r), left: batchDecompressedBytesMax}
}

type boundedReader struct {
	r    io.ReadCloser
	left int64
}

// probeReadsMax bounds the reads that look for a byte past the bound from a
// reader that answers (0, nil), which io.Reader discourages but permits.
const probeReadsMax = 100

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left == 0 {
		// At the bound: the batch fits only if nothing follows.
		var probe [1]byte
		for range probeReadsMax {
			n, err := b.r.Read(probe[:])
			switch {
			case n > 0:
				return 0, errExpandsBeyond
			case err != nil:
				return 0, err
			}
		}
		return 0, io.ErrNoProgress
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedReader) Close() error { return b.r.Close() }

// xerialMagic starts a snappy stream in the xerial framing that Kafka's Java
// client writes (and kafka-go by default): the magic, a version and a
// compatible version (4 bytes each), then chunks, each a big-endian 4-byte
// length and a snappy block. A stream without it is one snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderBytes = 16

// snappyInputBytesMax bounds the compressed input read: snappy's worst case
// (incompressible data) adds a sixth, so a longer input cannot expand to
// batchDecompressedBytesMax or less.
const snappyInputBytesMax = batchDecompressedBytesMax * 2

// newSnappyReader reads the whole input and decodes it at once: a batch is
// small and in memory already, and every length a chunk or block claims is
// checked against the bytes present and the bound before anything is
// allocated for it.
func newSnappyReader(r io.Reader) io.ReadCloser {
	in, err := io.ReadAll(io.LimitReader(r, snappyInputBytesMax+1))
	if err == nil && len(in) > snappyInputBytesMax {
		err = errExpandsBeyond
	}
	var out []byte
	if err == nil {
		out, err = decodeSnappy(in)
	}
	if err != nil {
		return failedReader{fmt.Errorf("snappy: %w", err)}
	}
	return io.NopCloser(bytes.NewReader(out))
}

func decodeSnappy(in []byte) ([]byte, error) {
	if len(in) == 0 {
		return nil, nil // what kafka-go reads from no input
	}
	if !bytes.HasPrefix(in, xerialMagic) {
		return appendSnappyBlock(nil, in)
	}
	if len(in) < xerialHeaderBytes {
		return nil, fmt.Errorf("xerial header of %d bytes", len(in))
	}
	var out []byte
	for in = in[xerialHeaderBytes:]; len(in) > 0; {
		if len(in) < 4 {
			return nil, fmt.Errorf("xerial chunk length of %d bytes", len(in))
		}
		n := binary.BigEndian.Uint32(in)
		in = in[4:]
		if uint64(n) > uint64(len(in)) {
			return nil, fmt.Errorf("xerial chunk of %d bytes with %d left", n, len(in))
		}
		var err error
		if out, err = appendSnappyBlock(out, in[:n]); err != nil {
			return nil, err
		}
		in = in[n:]
	}
	return out, nil
}

// appendSnappyBlock decodes one snappy block onto out.
func appendSnappyBlock(out, block []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(block)
	switch {
	case err != nil:
		return nil, err
	case n > batchDecompressedBytesMax-len(out):
		return nil, errExpandsBeyond
	}
	out = slices.Grow(out, n)
	decoded, err := snappy.Decode(out[len(out):len(out)+n], block)
	if err != nil {
		return nil, err
	}
	return out[:len(out)+len(decoded)], nil
}

// zstdWindowBytesMax bounds the window a zstd frame may ask the decoder to
// keep. A window larger than the batch is never needed, and Kafka's clients
// use 8 MiB or less (the format's recommended maximum for decoders).
const zstdWindowBytesMax = batchDecompressedBytesMax

// zstdDecoders holds decoders between batches: one costs its window, which
// is why kafka-go pools them too.
var zstdDecoders sync.Pool // *zstd.Decoder

func newZstdReader(r io.Reader) io.ReadCloser {
	dec, _ := zstdDecoders.Get().(*zstd.Decoder)
	if dec == nil {
		var err error
		dec, err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1), // a batch is small: no goroutines
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdWindowBytesMax),
			zstd.WithDecoderMaxMemory(batchDecompressedBytesMax),
		)
		if err != nil {
			return failedReader{fmt.Errorf("zstd: %w", err)}
		}
	}
	if err := dec.Reset(r); err != nil {
		zstdDecoders.Put(dec)
		return failedReader{fmt.Errorf("zstd: %w", err)}
	}
	return &zstdReader{dec: dec}
}

type zstdReader struct{ dec *zstd.Decoder }

func (z *zstdReader) Read(p []byte) (int, error) {
	if z.dec == nil {
		return 0, errReadAfterClose
	}
	return z.dec.Read(p)
}

func (z *zstdReader) Close() error {
	if z.dec != nil {
		_ = z.dec.Reset(bytes.NewReader(nil)) // let go of the batch; the error is the empty input's
		zstdDecoders.Put(z.dec)
		z.dec = nil
	}
	return nil
}

var errReadAfterClose = errors.New("read after close")

// failedReader is a decoder that could not start.
type failedReader struct{ err error }

func (f failedReader) Read([]byte) (int, error) { return 0, f.err }
func (f failedReader) Close() error             { return nil }
