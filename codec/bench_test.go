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
