package codec

import (
	"encoding/binary"
	"fmt"
)

// maxMsgpackDepth bounds how deeply the arrays and maps of a MessagePack
// value may nest, as encoding/json bounds JSON. The msgpack decoder recurses
// once per level, also to skip fields the type does not have, and a
// goroutine stack overflow is fatal.
const maxMsgpackDepth = 10000

// checkMsgpack walks the MessagePack value at the start of data without
// decoding it and returns its length. It fails when the value is truncated,
// holds the never-used code 0xc1, claims a string, binary or extension
// longer than the bytes left, claims more array or map items than there are
// bytes left (each item takes at least one), or nests deeper than
// maxMsgpackDepth. A value that passes cannot make the msgpack decoder
// allocate more than in proportion to len(data), nor recurse without bound.
// Bytes after the value are not looked at.
//
// It does not allocate unless the value holds more than maxMsgpackDepth
// arrays and maps, when it takes a second walk to measure their nesting.
func checkMsgpack(data []byte) (int, error) {
	pending := uint64(1) // items announced and not yet walked
	containers := 0
	i := 0
	for pending > 0 {
		pending--
		next, items, container, err := msgpackItem(data, i)
		if err != nil {
			return 0, err
		}
		i = next
		if container {
			containers++
			pending += items
			if pending > uint64(len(data)-i) {
				return 0, fmt.Errorf("%d items pending at byte %d, only %d bytes left", pending, i, len(data)-i)
			}
		}
	}
	if containers > maxMsgpackDepth {
		if err := checkMsgpackDepth(data); err != nil {
			return 0, err
		}
	}
	return i, nil
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

// msgpackItem reads the header of the item at data[i:], as the MessagePack
// specification lays it out, and returns where the next item starts: past
// the payload of a scalar, string, binary or extension, or past the header
// of an array or map, whose items (keys and values for a map) follow it.
func msgpackItem(data []byte, i int) (next int, items uint64, container bool, err error) {
	if i >= len(data) {
		return 0, 0, false, errMsgpackTruncated(i)
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
		return i, 0, false, nil
	case c <= 0x8f: // fixmap
		return i, 2 * uint64(c&0x0f), true, nil
	case c <= 0x9f: // fixarray
		return i, uint64(c & 0x0f), true, nil
	case c <= 0xbf: // fixstr
		size = uint64(c & 0x1f)
	default:
		switch c {
		case 0xc0, 0xc2, 0xc3: // nil, false, true
			return i, 0, false, nil
		case 0xc1:
			return 0, 0, false, fmt.Errorf("invalid code 0xc1 at byte %d", i-1)
		case 0xc4, 0xd9: // bin8, str8
			lenSize = 1
		case 0xc5, 0xda: // bin16, str16
			lenSize = 2
		case 0xc6, 0xdb: // bin32, str32
			lenSize = 4
		case 0xc7: // ext8: length, type, data
			lenSize, size = 1, 1
		case 0xc8: // ext16
			lenSize, size = 2, 1
		case 0xc9: // ext32
			lenSize, size = 4, 1
		case 0xcc, 0xd0: // uint8, int8
			size = 1
		case 0xcd, 0xd1: // uint16, int16
			size = 2
		case 0xca, 0xce, 0xd2: // float32, uint32, int32
			size = 4
		case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
			size = 8
		case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext1, 2, 4, 8, 16: type, data
			size = 1 + 1<<(c-0xd4)
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
			return 0, 0, false, errMsgpackTruncated(len(data))
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
			return i, per * n, true, nil
		}
		size += n
	}
	if left := uint64(len(data) - i); size > left {
		return 0, 0, false, fmt.Errorf("%d bytes announced at byte %d, only %d left", size, i, left)
	}
	return i + int(size), 0, false, nil
}

func errMsgpackTruncated(at int) error {
	return fmt.Errorf("truncated at byte %d", at)
}
