package codec

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// MsgPack returns the codec that stores values in MessagePack
// (github.com/vmihailenco/msgpack/v5), compact and fast; the default for
// structs, maps and slices. Struct fields are named by their `msgpack` tags,
// else by their Go names.
//
// A time.Time comes back as the same instant (Equal reports true) but in
// time.Local, whatever its location was: the MessagePack timestamp holds
// seconds and nanoseconds only, so the zone and its offset are lost, and so
// is the monotonic clock reading (as with every encoding); the zero Time
// comes back as itself. Call In or UTC on the decoded time, or store times
// with [JSON], whose RFC 3339 text keeps the offset (not the zone's name).
//
// Decode checks the value the bytes start with before the msgpack decoder
// sees it, since that decoder allocates as many items or bytes as a header
// claims: it fails with ErrDecode on a value that is truncated, claims more
// items or bytes than follow, or nests arrays and maps deeper than 10000
// levels (as encoding/json allows). The decoder is given that value only:
// bytes after it are ignored, as msgpack.Unmarshal ignores them. It never
// reads the payload of an extension as MessagePack (msgpack v5.4.1 does so
// where it expects a map): a decoder registered with
// msgpack.RegisterExtDecoder must read its payload as bytes, as
// msgpack.RegisterExt's does, or fail with ErrDecode. For a type that may
// nest maps within maps without bound (a recursive type with a map, or one
// that decodes itself), a value of more than 10000 arrays and maps that also
// holds an extension msgpack could read as a map taking the items after it
// (one of no bytes before a map or nil, or an interned string's one-byte
// index 0x81 to 0x8f, a fixmap header) fails with ErrDecode. Memory and
// stack use are bounded as the package documentation says.
func MsgPack[V any]() Codec[V] {
	return msgpackCodec[V]{deep: nestsThroughMaps(reflect.TypeFor[V]())}
}

type msgpackCodec[V any] struct {
	deep bool // see checkMsgpack
}

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

func (c msgpackCodec[V]) Decode(data []byte) (v V, err error) {
	if len(data) == 0 {
		return v, decodeError("msgpack", fmt.Errorf("empty input"))
	}
	d := msgpackDecoders.Get().(*msgpackDecoder)
	// msgpack v5.4.1 allocates a slice or map of the length the bytes
	// claim, and recurses once per level of nesting: corrupt bytes could
	// exhaust the memory or the stack, both fatal. Check the value first,
	// and give the decoder that value only, through a reader that keeps it
	// to what the check walked.
	n, guards, err := checkMsgpack(data, d.guards[:0], c.deep)
	d.guards = guards
	if err != nil {
		d.release(len(data))
		return v, decodeError("msgpack", err)
	}
	defer func() {
		if r := recover(); r != nil {
			// d may be in any state: leave it to the garbage collector.
			var zero V
			v, err = zero, decodeError("msgpack", fmt.Errorf("panic: %v", r))
			return
		}
		d.release(n)
	}()
	if err := d.decode(data[:n], &v); err != nil {
		var zero V
		return zero, decodeError("msgpack", err)
	}
	return v, nil
}

// A msgpackDecoder goes back to the pool after decoding a value of at most
// maxPooledMsgpack bytes (the msgpack decoder keeps a buffer as long as the
// longest string it read), with its guards if they are at most
// maxPooledGuards (one per extension).
const (
	maxPooledMsgpack = 64 << 10
	maxPooledGuards  = 256
)

// msgpackDecoder is a msgpack.Decoder with the reader it reads from and the
// guards checkMsgpack found, pooled together: msgpack.Unmarshal allocates a
// new bytes.Reader for every call, this does not. It decodes as
// msgpack.Unmarshal does, but for the reads the guards refuse.
type msgpackDecoder struct {
	dec    *msgpack.Decoder
	r      msgpackReader
	guards []msgpackGuard
}

var msgpackDecoders = sync.Pool{New: func() any {
	return &msgpackDecoder{dec: msgpack.NewDecoder(nil)}
}}

// decode decodes the value data holds, which checkMsgpack found to be
// exactly one value and whose guards are d.guards, into v.
func (d *msgpackDecoder) decode(data []byte, v any) error {
	d.r.reset(data, d.guards)
	// Reset clears every flag, as msgpack.Unmarshal's own call does (it
	// sets UsePreallocateValues before its Reset, so to no effect). The
	// flag must stay off: with it, decoding a pointer starts a goroutine
	// per type that never ends (msgpack's cachedValue).
	d.dec.Reset(&d.r)
	return d.dec.Decode(v)
}

// release drops the references to the caller's data and returns d, which
// decoded or checked a value of size bytes, to the pool.
func (d *msgpackDecoder) release(size int) {
	if size > maxPooledMsgpack {
		return
	}
	if cap(d.guards) > maxPooledGuards {
		d.guards = nil
	}
	d.dec.Reset(nil)
	d.r.reset(nil, nil)
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
