package codec

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Compressor compresses the encodings of large values; a Cache uses one
// when cache.Options.Compression is set, and marks the entries it
// compressed (the entry header's compressed flag, then the compressor's ID
// byte before the compressed bytes), so that readers know how to
// decompress them. It must be safe for concurrent use.
type Compressor interface {
	// ID names the algorithm in stored entries: 1 is S2, 2 is Zstd; IDs
	// from 128 up are free for compressors of your own. It must never
	// change for a compressor, or stored entries become unreadable.
	ID() byte
	// Compress appends the compressed src to dst.
	Compress(dst, src []byte) []byte
	// Decompress appends the decompressed src to dst. It returns an error
	// wrapping ErrDecode for corrupt input and for input that would
	// decompress to more than limit bytes; either may first allocate up to
	// about limit bytes (the size a header claims, when it is within the
	// limit), never more.
	Decompress(dst, src []byte, limit int) ([]byte, error)
}

// IDs of the built-in compressors.
const (
	S2ID   byte = 1
	ZstdID byte = 2
)

// S2 returns the S2 compressor (github.com/klauspost/compress/s2, an
// extension of Snappy): fast, for values that are read often. Its blocks
// carry no checksum: it refuses truncated and malformed input, but a
// flipped bit in a literal decodes into other bytes (which the value's
// codec may then refuse).
func S2() Compressor { return s2Compressor{} }

type s2Compressor struct{}

func (s2Compressor) ID() byte { return S2ID }

func (s2Compressor) Compress(dst, src []byte) []byte {
	n := s2.MaxEncodedLen(len(src))
	if n < 0 {
		n = len(src) + len(src)/4 + 64
	}
	dst = slices.Grow(dst, n)
	out := s2.Encode(dst[len(dst):len(dst)+n], src)
	return dst[:len(dst)+len(out)]
}

func (s2Compressor) Decompress(dst, src []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return nil, decodeError("s2", err)
	}
	if n > limit {
		return nil, decodeError("s2", fmt.Errorf("decompresses to %d bytes, more than the limit %d", n, limit))
	}
	dst = slices.Grow(dst, n)
	out, err := s2.Decode(dst[len(dst):len(dst)+n], src)
	if err != nil {
		return nil, decodeError("s2", err)
	}
	return dst[:len(dst)+len(out)], nil
}

// Zstd returns the Zstandard compressor (github.com/klauspost/compress/
// zstd, default level, with a checksum per frame): smaller than S2, slower
// to compress, for large values on a remote store.
func Zstd() Compressor { return zstdCompressor{} }

type zstdCompressor struct{}

// The encoder is made once, and a decoder once per limit (a process uses
// one or two): EncodeAll and DecodeAll are safe for concurrent use, and
// each holds buffers worth reusing. A decoder's maximum memory is its
// limit plus 64 KiB, which DecodeAll enforces over all the frames of
// its input, so a corrupt input cannot make it allocate more; the frame's
// size is checked against the limit itself before, and the output after.
var (
	zstdEncOnce sync.Once
	zstdEnc     *zstd.Encoder
	zstdEncErr  error
	zstdDecs    sync.Map // limit (int) -> *zstd.Decoder
)

func zstdEncoder() (*zstd.Encoder, error) {
	zstdEncOnce.Do(func() {
		zstdEnc, zstdEncErr = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	})
	return zstdEnc, zstdEncErr
}

func zstdDecoder(limit int) (*zstd.Decoder, error) {
	if d, ok := zstdDecs.Load(limit); ok {
		return d.(*zstd.Decoder), nil
	}
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(uint64(limit)+64<<10))
	if err != nil {
		return nil, err
	}
	actual, loaded := zstdDecs.LoadOrStore(limit, d)
	if loaded {
		d.Close()
	}
	return actual.(*zstd.Decoder), nil
}

func (zstdCompressor) ID() byte { return ZstdID }

func (zstdCompressor) Compress(dst, src []byte) []byte {
	enc, err := zstdEncoder()
	if err != nil {
		// Only options refused by zstd itself fail here, never input.
		panic("codec: zstd: " + err.Error())
	}
	return enc.EncodeAll(src, dst)
}

func (zstdCompressor) Decompress(dst, src []byte, limit int) ([]byte, error) {
	dec, err := zstdDecoder(limit)
	if err != nil {
		return nil, decodeError("zstd", err)
	}
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return nil, decodeError("zstd", err)
	}
	if h.HasFCS && h.FrameContentSize > uint64(limit) {
		return nil, decodeError("zstd", fmt.Errorf("frame size %d, more than the limit %d", h.FrameContentSize, limit))
	}
	out, err := dec.DecodeAll(src, dst)
	if err != nil {
		return nil, decodeError("zstd", err)
	}
	if len(out)-len(dst) > limit {
		return nil, decodeError("zstd", errors.New("decompressed past the limit"))
	}
	return out, nil
}

// CompressorByID returns the built-in compressor with the ID id, or nil.
func CompressorByID(id byte) Compressor {
	switch id {
	case S2ID:
		return S2()
	case ZstdID:
		return Zstd()
	}
	return nil
}
