package codec_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/typedcache/typedcache/codec"
	"github.com/vmihailenco/msgpack/v5"
)

// internedEvent has an interned string, which msgpack writes once and then
// as an index: an extension of type -128, of one byte below 256.
type internedEvent struct {
	Kind string `msgpack:",intern"`
	Tags map[string]string
}

// TestMsgPackInterned checks that interned strings decode, with every
// one-byte index (some of which are map headers) and more arrays and maps
// than the nesting bound.
func TestMsgPackInterned(t *testing.T) {
	events := make([]internedEvent, 12000)
	for i := range events {
		events[i] = internedEvent{Kind: fmt.Sprintf("kind-%03d", i%300), Tags: map[string]string{"i": "x"}}
	}
	roundTrip(t, codec.MsgPack[[]internedEvent](), events)
}

// point is a msgpack extension (type 77) whose payload is three bytes.
type point struct{ X, Y, Z int8 }

func (p *point) MarshalMsgpack() ([]byte, error) {
	return []byte{byte(p.X), byte(p.Y), byte(p.Z)}, nil
}

func (p *point) UnmarshalMsgpack(b []byte) error {
	if len(b) != 3 {
		return fmt.Errorf("point: %d bytes; want 3", len(b))
	}
	p.X, p.Y, p.Z = int8(b[0]), int8(b[1]), int8(b[2])
	return nil
}

// label is a msgpack extension (type 78) whose payload is a MessagePack
// string, which its decoder reads from the msgpack.Decoder.
type label struct{ S string }

func init() {
	msgpack.RegisterExt(77, (*point)(nil))
	msgpack.RegisterExtEncoder(78, label{}, func(_ *msgpack.Encoder, v reflect.Value) ([]byte, error) {
		return msgpack.Marshal(v.Interface().(label).S)
	})
	msgpack.RegisterExtDecoder(78, label{}, func(d *msgpack.Decoder, v reflect.Value, _ int) error {
		s, err := d.DecodeString()
		v.Set(reflect.ValueOf(label{s}))
		return err
	})
}

type withExtensions struct {
	P     *point
	ByKey map[string]*point
	Any   any
}

// TestMsgPackExtensions checks that an extension whose decoder reads its
// payload as bytes decodes, and that one whose decoder reads it as
// MessagePack fails with ErrDecode, as MsgPack documents.
func TestMsgPackExtensions(t *testing.T) {
	roundTrip(t, codec.MsgPack[withExtensions](), withExtensions{
		P:     &point{1, -2, 3},
		ByKey: map[string]*point{"a": {4, 5, 6}},
		Any:   &point{7, 8, 9},
	})

	c := codec.MsgPack[label]()
	data := mustEnc(c, label{"abc"})
	var plain label
	if err := msgpack.Unmarshal(data, &plain); err != nil || plain.S != "abc" {
		t.Fatalf("msgpack.Unmarshal(% x): got %v, %v; want {abc}, nil", data, plain, err)
	}
	if got, err := c.Decode(data); !errors.Is(err, codec.ErrDecode) {
		t.Fatalf("Decode(% x): got %v, %v; want an error matching codec.ErrDecode", data, got, err)
	}
}
