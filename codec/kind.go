package codec

import (
	"reflect"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"
)

// kindCodec returns the codec for V by its reflect kind, as [Default] picks
// it for types other than the builtin ones (named types such as
// time.Duration), or nil when V takes MsgPack. The codecs store what [Int],
// [Uint], [Float], [Bool], [String] and [Bytes] store, and fail alike.
func kindCodec[V any]() Codec[V] {
	t := reflect.TypeFor[V]()
	if encodesItself(t) {
		return nil // the type's own msgpack encoding wins
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return kindIntCodec[V]{bits: t.Bits()}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return kindUintCodec[V]{bits: t.Bits()}
	case reflect.Float32, reflect.Float64:
		return kindFloatCodec[V]{bits: t.Bits()}
	case reflect.Bool:
		return kindBoolCodec[V]{}
	case reflect.String:
		return kindStringCodec[V]{}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return kindBytesCodec[V]{}
		}
	}
	return nil
}

// encodesItself reports whether t or *t has its own msgpack encoding
// (msgpack.CustomEncoder or msgpack.Marshaler): such a type keeps MsgPack.
func encodesItself(t reflect.Type) bool {
	for _, i := range []reflect.Type{
		reflect.TypeFor[msgpack.CustomEncoder](),
		reflect.TypeFor[msgpack.Marshaler](),
	} {
		if t.Implements(i) || reflect.PointerTo(t).Implements(i) {
			return true
		}
	}
	return false
}

// elem returns the settable reflect.Value of v.
func elem[V any](v *V) reflect.Value { return reflect.ValueOf(v).Elem() }

type kindIntCodec[V any] struct{ bits int }

func (kindIntCodec[V]) Encode(v V) ([]byte, error) {
	return strconv.AppendInt(nil, elem(&v).Int(), 10), nil
}

func (c kindIntCodec[V]) Decode(data []byte) (v V, err error) {
	n, err := strconv.ParseInt(bytesToString(data), 10, c.bits)
	if err != nil {
		return v, decodeError("int", err)
	}
	elem(&v).SetInt(n)
	return v, nil
}

type kindUintCodec[V any] struct{ bits int }

func (kindUintCodec[V]) Encode(v V) ([]byte, error) {
	return strconv.AppendUint(nil, elem(&v).Uint(), 10), nil
}

func (c kindUintCodec[V]) Decode(data []byte) (v V, err error) {
	n, err := strconv.ParseUint(bytesToString(data), 10, c.bits)
	if err != nil {
		return v, decodeError("uint", err)
	}
	elem(&v).SetUint(n)
	return v, nil
}

type kindFloatCodec[V any] struct{ bits int }

func (c kindFloatCodec[V]) Encode(v V) ([]byte, error) {
	return strconv.AppendFloat(nil, elem(&v).Float(), 'g', -1, c.bits), nil
}

func (c kindFloatCodec[V]) Decode(data []byte) (v V, err error) {
	f, err := strconv.ParseFloat(bytesToString(data), c.bits)
	if err != nil {
		return v, decodeError("float", err)
	}
	elem(&v).SetFloat(f)
	return v, nil
}

type kindBoolCodec[V any] struct{}

func (kindBoolCodec[V]) Encode(v V) ([]byte, error) {
	return boolCodec{}.Encode(elem(&v).Bool())
}

func (kindBoolCodec[V]) Decode(data []byte) (v V, err error) {
	b, err := boolCodec{}.Decode(data)
	if err != nil {
		return v, err
	}
	elem(&v).SetBool(b)
	return v, nil
}

type kindStringCodec[V any] struct{}

func (kindStringCodec[V]) Encode(v V) ([]byte, error) {
	return []byte(elem(&v).String()), nil
}

func (kindStringCodec[V]) Decode(data []byte) (v V, err error) {
	elem(&v).SetString(string(data))
	return v, nil
}

// kindBytesCodec returns data itself, without a copy, as [Bytes] does.
type kindBytesCodec[V any] struct{}

func (kindBytesCodec[V]) Encode(v V) ([]byte, error) {
	return elem(&v).Bytes(), nil
}

func (kindBytesCodec[V]) Decode(data []byte) (v V, err error) {
	elem(&v).SetBytes(data)
	return v, nil
}
