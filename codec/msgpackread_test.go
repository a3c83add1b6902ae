package codec

import (
	"bytes"
	"encoding/binary"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// TestCheckMsgpackGuards checks the guards checkMsgpack finds: ReadByte is
// refused at the start of every extension payload but an interned string's
// one-byte index, after which Read is refused.
func TestCheckMsgpackGuards(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want []msgpackGuard
	}{
		{"no extension", []byte("\x92\x01\xa1a"), nil},
		{"ext8 of 0 bytes", []byte("\xc7\x00\x26"), nil},
		{"fixext1", []byte("\xd4\x05\xdf"), []msgpackGuard{{at: 2}}},
		{"fixext1 interned index", []byte("\xd4\x80\xdf"), []msgpackGuard{{at: 3, read: true}}},
		{"ext8 of 1 byte interned index", []byte("\xc7\x01\x80\x05"), []msgpackGuard{{at: 4, read: true}}},
		{"fixext2 interned index", []byte("\xd5\x80\x01\x00"), []msgpackGuard{{at: 2}}},
		{"time (fixext4)", []byte("\xd6\xff\x00\x00\x00\x01"), []msgpackGuard{{at: 2}}},
		{"time (ext8 of 12 bytes)", append([]byte("\xc7\x0c\xff"), make([]byte, 12)...), []msgpackGuard{{at: 3}}},
		{"ext16", []byte("\xc8\x00\x02\x01\x00\x00"), []msgpackGuard{{at: 4}}},
		{"ext32", []byte("\xc9\x00\x00\x00\x02\x01\x00\x00"), []msgpackGuard{{at: 6}}},
		{"in an array, then trailing bytes", []byte("\x93\xd4\x80\x01\xd5\x01\x00\x00\xc0\xd4\x01\x00"), []msgpackGuard{{at: 4, read: true}, {at: 6}}},
	}
	for _, tt := range tests {
		n, got, err := checkMsgpack(tt.data, nil, true)
		if err != nil {
			t.Fatalf("%s: checkMsgpack(% x): %v", tt.name, tt.data, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: checkMsgpack(% x) = %d, guards %v; want guards %v", tt.name, tt.data, n, got, tt.want)
		}
	}
}

// TestCheckMsgpackRegrouped checks that a value with an extension msgpack
// may read as a map that takes the items after it, fails for a deep type
// when it has more than maxMsgpackDepth arrays and maps, and only then.
func TestCheckMsgpackRegrouped(t *testing.T) {
	many := func(tail string) []byte { // maxMsgpackDepth empty arrays and tail's 2 items in an array
		b := binary.BigEndian.AppendUint32([]byte{0xdd}, maxMsgpackDepth+2)
		b = append(b, bytes.Repeat([]byte{0x90}, maxMsgpackDepth)...)
		return append(b, tail...)
	}
	tests := []struct {
		name     string
		data     []byte
		deepFail bool
	}{
		{"ext of 0 bytes then an empty map", many("\xc7\x00\x01\x80"), true},
		{"ext of 0 bytes then nil", many("\xc7\x00\x01\xc0"), true},
		{"ext of 0 bytes then map16", many("\xc7\x00\x01\xde\x00\x00"), true},
		{"ext of 0 bytes then a string", many("\xc7\x00\x01\xa0"), false},
		{"ext of 0 bytes last", many("\x90\xc7\x00\x01"), false},
		{"interned index fixmap", many("\xd4\x80\x81\xc0"), true},
		{"interned index empty fixmap", many("\xd4\x80\x80\xc0"), false},
		{"fixext1 fixmap of another type", many("\xd4\x01\x81\xc0"), false},
		{"few arrays", []byte("\x92\xc7\x00\x01\x80"), false},
	}
	for _, tt := range tests {
		if _, _, err := checkMsgpack(tt.data, nil, false); err != nil {
			t.Errorf("%s: checkMsgpack(..., deep false): %v", tt.name, err)
		}
		if _, _, err := checkMsgpack(tt.data, nil, true); (err != nil) != tt.deepFail {
			t.Errorf("%s: checkMsgpack(..., deep true): got error %v; want an error: %t", tt.name, err, tt.deepFail)
		}
	}
}

// TestMsgpackReader checks that the reader reads as bytes.Reader does, but
// for the reads its guards refuse.
func TestMsgpackReader(t *testing.T) {
	var r msgpackReader
	r.reset([]byte{0, 1, 2, 3, 4, 5}, []msgpackGuard{{at: 2}, {at: 4, read: true}})
	if c, err := r.ReadByte(); c != 0 || err != nil {
		t.Fatalf("ReadByte at 0: got %d, %v; want 0, nil", c, err)
	}
	if b, err := io.ReadAll(io.LimitReader(&r, 1)); string(b) != "\x01" || err != nil {
		t.Fatalf("Read at 1: got % x, %v; want 01, nil", b, err)
	}
	if _, err := r.ReadByte(); err == nil {
		t.Fatalf("ReadByte at 2: got no error; want one (guard)")
	}
	b := make([]byte, 2)
	if n, err := r.Read(b); n != 2 || err != nil || string(b) != "\x02\x03" {
		t.Fatalf("Read at 2: got %d, % x, %v; want 2, 02 03, nil", n, b, err)
	}
	if err := r.UnreadByte(); err != nil {
		t.Fatalf("UnreadByte at 4: %v", err)
	}
	if err := r.UnreadByte(); err != nil {
		t.Fatalf("UnreadByte at 3: %v", err)
	}
	if _, err := r.ReadByte(); err == nil {
		t.Fatalf("ReadByte at 2 again: got no error; want one (guard)")
	}
	r.pos = 4
	if n, err := r.Read(b); n != 0 || err == nil {
		t.Fatalf("Read at 4: got %d, %v; want 0 and an error (guard)", n, err)
	}
	if c, err := r.ReadByte(); c != 4 || err != nil {
		t.Fatalf("ReadByte at 4: got %d, %v; want 4, nil", c, err)
	}
	if n, err := r.Read(b); n != 1 || err != nil {
		t.Fatalf("Read at 5: got %d, %v; want 1, nil", n, err)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("ReadByte at the end: got %v; want io.EOF", err)
	}
	if n, err := r.Read(b); n != 0 || err != io.EOF {
		t.Fatalf("Read at the end: got %d, %v; want 0, io.EOF", n, err)
	}
	r.reset(nil, nil)
	if err := r.UnreadByte(); err == nil {
		t.Fatalf("UnreadByte at 0: got no error; want one")
	}
}

type (
	flatRecord struct {
		Tags  map[string]string
		Items []map[string]any
		T     time.Time
		next  *flatRecord // unexported: msgpack does not decode it
	}
	treeOfMaps    map[string]treeOfMaps
	listOfLists   []listOfLists
	nodeWithAttrs struct {
		Kids  []*nodeWithAttrs
		Attrs map[string]int
	}
	selfDecoding struct{ N int }
)

func (s *selfDecoding) DecodeMsgpack(d *msgpack.Decoder) error {
	n, err := d.DecodeInt()
	s.N = n
	return err
}

func TestNestsThroughMaps(t *testing.T) {
	_ = flatRecord{next: &flatRecord{}} // a cycle msgpack does not follow
	tests := []struct {
		typ  reflect.Type
		want bool
	}{
		{reflect.TypeFor[any](), false},
		{reflect.TypeFor[map[string]any](), false},
		{reflect.TypeFor[[]map[string][]map[int]string](), false},
		{reflect.TypeFor[flatRecord](), false},
		{reflect.TypeFor[listOfLists](), false}, // no map
		{reflect.TypeFor[msgpack.RawMessage](), false},
		{reflect.TypeFor[time.Time](), false},
		{reflect.TypeFor[treeOfMaps](), true},
		{reflect.TypeFor[nodeWithAttrs](), true},
		{reflect.TypeFor[*nodeWithAttrs](), true},
		{reflect.TypeFor[[]selfDecoding](), true},
	}
	for _, tt := range tests {
		if got := nestsThroughMaps(tt.typ); got != tt.want {
			t.Errorf("nestsThroughMaps(%v): got %t; want %t", tt.typ, got, tt.want)
		}
	}
}
