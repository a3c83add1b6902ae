package codec_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strconv"
	"testing"

	"github.com/typedcache/typedcache/codec"
	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/goleak"
)

type user struct {
	ID    int64
	Name  string
	Tags  []string
	Admin bool
}

func roundTrip[V any](t *testing.T, c codec.Codec[V], v V) {
	t.Helper()
	data, err := c.Encode(v)
	if err != nil {
		t.Fatalf("Encode(%v): %v", v, err)
	}
	got, err := c.Decode(data)
	if err != nil {
		t.Fatalf("Decode(Encode(%v)): %v", v, err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("round trip: got %#v; want %#v", got, v)
	}
}

func TestRoundTrip(t *testing.T) {
	u := user{ID: 42, Name: "ada", Tags: []string{"a", "b"}, Admin: true}
	roundTrip(t, codec.MsgPack[user](), u)
	roundTrip(t, codec.JSON[user](), u)
	roundTrip(t, codec.MsgPack[map[string]int](), map[string]int{"a": 1})
	roundTrip(t, codec.MsgPack[*user](), &u)
	roundTrip(t, codec.String(), "héllo\x00\xff")
	roundTrip(t, codec.Bytes(), []byte{0, 1, 255})
	roundTrip(t, codec.Int[int64](), math.MinInt64)
	roundTrip(t, codec.Int[int8](), int8(-128))
	roundTrip(t, codec.Uint[uint64](), uint64(math.MaxUint64))
	roundTrip(t, codec.Float[float64](), 0.1)
	roundTrip(t, codec.Float[float32](), float32(1.5))
	roundTrip(t, codec.Bool(), true)
	roundTrip(t, codec.Bool(), false)
}

func TestDefault(t *testing.T) {
	tests := []struct {
		name string
		got  any
		want []byte
	}{
		{"string", enc(codec.Default[string](), "x"), []byte("x")},
		{"bytes", enc(codec.Default[[]byte](), []byte{1}), []byte{1}},
		{"int", enc(codec.Default[int](), -3), []byte("-3")},
		{"int64", enc(codec.Default[int64](), 7), []byte("7")},
		{"uint8", enc(codec.Default[uint8](), 255), []byte("255")},
		{"float64", enc(codec.Default[float64](), 2.5), []byte("2.5")},
		{"bool", enc(codec.Default[bool](), true), []byte("1")},
		{"struct", enc(codec.Default[user](), user{}), mustEnc(codec.MsgPack[user](), user{})},
	}
	for _, tt := range tests {
		if !bytes.Equal(tt.got.([]byte), tt.want) {
			t.Errorf("%s: got %q; want %q", tt.name, tt.got, tt.want)
		}
	}
}

func enc[V any](c codec.Codec[V], v V) any { return mustEnc(c, v) }

func mustEnc[V any](c codec.Codec[V], v V) []byte {
	b, err := c.Encode(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"msgpack garbage", decErr(codec.MsgPack[user](), []byte{0xc1})},
		{"msgpack empty", decErr(codec.MsgPack[user](), nil)},
		{"msgpack truncated", decErr(codec.MsgPack[user](), mustEnc(codec.MsgPack[user](), user{Name: "abcdef"})[:5])},
		{"msgpack wrong type", decErr(codec.MsgPack[int](), mustEnc(codec.MsgPack[string](), "x"))},
		{"json garbage", decErr(codec.JSON[user](), []byte("{"))},
		{"json trailing", decErr(codec.JSON[int](), []byte("1 2"))},
		{"int text", decErr(codec.Int[int64](), []byte("12a"))},
		{"int overflow", decErr(codec.Int[int8](), []byte("128"))},
		{"int empty", decErr(codec.Int[int](), nil)},
		{"uint negative", decErr(codec.Uint[uint](), []byte("-1"))},
		{"float", decErr(codec.Float[float64](), []byte("x"))},
		{"bool", decErr(codec.Bool(), []byte("yes"))},
		{"funcs", decErr(codec.Funcs(func(int) ([]byte, error) { return nil, nil },
			func([]byte) (int, error) { panic("boom") }), []byte("x"))},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, codec.ErrDecode) {
			t.Errorf("%s: got error %v; want one matching codec.ErrDecode", tt.name, tt.err)
		}
	}
}

func decErr[V any](c codec.Codec[V], data []byte) error {
	_, err := c.Decode(data)
	return err
}

func TestEncodeError(t *testing.T) {
	_, err := codec.JSON[chan int]().Encode(make(chan int))
	if !errors.Is(err, codec.ErrEncode) {
		t.Fatalf("got %v; want an error matching codec.ErrEncode", err)
	}
	_, err = codec.MsgPack[func()]().Encode(func() {})
	if !errors.Is(err, codec.ErrEncode) {
		t.Fatalf("got %v; want an error matching codec.ErrEncode", err)
	}
	// msgpack.Marshal panics on a uintptr.
	_, err = codec.MsgPack[struct{ P uintptr }]().Encode(struct{ P uintptr }{1})
	if !errors.Is(err, codec.ErrEncode) {
		t.Fatalf("got %v; want an error matching codec.ErrEncode", err)
	}
}

// record has a slice of a type the msgpack decoder allocates in one go for
// the length the bytes claim.
type record struct {
	ID  int64
	IDs []int64
}

// TestMsgPackCorrupt checks that corrupt bytes claiming huge lengths or deep
// nesting fail with ErrDecode, instead of making the decoder allocate what
// they claim or overflow the stack, both fatal.
func TestMsgPackCorrupt(t *testing.T) {
	deep := append(append([]byte("\x81\xa1x"), bytes.Repeat([]byte{0x91}, 8<<20)...), 0xc0) // complete: only the depth is wrong
	tests := []struct {
		name string
		err  error
	}{
		{"slice of 2^31-1 in a struct", decErr(codec.MsgPack[record](), []byte("\x82\xa2ID\x01\xa3IDs\xdd\x7f\xff\xff\xff"))},
		{"slice of 1.6e9 in a map", decErr(codec.MsgPack[map[string][]int](), []byte("\x81\xa3a\x86\x91\xdd^\x8f\xfb\x01"))},
		{"slice of 2^31-1 in a slice", decErr(codec.MsgPack[[][]int64](), []byte("\x91\xdd\x7f\xff\xff\xff\x01"))},
		{"string of 4 GB", decErr(codec.MsgPack[[]string](), []byte("\x91\xdb\xff\xff\xff\xffabc"))},
		{"8M arrays deep in an unknown field", decErr(codec.MsgPack[record](), deep)},
		{"8M arrays deep", decErr(codec.MsgPack[any](), deep[3:])},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, codec.ErrDecode) {
			t.Errorf("%s: got error %v; want one matching codec.ErrDecode", tt.name, tt.err)
		}
	}
}

// TestMsgPackTrailing checks that bytes after the value are ignored, as
// msgpack.Unmarshal ignores them.
func TestMsgPackTrailing(t *testing.T) {
	u := user{ID: 1, Name: "x"}
	data := append(mustEnc(codec.MsgPack[user](), u), 0xc1, 0xdd, 0xff)
	got, err := codec.MsgPack[user]().Decode(data)
	if err != nil || !reflect.DeepEqual(got, u) {
		t.Fatalf("Decode(encoding + trailing bytes): got %+v, %v; want %+v, nil", got, err, u)
	}
}

// Decoding a value with pointers starts no goroutine that outlives the
// call (msgpack's preallocation flag would: one per type, for ever).
func TestMsgPackDecodeStartsNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t)
	type inner struct{ N int }
	type outer struct {
		P *inner
		T any
	}
	c := codec.MsgPack[outer]()
	data, err := c.Encode(outer{P: &inner{N: 7}, T: "x"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Decode(data)
	if err != nil || got.P == nil || got.P.N != 7 {
		t.Fatalf("Decode = %+v, %v; want P.N = 7", got, err)
	}
	pc := codec.MsgPack[*inner]()
	data, err = pc.Encode(&inner{N: 8})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := pc.Decode(data); err != nil || p == nil || p.N != 8 {
		t.Fatalf("Decode of a pointer = %v, %v; want &{8}", p, err)
	}
}

// level is a named integer type with msgpack encoding of its own.
type level int8

func (l level) EncodeMsgpack(enc *msgpack.Encoder) error {
	return enc.EncodeString(strconv.Itoa(int(l)))
}
func (l *level) DecodeMsgpack(dec *msgpack.Decoder) error {
	s, err := dec.DecodeString()
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(s)
	*l = level(n)
	return err
}

// A named type that encodes itself for msgpack keeps MsgPack under Default.
func TestDefaultKeepsCustomMsgpack(t *testing.T) {
	c := codec.Default[level]()
	data, err := c.Encode(level(3))
	if err != nil {
		t.Fatal(err)
	}
	if string(data) == "3" {
		t.Fatalf("Default[level] encoded 3 as decimal text; want its own msgpack encoding")
	}
	if got, err := c.Decode(data); err != nil || got != 3 {
		t.Fatalf("Decode = %v, %v; want 3", got, err)
	}
}
