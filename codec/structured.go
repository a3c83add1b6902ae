package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// MsgPack returns the codec that stores values in MessagePack
// (github.com/vmihailenco/msgpack/v5), compact and fast; the default for
// structs, maps and slices. Struct fields are named by their `msgpack` tags,
// else by their Go names.
//
// Decode checks the bytes before decoding them: a value that is truncated,
// claims more items or bytes than follow, or nests arrays and maps deeper
// than 10000 levels (as encoding/json allows) fails with ErrDecode. Bytes
// after the value are ignored, as msgpack.Unmarshal ignores them.
func MsgPack[V any]() Codec[V] { return msgpackCodec[V]{} }

type msgpackCodec[V any] struct{}

func (msgpackCodec[V]) Encode(v V) (b []byte, err error) {
	defer func() {
		// msgpack v5.4.1 panics on a uintptr, for one.
		if r := recover(); r != nil {
			b, err = nil, encodeError("msgpack", fmt.Errorf("panic: %v", r))
		}
	}()
	b, err = msgpack.Marshal(v)
	if err != nil {
		return nil, encodeError("msgpack", err)
	}
	return b, nil
}

func (msgpackCodec[V]) Decode(data []byte) (v V, err error) {
	if len(data) == 0 {
		return v, decodeError("msgpack", fmt.Errorf("empty input"))
	}
	// msgpack v5.4.1 allocates a slice of the length the bytes claim, and
	// recurses once per level of nesting: corrupt bytes could exhaust the
	// memory or the stack, both fatal. Check the value first.
	if _, err := checkMsgpack(data); err != nil {
		return v, decodeError("msgpack", err)
	}
	d := msgpackDecoders.Get().(*msgpackDecoder)
	defer func() {
		if r := recover(); r != nil {
			// d may be in any state: leave it to the garbage collector.
			var zero V
			v, err = zero, decodeError("msgpack", fmt.Errorf("panic: %v", r))
			return
		}
		d.release()
	}()
	if err := d.decode(data, &v); err != nil {
		var zero V
		return zero, decodeError("msgpack", err)
	}
	return v, nil
}

// msgpackDecoder is a msgpack.Decoder with the bytes.Reader it reads from,
// pooled together: msgpack.Unmarshal allocates a new bytes.Reader for every
// call, this does not. It decodes as msgpack.Unmarshal does.
type msgpackDecoder struct {
	dec *msgpack.Decoder
	r   bytes.Reader
}

var msgpackDecoders = sync.Pool{New: func() any {
	return &msgpackDecoder{dec: msgpack.NewDecoder(nil)}
}}

func (d *msgpackDecoder) decode(data []byte, v any) error {
	d.r.Reset(data)
	// Reset clears every flag, as msgpack.Unmarshal's own call does (it
	// sets UsePreallocateValues before its Reset, so to no effect). The
	// flag must stay off: with it, decoding a pointer starts a goroutine
	// per type that never ends (msgpack's cachedValue).
	d.dec.Reset(&d.r)
	return d.dec.Decode(v)
}

// release drops the references to the caller's data and returns d to the
// pool.
func (d *msgpackDecoder) release() {
	d.dec.Reset(nil)
	d.r.Reset(nil)
	msgpackDecoders.Put(d)
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
