package codec_test

import (
	"errors"
	"testing"

	"github.com/typedcache/typedcache/codec"
)

// fuzzDecode checks that arbitrary bytes either decode to a value that
// encodes and decodes to itself, or fail with ErrDecode, and never panic.
func fuzzDecode[V any](f *testing.F, c codec.Codec[V], seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := c.Decode(data)
		if err != nil {
			if !errors.Is(err, codec.ErrDecode) {
				t.Fatalf("Decode(%q): error %v does not match ErrDecode", data, err)
			}
			return
		}
		again, err := c.Encode(v)
		if err != nil {
			return // e.g. NaN-like values some encoders refuse
		}
		if _, err := c.Decode(again); err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))): %v", data, err)
		}
	})
}

func FuzzMsgPack(f *testing.F) {
	fuzzDecode(f, codec.MsgPack[user](),
		mustEnc(codec.MsgPack[user](), user{ID: 1, Name: "x", Tags: []string{"t"}}), []byte{0xc1}, nil)
}

func FuzzMsgPackRecord(f *testing.F) {
	fuzzDecode(f, codec.MsgPack[record](), mustEnc(codec.MsgPack[record](), record{ID: 1, IDs: []int64{2, 3}}))
}

func FuzzMsgPackMap(f *testing.F) {
	fuzzDecode(f, codec.MsgPack[map[string][]int](), mustEnc(codec.MsgPack[map[string][]int](), map[string][]int{"a": {1}}))
}

func FuzzJSON(f *testing.F) {
	fuzzDecode(f, codec.JSON[user](), []byte(`{"ID":1,"Name":"x"}`), []byte("{"))
}

func FuzzInt(f *testing.F) {
	fuzzDecode(f, codec.Int[int64](), []byte("-9223372036854775808"), []byte("x"))
}

func FuzzUint(f *testing.F) { fuzzDecode(f, codec.Uint[uint32](), []byte("4294967295"), []byte("-1")) }

func FuzzFloat(f *testing.F) { fuzzDecode(f, codec.Float[float64](), []byte("1e308"), []byte("NaN")) }

func FuzzBool(f *testing.F) { fuzzDecode(f, codec.Bool(), []byte("1"), []byte("true"), []byte("x")) }

func FuzzString(f *testing.F) { fuzzDecode(f, codec.String(), []byte("\xff")) }
