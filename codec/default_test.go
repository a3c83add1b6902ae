package codec_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/typedcache/typedcache/codec"
)

type (
	count   int64
	small   int8
	port    uint16
	ratio   float32
	flag    bool
	name    string
	raw     []byte
	octet   byte
	octets  []octet
	handle  uintptr
	seconds float64
)

// namedCase is how Default must treat a named type: V encodes as the
// builtin codec of its kind encodes enc, text decodes to want, and each of
// bad fails with ErrDecode.
type namedCase[V any] struct {
	v    V
	enc  string
	text string
	want V
	bad  []string
}

func (tc namedCase[V]) run(t *testing.T) {
	t.Helper()
	c := codec.Default[V]()
	data, err := c.Encode(tc.v)
	if err != nil || string(data) != tc.enc {
		t.Fatalf("Encode(%v): got %q, %v; want %q, nil", tc.v, data, err, tc.enc)
	}
	roundTrip(t, c, tc.v)
	got, err := c.Decode([]byte(tc.text))
	if err != nil || !reflect.DeepEqual(got, tc.want) {
		t.Fatalf("Decode(%q): got %#v, %v; want %#v, nil", tc.text, got, err, tc.want)
	}
	for _, b := range tc.bad {
		if _, err := c.Decode([]byte(b)); !errors.Is(err, codec.ErrDecode) {
			t.Fatalf("Decode(%q): got error %v; want one matching codec.ErrDecode", b, err)
		}
	}
}

// TestDefaultNamed checks that Default stores a named number, bool, string
// or byte slice as its underlying builtin type is stored, so that the
// decimal text Cache.Increment writes reads back as the number.
func TestDefaultNamed(t *testing.T) {
	tests := []struct {
		name string
		run  func(*testing.T)
	}{
		{"int64", namedCase[count]{v: -7, enc: "-7", text: "3", want: 3, bad: []string{"", "3.0", "0x3", "9223372036854775808"}}.run},
		{"duration", namedCase[time.Duration]{v: -time.Second, enc: "-1000000000", text: "3", want: 3, bad: []string{"1s"}}.run},
		{"int8", namedCase[small]{v: -128, enc: "-128", text: "3", want: 3, bad: []string{"128", "-129", "300"}}.run},
		{"uint16", namedCase[port]{v: 65535, enc: "65535", text: "3", want: 3, bad: []string{"-1", "65536"}}.run},
		{"uintptr", namedCase[handle]{v: 1 << 20, enc: "1048576", text: "3", want: 3, bad: []string{"-1"}}.run},
		{"float32", namedCase[ratio]{v: 0.1, enc: "0.1", text: "3", want: 3, bad: []string{"x", "1e39"}}.run},
		{"float64", namedCase[seconds]{v: 1e308, enc: "1e+308", text: "3", want: 3, bad: []string{"1e309"}}.run},
		{"bool", namedCase[flag]{v: true, enc: "1", text: "false", want: false, bad: []string{"", "yes", "3"}}.run},
		{"string", namedCase[name]{v: "héllo\xff", enc: "héllo\xff", text: "3", want: "3"}.run},
		{"bytes", namedCase[raw]{v: raw{0, 255}, enc: "\x00\xff", text: "3", want: raw("3")}.run},
		{"slice of named bytes", namedCase[octets]{v: octets{1, 2}, enc: "\x01\x02", text: "3", want: octets{'3'}}.run},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// TestDefaultNamedAsBuiltin checks that a named type and its underlying
// builtin type encode alike, and that a named byte slice shares the bytes it
// decodes, as Bytes does.
func TestDefaultNamedAsBuiltin(t *testing.T) {
	for _, n := range []int64{0, -1, 42, -9223372036854775808} {
		if a, b := mustEnc(codec.Default[count](), count(n)), mustEnc(codec.Default[int64](), n); !bytes.Equal(a, b) {
			t.Errorf("count(%d): got %q; want %q as int64", n, a, b)
		}
	}
	data := []byte("xyz")
	got, err := codec.Default[raw]().Decode(data)
	if err != nil || &got[0] != &data[0] {
		t.Errorf("Decode(%q): got %q at %p, %v; want the bytes given, at %p", data, got, got, err, data)
	}
	// Composite types keep MsgPack.
	if got, want := mustEnc(codec.Default[[]count](), []count{1}), mustEnc(codec.MsgPack[[]count](), []count{1}); !bytes.Equal(got, want) {
		t.Errorf("[]count: got %q; want %q (MsgPack)", got, want)
	}
}
