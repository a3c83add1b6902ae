package codec_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/typedcache/typedcache/codec"
)

// fuzzDecode checks that arbitrary bytes either decode to a value that
// encodes and decodes to itself, or fail with ErrDecode, and never panic.
func fuzzDecode[V any](f *testing.F, c codec.Codec[V], seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, c, data) })
}

// checkDecode checks what fuzzDecode checks for one input.
func checkDecode[V any](t *testing.T, c codec.Codec[V], data []byte) {
	t.Helper()
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

func FuzzBytes(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := codec.Bytes().Decode(data)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Decode(%q): got %q, %v; want the bytes given, nil", data, got, err)
		}
	})
}

// FuzzFuncs checks that Funcs turns whatever the decode function does
// (return an error of its own, one wrapping ErrDecode, or panic, also with
// nil) into a value or an ErrDecode error.
func FuzzFuncs(f *testing.F) {
	c := codec.Funcs(
		func(v byte) ([]byte, error) { return []byte{1, v}, nil },
		func(b []byte) (byte, error) {
			switch b[0] { // panics on empty input
			case 'e':
				return 0, errors.New("plain error")
			case 'd':
				return 0, fmt.Errorf("wrapped: %w", codec.ErrDecode)
			case 'n':
				panic(nil)
			case 'p':
				panic(errors.New("error value"))
			}
			return b[b[0]], nil // panics when b[0] is out of range
		})
	fuzzDecode(f, c, nil, []byte("e"), []byte("d"), []byte("n"), []byte("p"), []byte{1, 2}, []byte{9})
}

// fuzzNamed checks that the codec Default picks for the named type N
// decodes as that of its builtin type B: the same value (the same
// encoding), or both an ErrDecode error.
func fuzzNamed[N, B any](f *testing.F, seeds ...[]byte) {
	named, builtin := codec.Default[N](), codec.Default[B]()
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, named, data)
		n, nErr := named.Decode(data)
		b, bErr := builtin.Decode(data)
		if (nErr == nil) != (bErr == nil) {
			t.Fatalf("Decode(%q): got error %v; %T gets %v", data, nErr, b, bErr)
		}
		if nErr != nil {
			return
		}
		if got, want := mustEnc(named, n), mustEnc(builtin, b); !bytes.Equal(got, want) {
			t.Fatalf("Encode(Decode(%q)): got %q; %T gets %q", data, got, b, want)
		}
	})
}

func FuzzNamedInt(f *testing.F) {
	fuzzNamed[count, int64](f, []byte("-9223372036854775808"), []byte("3"), []byte("x"))
}

func FuzzNamedInt8(f *testing.F) { fuzzNamed[small, int8](f, []byte("127"), []byte("-129")) }

func FuzzNamedUint(f *testing.F) { fuzzNamed[port, uint16](f, []byte("65535"), []byte("-1")) }

func FuzzNamedFloat(f *testing.F) {
	fuzzNamed[ratio, float32](f, []byte("3.4028235e+38"), []byte("1e39"), []byte("NaN"))
}

func FuzzNamedBool(f *testing.F) { fuzzNamed[flag, bool](f, []byte("1"), []byte("F"), []byte("3")) }

func FuzzNamedString(f *testing.F) { fuzzNamed[name, string](f, []byte("\xff")) }

func FuzzNamedBytes(f *testing.F) { fuzzNamed[raw, []byte](f, []byte{0, 0xff}) }
