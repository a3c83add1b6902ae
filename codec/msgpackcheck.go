package codec

import (
	"encoding"
	"encoding/binary"
	"fmt"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"
)

// maxMsgpackDepth bounds how deeply the arrays and maps of a MessagePack
// value may nest, as encoding/json bounds JSON. The msgpack decoder recurses
// once per level, also to skip fields the type does not have, and a
// goroutine stack overflow is fatal.
const maxMsgpackDepth = 10000

// internExtType is the extension type msgpack v5.4.1 writes for an index
// into the strings it interned (fields tagged `msgpack:",intern"`); it reads
// the index of a fixext1 with ReadByte.
const internExtType = 0x80 // int8(-128)

// A msgpackGuard is a read the decoder must refuse at the position at, so
// that it never takes the payload of an extension for MessagePack; see
// checkMsgpack.
type msgpackGuard struct {
	at   int
	read bool // refuse Read starting at at, else ReadByte at at
}

// checkMsgpack walks the MessagePack value at the start of data without
// decoding it, and returns its length n and the guards (appended to guards)
// the decoder must apply while it reads data[:n]. It fails when the value is
// truncated, holds the never-used code 0xc1, claims a string, binary or
// extension longer than the bytes left, claims more array or map items than
// there are bytes left (each item takes at least one), or nests deeper than
// maxMsgpackDepth; and, when deep tells that the type decoded into may nest
// maps without bound (see nestsThroughMaps), when it holds an extension read
// as below and more than maxMsgpackDepth arrays and maps.
//
// Decoding data[:n] through a [msgpackReader] with those guards, the msgpack
// decoder reads every array, map, string, binary and extension header where
// an item starts in the walk, so every length it trusts (to allocate a
// slice or map of that many items, or that many bytes) is at most the bytes
// left after the header, and the lengths add up to at most n; and it nests
// arrays and maps at most maxMsgpackDepth deep. Bytes after the value are not
// looked at, and must not be given to the decoder.
//
// The guards are needed because msgpack v5.4.1 reads an extension where it
// expects a map (Decoder.DecodeMapLen, for every map type) as its header
// followed by a map: it reads the map's header from the first byte of the
// payload, which may be anything (a time.Time's nanoseconds), or, for an
// extension of no bytes, from the item after it. The guards refuse ReadByte
// at the start of a payload, which no decoder of msgpack does but for an
// interned string's one-byte index (extension type -128); after that byte a
// Read, which would be a map16 or map32 length, is refused instead. Read
// this way, an extension of no bytes followed by a map or nil, or an index
// byte that is a fixmap (its pairs follow the extension), keeps to the
// items of the walk but regroups them, so that maps can nest more deeply
// than the walk found; nestsThroughMaps tells for which types that makes
// the nesting unbounded.
//
// It does not allocate unless the value holds extensions, whose guards it
// appends, or more than maxMsgpackDepth arrays and maps, when it takes a
// second walk to measure their nesting.
func checkMsgpack(data []byte, guards []msgpackGuard, deep bool) (int, []msgpackGuard, error) {
	pending := uint64(1) // items announced and not yet walked
	containers := 0      // arrays and maps
	var exts msgpackExts
	i := 0
	for pending > 0 {
		pending--
		next, items, kind, err := msgpackItem(data, i)
		if err != nil {
			return 0, guards, err
		}
		switch kind {
		case msgpackContainer:
			containers++
			pending += items
			if pending > uint64(len(data)-next) {
				return 0, guards, fmt.Errorf("%d items pending at byte %d, only %d bytes left", pending, next, len(data)-next)
			}
		case msgpackExt:
			guards = exts.add(data, i, next, pending > 0, guards)
		}
		i = next
	}
	if exts.regrouped > 0 && deep {
		if containers+exts.extraMaps > maxMsgpackDepth {
			return 0, guards, fmt.Errorf("%d arrays and maps, with %d extensions that may be read as maps: more than %d", containers, exts.regrouped, maxMsgpackDepth)
		}
	} else if containers > maxMsgpackDepth {
		if err := checkMsgpackDepth(data); err != nil {
			return 0, guards, err
		}
	}
	return i, guards, nil
}

// nestsThroughMaps reports whether msgpack, decoding into t, may read maps
// within maps to a depth the type does not bound, so that the extensions it
// reads as maps (see checkMsgpack) may nest the value deeper than the walk
// of its bytes does: whether the types t is made of (through pointers,
// slices, arrays, maps, and the struct fields msgpack decodes; not through
// interfaces, whose values msgpack decodes as the bytes lay them out) hold a
// cycle and a map, or a type that decodes itself with the msgpack.Decoder
// (msgpack.CustomDecoder, but for msgpack.RawMessage, which skips a value).
func nestsThroughMaps(t reflect.Type) bool {
	const (
		visiting = 1
		visited  = 2
	)
	state := make(map[reflect.Type]int)
	var cycle, maps, custom bool
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		switch state[t] {
		case visiting:
			cycle = true
			return
		case visited:
			return
		}
		if t == rawMessageType {
			return
		}
		if implements(t, customDecoderType) {
			custom = true
			return
		}
		if implements(t, unmarshalerType) || implements(t, binaryUnmarshalerType) || implements(t, textUnmarshalerType) {
			return // decodes bytes msgpack skipped or read whole
		}
		state[t] = visiting
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(t.Elem())
		case reflect.Map:
			maps = true
			walk(t.Key())
			walk(t.Elem())
		case reflect.Struct:
			for i := range t.NumField() {
				if f := t.Field(i); f.IsExported() || f.Anonymous {
					walk(f.Type)
				}
			}
		}
		state[t] = visited
	}
	walk(t)
	return custom || cycle && maps
}

var (
	rawMessageType        = reflect.TypeFor[msgpack.RawMessage]()
	customDecoderType     = reflect.TypeFor[msgpack.CustomDecoder]()
	unmarshalerType       = reflect.TypeFor[msgpack.Unmarshaler]()
	binaryUnmarshalerType = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	textUnmarshalerType   = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// implements reports whether t or *t implements i.
func implements(t, i reflect.Type) bool {
	return t.Implements(i) || t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(i)
}

// msgpackExts counts the extensions of a value the decoder may read as a
// map that takes the items after it.
type msgpackExts struct {
	regrouped int // such extensions
	extraMaps int // maps among them, read from an index byte
}

// add notes the extension data[i:next] and returns guards with its own, if
// any, appended; more tells whether items follow it in the value.
func (e *msgpackExts) add(data []byte, i, next int, more bool, guards []msgpackGuard) []msgpackGuard {
	p := i + 2 // payload: after the code and type (fixext)
	switch data[i] {
	case 0xc7: // ext8
		p = i + 3
	case 0xc8: // ext16
		p = i + 4
	case 0xc9: // ext32
		p = i + 6
	}
	switch {
	case next == p:
		// Read as a map, the extension takes the item after it as the
		// map, if there is one.
		if more && next < len(data) && mapOrNil(data[next]) {
			e.regrouped++
		}
	case next == p+1 && data[p-1] == internExtType:
		guards = append(guards, msgpackGuard{at: next, read: true})
		if c := data[p]; c > 0x80 && c <= 0x8f { // fixmap of one or more pairs
			e.regrouped++
			e.extraMaps++
		}
	default:
		guards = append(guards, msgpackGuard{at: p})
	}
	return guards
}

// mapOrNil reports whether c starts a map or nil, which the msgpack decoder
// reads as a map.
func mapOrNil(c byte) bool {
	return c >= 0x80 && c <= 0x8f || c == 0xc0 || c == 0xde || c == 0xdf
}

// checkMsgpackDepth fails when the arrays and maps of the value at the start
// of data, which checkMsgpack found well formed, nest deeper than
// maxMsgpackDepth.
func checkMsgpackDepth(data []byte) error {
	// open holds, for each array or map being walked, its items not yet
	// walked; open[0] stands for the value itself.
	open := make([]uint64, 1, 64)
	open[0] = 1
	i := 0
	for len(open) > 0 {
		top := len(open) - 1
		if open[top] == 0 {
			open = open[:top]
			continue
		}
		open[top]--
		next, items, _, err := msgpackItem(data, i)
		if err != nil {
			return err
		}
		i = next
		if items > 0 {
			if len(open) > maxMsgpackDepth {
				return fmt.Errorf("arrays and maps nest deeper than %d at byte %d", maxMsgpackDepth, i)
			}
			open = append(open, items)
		}
	}
	return nil
}

// The kinds of item msgpackItem tells apart.
const (
	msgpackScalar    = iota // or string or binary
	msgpackContainer        // array or map
	msgpackExt              // extension
)

// msgpackItem reads the header of the item at data[i:], as the MessagePack
// specification lays it out, and returns where the next item starts (past
// the payload of a scalar, string, binary or extension, or past the header
// of an array or map, whose items, keys and values for a map, follow it),
// how many items follow it, and its kind.
func msgpackItem(data []byte, i int) (next int, items uint64, kind int, err error) {
	if i >= len(data) {
		return 0, 0, 0, errMsgpackTruncated(i)
	}
	c := data[i]
	i++
	var (
		lenSize int    // size of the big-endian length field after c
		size    uint64 // bytes after the length field, beyond the length read
		per     uint64 // items per unit of length: 1 for an array, 2 for a map
	)
	switch {
	case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		return i, 0, msgpackScalar, nil
	case c <= 0x8f: // fixmap
		return i, 2 * uint64(c&0x0f), msgpackContainer, nil
	case c <= 0x9f: // fixarray
		return i, uint64(c & 0x0f), msgpackContainer, nil
	case c <= 0xbf: // fixstr
		size = uint64(c & 0x1f)
	default:
		switch c {
		case 0xc0, 0xc2, 0xc3: // nil, false, true
			return i, 0, msgpackScalar, nil
		case 0xc1:
			return 0, 0, 0, fmt.Errorf("invalid code 0xc1 at byte %d", i-1)
		case 0xc4, 0xd9: // bin8, str8
			lenSize = 1
		case 0xc5, 0xda: // bin16, str16
			lenSize = 2
		case 0xc6, 0xdb: // bin32, str32
			lenSize = 4
		case 0xc7: // ext8: length, type, data
			lenSize, size, kind = 1, 1, msgpackExt
		case 0xc8: // ext16
			lenSize, size, kind = 2, 1, msgpackExt
		case 0xc9: // ext32
			lenSize, size, kind = 4, 1, msgpackExt
		case 0xcc, 0xd0: // uint8, int8
			size = 1
		case 0xcd, 0xd1: // uint16, int16
			size = 2
		case 0xca, 0xce, 0xd2: // float32, uint32, int32
			size = 4
		case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
			size = 8
		case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext1, 2, 4, 8, 16: type, data
			size, kind = 1+1<<(c-0xd4), msgpackExt
		case 0xdc: // array16
			lenSize, per = 2, 1
		case 0xdd: // array32
			lenSize, per = 4, 1
		case 0xde: // map16
			lenSize, per = 2, 2
		case 0xdf: // map32
			lenSize, per = 4, 2
		}
	}
	if lenSize > 0 {
		if len(data)-i < lenSize {
			return 0, 0, 0, errMsgpackTruncated(len(data))
		}
		var n uint64
		switch lenSize {
		case 1:
			n = uint64(data[i])
		case 2:
			n = uint64(binary.BigEndian.Uint16(data[i:]))
		default:
			n = uint64(binary.BigEndian.Uint32(data[i:]))
		}
		i += lenSize
		if per > 0 {
			return i, per * n, msgpackContainer, nil
		}
		size += n
	}
	if left := uint64(len(data) - i); size > left {
		return 0, 0, 0, fmt.Errorf("%d bytes announced at byte %d, only %d left", size, i, left)
	}
	return i + int(size), 0, kind, nil
}

func errMsgpackTruncated(at int) error {
	return fmt.Errorf("truncated at byte %d", at)
}
