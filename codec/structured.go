package codec

import (
	"encoding/json"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// MsgPack returns the codec that stores values in MessagePack
// (github.com/vmihailenco/msgpack/v5), compact and fast; the default for
// structs, maps and slices. Struct fields are named by their `msgpack` tags,
// else by their Go names.
func MsgPack[V any]() Codec[V] { return msgpackCodec[V]{} }

type msgpackCodec[V any] struct{}

func (msgpackCodec[V]) Encode(v V) ([]byte, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, encodeError("msgpack", err)
	}
	return b, nil
}

func (msgpackCodec[V]) Decode(data []byte) (v V, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero V
			v, err = zero, decodeError("msgpack", fmt.Errorf("panic: %v", r))
		}
	}()
	if len(data) == 0 {
		return v, decodeError("msgpack", fmt.Errorf("empty input"))
	}
	if err := msgpack.Unmarshal(data, &v); err != nil {
		var zero V
		return zero, decodeError("msgpack", err)
	}
	return v, nil
}

// JSON returns the codec that stores values as JSON (encoding/json): larger
// and slower than MsgPack, readable by any tool. Trailing data after the
// value is an error (json.Unmarshal rules).
func JSON[V any]() Codec[V] { return jsonCodec[V]{} }

type jsonCodec[V any] struct{}

func (jsonCodec[V]) Encode(v V) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, encodeError("json", err)
	}
	return b, nil
}

func (jsonCodec[V]) Decode(data []byte) (V, error) {
	var v V
	if err := json.Unmarshal(data, &v); err != nil {
		var zero V
		return zero, decodeError("json", err)
	}
	return v, nil
}
