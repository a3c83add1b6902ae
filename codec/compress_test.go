package codec_test

import (
	"bytes"
	"errors"
	"runtime"
	"testing"

	"github.com/typedcache/typedcache/codec"
)

func compressors() []codec.Compressor { return []codec.Compressor{codec.S2(), codec.Zstd()} }

func TestCompressRoundTrip(t *testing.T) {
	inputs := [][]byte{nil, {}, []byte("a"), bytes.Repeat([]byte("typedcache "), 10000), make([]byte, 1<<20)}
	for _, c := range compressors() {
		for _, in := range inputs {
			z := c.Compress([]byte("prefix"), in)
			if !bytes.HasPrefix(z, []byte("prefix")) {
				t.Fatalf("compressor %d: Compress did not append to dst", c.ID())
			}
			out, err := c.Decompress([]byte("dst"), z[len("prefix"):], len(in))
			if err != nil || !bytes.Equal(out, append([]byte("dst"), in...)) {
				t.Fatalf("compressor %d: round trip of %d bytes: got %d bytes, %v", c.ID(), len(in), len(out), err)
			}
		}
	}
}

// A compressed value larger than the limit fails to decode, and the read
// allocates little: corrupt or hostile bytes cannot make it allocate what
// they claim.
func TestDecompressLimit(t *testing.T) {
	bomb := make([]byte, 64<<20) // zeros: a few KiB compressed
	for _, c := range compressors() {
		z := c.Compress(nil, bomb)
		if len(z) > 1<<20 {
			t.Fatalf("compressor %d: %d bytes of zeros compress to %d", c.ID(), len(bomb), len(z))
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := c.Decompress(nil, z, 1<<20)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, codec.ErrDecode) {
			t.Errorf("compressor %d: 64 MiB under a 1 MiB limit: got %v; want ErrDecode", c.ID(), err)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
			t.Errorf("compressor %d: refusing 64 MiB under a 1 MiB limit allocated %d bytes", c.ID(), got)
		}
	}
}

func TestDecompressCorrupt(t *testing.T) {
	for _, c := range compressors() {
		z := c.Compress(nil, bytes.Repeat([]byte("value "), 1000))
		cases := map[string][]byte{
			"empty":     {},
			"truncated": z[:len(z)/2],
			"garbage":   []byte("this is not compressed at all"),
		}
		if c.ID() == codec.ZstdID {
			// Zstandard frames carry a checksum; S2 blocks do not, and a
			// flipped bit in a literal decodes into other bytes.
			cases["flipped"] = append(append([]byte{}, z[:len(z)-6]...), append([]byte{z[len(z)-6] ^ 0xff}, z[len(z)-5:]...)...)
		}
		for name, in := range cases {
			if _, err := c.Decompress(nil, in, 1<<20); !errors.Is(err, codec.ErrDecode) {
				t.Errorf("compressor %d: %s input: got %v; want ErrDecode", c.ID(), name, err)
			}
		}
	}
}

func TestCompressorByID(t *testing.T) {
	for _, c := range compressors() {
		if got := codec.CompressorByID(c.ID()); got == nil || got.ID() != c.ID() {
			t.Errorf("CompressorByID(%d) = %v", c.ID(), got)
		}
	}
	if codec.CompressorByID(0) != nil || codec.CompressorByID(200) != nil {
		t.Error("CompressorByID of an unknown id is not nil")
	}
}

// FuzzDecompress: no input panics, and none allocates more than the limit
// plus a constant times its length.
func FuzzDecompress(f *testing.F) {
	for _, c := range compressors() {
		f.Add(c.ID(), c.Compress(nil, bytes.Repeat([]byte("abc"), 100)))
		f.Add(c.ID(), c.Compress(nil, make([]byte, 4<<20)))
	}
	const limit = 1 << 16
	f.Fuzz(func(t *testing.T, id byte, in []byte) {
		c := codec.CompressorByID(id%2 + 1)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		out, err := c.Decompress(nil, in, limit)
		runtime.ReadMemStats(&after)
		if err != nil && !errors.Is(err, codec.ErrDecode) {
			t.Fatalf("error %v does not match ErrDecode", err)
		}
		if len(out) > limit {
			t.Fatalf("decompressed %d bytes past the limit %d", len(out), limit)
		}
		if got, bound := after.TotalAlloc-before.TotalAlloc, uint64(4*limit+64*len(in)+1<<20); got > bound {
			t.Fatalf("%d bytes in: allocated %d; want at most %d", len(in), got, bound)
		}
	})
}
