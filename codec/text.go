package codec

import (
	"strconv"
	"unsafe"
)

// String returns the codec that stores a string as its bytes, unchanged.
// Every byte sequence decodes (strings in Go may hold any bytes).
func String() Codec[string] { return stringCodec{} }

type stringCodec struct{}

func (stringCodec) Encode(v string) ([]byte, error) { return []byte(v), nil }
func (stringCodec) Decode(data []byte) (string, error) {
	return string(data), nil
}

// Bytes returns the codec that stores a []byte as it is. Decode returns the
// slice it is given, without a copy: the stores hand the Cache a slice of its
// own, so the caller owns what Get returns.
func Bytes() Codec[[]byte] { return bytesCodec{} }

type bytesCodec struct{}

func (bytesCodec) Encode(v []byte) ([]byte, error)    { return v, nil }
func (bytesCodec) Decode(data []byte) ([]byte, error) { return data, nil }

// Signed is the set of signed integer types.
type Signed interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64
}

// Unsigned is the set of unsigned integer types.
type Unsigned interface {
	~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr
}

// Int returns the codec that stores a signed integer as decimal text, the
// form Cache.Increment reads and writes. Text that is not a decimal integer,
// or that overflows V, fails to decode with ErrDecode.
func Int[V Signed]() Codec[V] { return intCodec[V]{} }

type intCodec[V Signed] struct{}

func (intCodec[V]) Encode(v V) ([]byte, error) {
	return strconv.AppendInt(nil, int64(v), 10), nil
}

func (intCodec[V]) Decode(data []byte) (V, error) {
	n, err := strconv.ParseInt(bytesToString(data), 10, int(unsafe.Sizeof(V(0)))*8)
	if err != nil {
		return 0, decodeError("int", err)
	}
	return V(n), nil
}

// Uint returns the codec that stores an unsigned integer as decimal text.
func Uint[V Unsigned]() Codec[V] { return uintCodec[V]{} }

type uintCodec[V Unsigned] struct{}

func (uintCodec[V]) Encode(v V) ([]byte, error) {
	return strconv.AppendUint(nil, uint64(v), 10), nil
}

func (uintCodec[V]) Decode(data []byte) (V, error) {
	n, err := strconv.ParseUint(bytesToString(data), 10, int(unsafe.Sizeof(V(0)))*8)
	if err != nil {
		return 0, decodeError("uint", err)
	}
	return V(n), nil
}

// Float returns the codec that stores a float as the shortest decimal text
// that reads back to the same value.
func Float[V ~float32 | ~float64]() Codec[V] { return floatCodec[V]{} }

type floatCodec[V ~float32 | ~float64] struct{}

func (floatCodec[V]) Encode(v V) ([]byte, error) {
	bits := int(unsafe.Sizeof(V(0))) * 8
	return strconv.AppendFloat(nil, float64(v), 'g', -1, bits), nil
}

func (floatCodec[V]) Decode(data []byte) (V, error) {
	bits := int(unsafe.Sizeof(V(0))) * 8
	f, err := strconv.ParseFloat(bytesToString(data), bits)
	if err != nil {
		return 0, decodeError("float", err)
	}
	return V(f), nil
}

// Bool returns the codec that stores a bool as "1" or "0". It decodes the
// forms strconv.ParseBool accepts.
func Bool() Codec[bool] { return boolCodec{} }

type boolCodec struct{}

func (boolCodec) Encode(v bool) ([]byte, error) {
	if v {
		return []byte{'1'}, nil
	}
	return []byte{'0'}, nil
}

func (boolCodec) Decode(data []byte) (bool, error) {
	b, err := strconv.ParseBool(bytesToString(data))
	if err != nil {
		return false, decodeError("bool", err)
	}
	return b, nil
}

// bytesToString views b as a string without copying, for parsing only; the
// string must not outlive the call.
func bytesToString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
