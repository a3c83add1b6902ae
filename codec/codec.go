package codec

import (
	"errors"
	"fmt"
)

// Codec encodes values of type V to bytes and decodes them back. A Codec must
// be safe for concurrent use. Decode must not retain data after it returns
// unless V shares it by design ([Bytes] returns data itself).
type Codec[V any] interface {
	// Encode returns the encoding of v, or an error wrapping ErrEncode.
	Encode(v V) ([]byte, error)
	// Decode returns the value encoded in data, or an error wrapping
	// ErrDecode when data is not a valid encoding. It never panics, and
	// should allocate in proportion to len(data), whatever data holds: a
	// cache decodes whatever its store returns. The codecs of this package
	// do (see Corrupt bytes in the package documentation).
	Decode(data []byte) (V, error)
}

// ErrDecode is wrapped by every error a codec returns for bytes that are not
// a valid encoding of the value type (corrupt, truncated, or written by
// another codec).
var ErrDecode = errors.New("codec: cannot decode")

// ErrEncode is wrapped by every error a codec returns for a value it cannot
// encode.
var ErrEncode = errors.New("codec: cannot encode")

func decodeError(name string, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrDecode, name, err)
}

func encodeError(name string, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrEncode, name, err)
}

// Funcs adapts a pair of functions to a Codec. Errors from decode are
// wrapped with ErrDecode and errors from encode with ErrEncode, unless they
// already wrap them; a panic in decode is turned into an ErrDecode error.
// What decode allocates, and how deep it recurses, is up to it.
func Funcs[V any](encode func(V) ([]byte, error), decode func([]byte) (V, error)) Codec[V] {
	return funcCodec[V]{encode, decode}
}

type funcCodec[V any] struct {
	encode func(V) ([]byte, error)
	decode func([]byte) (V, error)
}

func (c funcCodec[V]) Encode(v V) ([]byte, error) {
	b, err := c.encode(v)
	if err != nil && !errors.Is(err, ErrEncode) {
		err = encodeError("funcs", err)
	}
	return b, err
}

func (c funcCodec[V]) Decode(data []byte) (v V, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero V
			v, err = zero, decodeError("funcs", fmt.Errorf("panic: %v", r))
		}
	}()
	v, err = c.decode(data)
	if err != nil && !errors.Is(err, ErrDecode) {
		err = decodeError("funcs", err)
	}
	return v, err
}

// Default returns the codec the cache uses for V when none is given:
// [String] for string, [Bytes] for []byte, decimal text for the integer,
// float and bool types (so that Increment and Get of one key agree), and
// [MsgPack] for everything else (structs, maps, slices, arrays, pointers).
//
// A type of another name is stored as its kind is: a named integer, float
// or bool type (type Count int64, time.Duration) as decimal text or "1" and
// "0", a named string type as its bytes, a named byte slice type as itself,
// with the text format and the ErrDecode failures of [Int], [Uint], [Float],
// [Bool], [String] and [Bytes] for the type's size (a type Small int8 fails
// to decode "128"). These codecs work through reflection; the builtin types
// get the codecs above. A named type with its own msgpack encoding
// (msgpack.CustomEncoder or msgpack.Marshaler, on the type or its pointer)
// keeps [MsgPack].
func Default[V any]() Codec[V] {
	var zero V
	var c any
	switch any(zero).(type) {
	case string:
		c = String()
	case []byte:
		c = Bytes()
	case int:
		c = Int[int]()
	case int8:
		c = Int[int8]()
	case int16:
		c = Int[int16]()
	case int32:
		c = Int[int32]()
	case int64:
		c = Int[int64]()
	case uint:
		c = Uint[uint]()
	case uint8:
		c = Uint[uint8]()
	case uint16:
		c = Uint[uint16]()
	case uint32:
		c = Uint[uint32]()
	case uint64:
		c = Uint[uint64]()
	case uintptr:
		c = Uint[uintptr]()
	case float32:
		c = Float[float32]()
	case float64:
		c = Float[float64]()
	case bool:
		c = Bool()
	default:
		if k := kindCodec[V](); k != nil {
			return k
		}
		return MsgPack[V]()
	}
	return c.(Codec[V])
}
