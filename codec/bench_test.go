package codec_test

import (
	"testing"

	"github.com/typedcache/typedcache/codec"
)

// profile is a small struct of five fields, the typical cached value.
type profile struct {
	ID      int64
	Name    string
	Email   string
	Tags    []string
	Enabled bool
}

func BenchmarkMsgPackDecode(b *testing.B) {
	c := codec.MsgPack[profile]()
	data := mustEnc(c, profile{ID: 42, Name: "ada", Email: "ada@example.com", Tags: []string{"a", "b"}, Enabled: true})
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := c.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIntDecode measures the decimal codec of a named integer type,
// which works through reflection, against that of int64.
func BenchmarkIntDecode(b *testing.B) {
	data := []byte("1234567")
	b.Run("int64", func(b *testing.B) { benchDecode(b, codec.Default[int64](), data) })
	b.Run("named", func(b *testing.B) { benchDecode(b, codec.Default[count](), data) })
}

func benchDecode[V any](b *testing.B, c codec.Codec[V], data []byte) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
