package codec_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/typedcache/typedcache/codec"
	"github.com/vmihailenco/msgpack/v5"
)

// The bound the package documentation promises: Decode of n bytes
// allocates at most allocPerByte*n + allocSlack bytes beyond the size of V,
// for the value types below, whose slice elements, map entries (key and
// value) and pointed-to values take at most 32 bytes.
//
// allocPerByte: the costliest bytes found (TestDecodeMemoryLargeValues
// logs them) are maps of one pair nested in one another, 2 bytes a level
// ("\x81\xa0"), decoded into any: each level allocates a map header (48
// bytes) and a group of 8 slots of 32 bytes with their control bytes, about
// 170 bytes per input byte with what msgpack allocates besides. 256 leaves
// room for the Go runtime's map layout to change, and is far below what a
// trusted length allocates (megabytes to gigabytes for a few bytes).
//
// allocSlack: what a decode allocates whatever its input (a msgpack decoder
// when the pool is empty, which the race detector makes it at random; the
// error and its text), a few KiB.
const (
	allocPerByte = 256
	allocSlack   = 64 << 10
)

// allocLimit returns the most Decode may allocate for n bytes into a V of
// size bytes.
func allocLimit(n int, size uintptr) uint64 {
	return allocPerByte*uint64(n) + allocSlack + uint64(size)
}

// allocated returns the bytes the heap grew by (runtime.MemStats.TotalAlloc)
// while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// decodeMemory decodes data with c, which its name names, and fails t
// unless Decode returns a value or an error wrapping ErrDecode, having
// allocated at most allocLimit. It returns the error and the bytes
// allocated.
func decodeMemory[V any](t *testing.T, name string, c codec.Codec[V], data []byte) (uint64, error) {
	t.Helper()
	what := fmt.Sprintf("%s.Decode(% x...) of %d bytes", name, head(data), len(data))
	decoding.Store(&what)
	defer decoding.Store(nil)
	var err error
	decode := func() { _, err = c.Decode(data) }
	got := allocated(decode)
	limit := allocLimit(len(data), reflect.TypeFor[V]().Size())
	for range 2 {
		if got <= limit {
			break
		}
		// Another goroutine may have allocated meanwhile: measure again.
		got = min(got, allocated(decode))
	}
	if err != nil && !errors.Is(err, codec.ErrDecode) {
		t.Errorf("%s: got error %v; want nil or one matching codec.ErrDecode", what, err)
	}
	if got > limit {
		t.Errorf("%s: allocated %d bytes; want at most %d", what, got, limit)
	}
	return got, err
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }

// A memDecoder decodes bytes into one type with one codec and checks
// decodeMemory's bound.
type memDecoder struct {
	name   string
	decode func(t *testing.T, data []byte) (uint64, error)
	warm   func() // decodes the encoding of the zero value
}

func memCase[V any](name string, c codec.Codec[V]) memDecoder {
	return memDecoder{
		name:   name,
		decode: func(t *testing.T, data []byte) (uint64, error) { return decodeMemory(t, name, c, data) },
		warm: func() {
			var zero V
			if b, err := c.Encode(zero); err == nil {
				_, _ = c.Decode(b) // builds msgpack's decoders for V, once
			}
		},
	}
}

// The value types the memory tests decode into. Their slice elements, map
// entries and pointed-to values take at most 32 bytes.
type (
	// memMaps has maps of the kinds that corrupt bytes made msgpack
	// allocate gigabytes for.
	memMaps struct {
		A map[string]any
		S map[string]string
		I map[string]int
		L []any
	}
	// memSmall is a struct of 32 bytes.
	memSmall struct {
		ID int32
		S  string
		M  map[string]int
	}
	memNested struct {
		In    memMaps
		P     *memSmall
		List  []memSmall
		ByKey map[string]*memSmall
		T     time.Time
		Raw   msgpack.RawMessage
		B     []byte
		Names []string
		Arr   [4]int32
	}
	// memTree and memChain recurse through maps, where msgpack v5.4.1
	// reads an extension as a map.
	memTree  map[string]memTree
	memChain []map[string]memChain
	memNode  struct {
		Kids  []*memNode
		Attrs map[string]string
	}
	// memInterned has interned strings, which msgpack writes as
	// extensions of type -128 and reads with ReadByte.
	memInterned struct {
		S    string `msgpack:",intern"`
		M    map[string]string
		Next *memInterned
	}
	memInternedAny struct {
		A    any `msgpack:",intern"`
		M    map[string]any
		Next *memInternedAny
	}
)

// msgpackMemDecoders are the types MsgPack decodes in the memory tests.
var msgpackMemDecoders = []memDecoder{
	memCase("MsgPack[any]", codec.MsgPack[any]()),
	memCase("MsgPack[map[string]any]", codec.MsgPack[map[string]any]()),
	memCase("MsgPack[map[string]string]", codec.MsgPack[map[string]string]()),
	memCase("MsgPack[map[string]int]", codec.MsgPack[map[string]int]()),
	memCase("MsgPack[[]any]", codec.MsgPack[[]any]()),
	memCase("MsgPack[[]string]", codec.MsgPack[[]string]()),
	memCase("MsgPack[[]int64]", codec.MsgPack[[]int64]()),
	memCase("MsgPack[[]map[string]int]", codec.MsgPack[[]map[string]int]()),
	memCase("MsgPack[memMaps]", codec.MsgPack[memMaps]()),
	memCase("MsgPack[*memMaps]", codec.MsgPack[*memMaps]()),
	memCase("MsgPack[memNested]", codec.MsgPack[memNested]()),
	memCase("MsgPack[memTree]", codec.MsgPack[memTree]()),
	memCase("MsgPack[map[string]memChain]", codec.MsgPack[map[string]memChain]()),
	memCase("MsgPack[memNode]", codec.MsgPack[memNode]()),
	memCase("MsgPack[memInterned]", codec.MsgPack[memInterned]()),
	memCase("MsgPack[memInternedAny]", codec.MsgPack[memInternedAny]()),
	memCase("MsgPack[time.Time]", codec.MsgPack[time.Time]()),
	memCase("MsgPack[[]time.Time]", codec.MsgPack[[]time.Time]()),
	memCase("MsgPack[[8]int64]", codec.MsgPack[[8]int64]()),
	memCase("MsgPack[[]byte]", codec.MsgPack[[]byte]()),
	memCase("MsgPack[string]", codec.MsgPack[string]()),
	memCase("MsgPack[RawMessage]", codec.MsgPack[msgpack.RawMessage]()),
	memCase("MsgPack[level]", codec.MsgPack[level]()),
}

// otherMemDecoders are the other codecs of the package, and JSON into the
// types above.
var otherMemDecoders = []memDecoder{
	memCase("JSON[any]", codec.JSON[any]()),
	memCase("JSON[map[string]any]", codec.JSON[map[string]any]()),
	memCase("JSON[memMaps]", codec.JSON[memMaps]()),
	memCase("JSON[memNested]", codec.JSON[memNested]()),
	memCase("JSON[memTree]", codec.JSON[memTree]()),
	memCase("JSON[[]any]", codec.JSON[[]any]()),
	memCase("JSON[time.Time]", codec.JSON[time.Time]()),
	memCase("String", codec.String()),
	memCase("Bytes", codec.Bytes()),
	memCase("Int[int64]", codec.Int[int64]()),
	memCase("Int[int8]", codec.Int[int8]()),
	memCase("Uint[uint64]", codec.Uint[uint64]()),
	memCase("Float[float64]", codec.Float[float64]()),
	memCase("Float[float32]", codec.Float[float32]()),
	memCase("Bool", codec.Bool()),
	memCase("Default[count]", codec.Default[count]()),
	memCase("Default[small]", codec.Default[small]()),
	memCase("Default[port]", codec.Default[port]()),
	memCase("Default[ratio]", codec.Default[ratio]()),
	memCase("Default[flag]", codec.Default[flag]()),
	memCase("Default[name]", codec.Default[name]()),
	memCase("Default[raw]", codec.Default[raw]()),
	memCase("Default[time.Duration]", codec.Default[time.Duration]()),
}

// checkDecodeMemory decodes data with every decoder of decs, checking the
// bound of decodeMemory.
func checkDecodeMemory(t *testing.T, decs []memDecoder, data []byte) {
	t.Helper()
	for _, d := range decs {
		d.warm()
		d.decode(t, data)
	}
}

// corruptMsgpack are MessagePack values on which msgpack v5.4.1, given the
// bytes as Decode gave them before it guarded the decoder, read and trusted
// a length the check had not walked, allocating megabytes to gigabytes.
// mustFail marks those that fail into each type of mustFailInto.
var corruptMsgpack = []struct {
	name     string
	data     []byte
	mustFail bool
}{
	// An extension of zero bytes (type 0x26), then a map of 2^32 pairs:
	// the check stopped after the extension, and msgpack, reading the
	// extension where it expects a map, takes the map after it.
	{"ext8 of 0 bytes then map32", []byte("\xc7\x00\x26\xdf\xff\xff\xff\xff"), true},
	{"ext16 of 0 bytes then map32", []byte("\xc8\x00\x00\x26\xdf\xff\xff\xff\xff"), true},
	{"ext32 of 0 bytes then map32", []byte("\xc9\x00\x00\x00\x00\x26\xdf\xff\xff\xff\xff"), true},
	{"ext8 of 0 bytes then map16", []byte("\xc7\x00\x26\xde\xff\xff"), true},
	// The same as the value of a field or key.
	{"field A: ext8 of 0 bytes then map32", []byte("\x81\xa1A\xc7\x00\x26\xdf\xff\xff\xff\xff"), true},
	{"field S: ext8 of 0 bytes then map32", []byte("\x81\xa1S\xc7\x00\x26\xdf\xff\xff\xff\xff"), true},
	{"field I: ext8 of 0 bytes then map32", []byte("\x81\xa1I\xc7\x00\x26\xdf\xff\xff\xff\xff"), true},
	{"value of key \"\": ext8 of 0 bytes then map32", []byte("\x81\xa0\xc7\x00\x26\xdf\xff\xff\xff\xff"), false},
	{"field In.A: ext8 of 0 bytes then map32", []byte("\x81\xa2In\x81\xa1A\xc7\x00\x26\xdf\xff\xff\xff\xff"), false},
	{"element: ext8 of 0 bytes then map32", []byte("\x91\xc7\x00\x26\xdf\xff\xff\xff\xff"), true},
	// msgpack reads the map header from the payload of the extension,
	// a time.Time's nanoseconds for one.
	{"fixext1 holding map32", []byte("\xd4\x00\xdf\xff\xff\xff\xff"), true},
	{"fixext4 holding map32, then a byte", []byte("\xd6\xff\xdf\xff\xff\xff\xff"), false},
	{"fixext8 (a time) holding map32", []byte("\xd7\xff\xdf\xff\xff\xff\xff\x00\x00\x00"), false},
	{"field A: fixext8 holding map32", []byte("\x81\xa1A\xd7\xff\xdf\xff\xff\xff\xff\x00\x00\x00"), false},
	{"field S: fixext8 holding map16", []byte("\x81\xa1S\xd7\xff\xde\xff\xff\x00\x00\x00\x00\x00"), false},
	{"ext8 holding map32", []byte("\xc7\x05\x01\xdf\xff\xff\xff\xff"), true},
	{"fixext16 holding fixmap of array32", []byte("\xd8\x01\x81\xa0\xdd\x7f\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00"), true},
	// An interned string's index (type -128) that is a map16 header: the
	// length msgpack reads is the item after it.
	{"interned index map16 then fixmap", []byte("\x92\xd4\x80\xde\x81\xa0\xc0"), true},
	{"field I: interned index map16 then str", []byte("\x82\xa1I\xd4\x80\xde\xa1S\x80"), true},
}

// mustFailInto names the decoders into which the corrupt values marked
// mustFail must fail: they encode no value of those types.
var mustFailInto = map[string]bool{
	"MsgPack[any]":               true,
	"MsgPack[map[string]any]":    true,
	"MsgPack[map[string]string]": true,
	"MsgPack[map[string]int]":    true,
	"MsgPack[[]any]":             true,
	"MsgPack[memMaps]":           true,
}

// TestMsgPackCorruptMemory checks that the corrupt values above decode into
// every type (they are valid for some: a time, a RawMessage) or fail with
// ErrDecode, allocating at most allocLimit; those marked mustFail fail. It
// runs in a child process under a memory cap: without the check, some of
// them exhaust the memory.
func TestMsgPackCorruptMemory(t *testing.T) {
	if !underMemoryCap(t) {
		return
	}
	for _, tt := range corruptMsgpack {
		for _, d := range msgpackMemDecoders {
			d.warm()
			got, err := d.decode(t, tt.data)
			if err == nil && tt.mustFail && mustFailInto[d.name] {
				t.Errorf("%s: %s decoded; want an error matching codec.ErrDecode (allocated %d bytes)", tt.name, d.name, got)
			}
		}
	}
}

// msgpackMemorySeeds are the seed corpus of FuzzMsgPackDecodeMemory: the
// corrupt values above, and valid encodings of the types it decodes into.
func msgpackMemorySeeds() [][]byte {
	seeds := make([][]byte, 0, len(corruptMsgpack)+16)
	for _, tt := range corruptMsgpack {
		seeds = append(seeds, tt.data)
	}
	small := &memSmall{ID: 7, S: "seven", M: map[string]int{"a": 1}}
	when := time.Date(2024, 5, 6, 7, 8, 9, 540_000_000, time.UTC) // nanoseconds start with 0x80
	nested := memNested{
		In:    memMaps{A: map[string]any{"x": []any{1, "y", nil}}, S: map[string]string{"k": "v"}, I: map[string]int{"n": 2}, L: []any{map[string]any{"z": 1.5}}},
		P:     small,
		List:  []memSmall{*small},
		ByKey: map[string]*memSmall{"s": small},
		T:     when,
		Raw:   msgpack.RawMessage("\x92\x01\xa1a"),
		B:     []byte{1, 2},
		Names: []string{"a", "b"},
		Arr:   [4]int32{1, 2, 3, 4},
	}
	interned := memInterned{S: "abc", M: map[string]string{"abc": "abc"}, Next: &memInterned{S: "abc"}}
	internedAny := memInternedAny{A: "abcd", M: map[string]any{"k": "abcd"}, Next: &memInternedAny{A: "abcd"}}
	seeds = append(seeds,
		mustEnc(codec.MsgPack[memNested](), nested),
		mustEnc(codec.MsgPack[memTree](), memTree{"a": {"b": {}}, "c": nil}),
		mustEnc(codec.MsgPack[map[string]memChain](), map[string]memChain{"a": {{"b": {{}}}}}),
		mustEnc(codec.MsgPack[memNode](), memNode{Kids: []*memNode{{Attrs: map[string]string{"a": "b"}}}}),
		mustEnc(codec.MsgPack[memInterned](), interned),
		mustEnc(codec.MsgPack[memInternedAny](), internedAny),
		mustEnc(codec.MsgPack[[]time.Time](), []time.Time{when, time.Unix(1<<35, 1), {}}),
		mustEnc(codec.MsgPack[any](), any([]any{when, map[string]any{"t": when}})),
		mustEnc(codec.MsgPack[[8]int64](), [8]int64{1, -1, math.MaxInt64}),
	)
	return seeds
}

// FuzzMsgPackDecodeMemory checks that MsgPack decodes any bytes into each
// of the types above, or fails with ErrDecode, allocating at most
// allocLimit. In a normal test run it runs its seed corpus in a child
// process under a memory cap; under go test -fuzz, the fuzzing workers
// cap themselves.
func FuzzMsgPackDecodeMemory(f *testing.F) {
	for _, s := range msgpackMemorySeeds() {
		f.Add(s)
	}
	capped := underMemoryCap(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if !capped {
			return // decoded in the child process
		}
		checkDecodeMemory(t, msgpackMemDecoders, data)
	})
}

// FuzzDecodeMemory checks the bound of FuzzMsgPackDecodeMemory for the
// other codecs of the package.
func FuzzDecodeMemory(f *testing.F) {
	for _, s := range []string{
		`{"A":{"x":[1,"y",null]},"S":{"k":"v"},"I":{"n":2},"L":[{}]}`,
		`[[[[[]]]]]`, `{"a":{"b":{}}}`, `"2024-05-06T07:08:09.54+05:30"`, `"\u00e9\ud83d\ude00"`,
		"-9223372036854775808", "18446744073709551615", "1e308", "0x1p-2", "true", "F", "\xff\xfe", "",
	} {
		f.Add([]byte(s))
	}
	capped := underMemoryCap(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if !capped {
			return // decoded in the child process
		}
		checkDecodeMemory(t, otherMemDecoders, data)
	})
}

// repeatValue returns an array32 header of n items followed by item n
// times.
func repeatValue(n int, item string) []byte {
	b := binary.BigEndian.AppendUint32([]byte{0xdd}, uint32(n))
	for range n {
		b = append(b, item...)
	}
	return b
}

// TestDecodeMemoryLargeValues checks the bound of decodeMemory on large
// valid values made of the costliest items per byte, and logs the bytes
// allocated per input byte.
func TestDecodeMemoryLargeValues(t *testing.T) {
	const n = 1 << 13
	pairs := binary.BigEndian.AppendUint32([]byte{0xdf}, n)
	for range n {
		pairs = append(pairs, 0xa0, 0xc0) // "": nil, n times: one entry, room for n
	}
	deepMaps := append(bytes.Repeat([]byte{0x81, 0xa0}, 9999), 0x80)
	kids := append([]byte("\x81\xa4Kids"), repeatValue(n, "\x80")...)
	jsonMaps := append(append([]byte("["), bytes.Repeat([]byte(`{"":{}},`), n)...), "{}]"...)
	jsonEmpty := append(append([]byte("["), bytes.Repeat([]byte(`{},`), n)...), "{}]"...)
	tests := []struct {
		name string
		data []byte
		decs []memDecoder
	}{
		{"array of empty maps", repeatValue(n, "\x80"), msgpackMemDecoders},
		{"array of maps of one pair", repeatValue(n, "\x81\xa0\xc0"), msgpackMemDecoders},
		{"array of maps of one map", repeatValue(n, "\x81\xa0\x80"), msgpackMemDecoders},
		{"array of empty arrays", repeatValue(n, "\x90"), msgpackMemDecoders},
		{"array of nils", repeatValue(n, "\xc0"), msgpackMemDecoders},
		{"array of times", repeatValue(n, "\xd6\xff\x00\x00\x00\x01"), msgpackMemDecoders},
		{"array of one-byte strings", repeatValue(n, "\xa1a"), msgpackMemDecoders},
		{"map of one key n times", pairs, msgpackMemDecoders},
		{"maps nested 10000 deep", deepMaps, msgpackMemDecoders},
		{"node of empty kids", kids, msgpackMemDecoders},
		{"JSON array of maps of one map", jsonMaps, otherMemDecoders},
		{"JSON array of empty maps", jsonEmpty, otherMemDecoders},
		{"JSON nested 10000 deep", append(bytes.Repeat([]byte("["), 10000), bytes.Repeat([]byte("]"), 10000)...), otherMemDecoders},
		{"text of invalid UTF-8", bytes.Repeat([]byte{0xff}, n), otherMemDecoders},
		{"text of digits", bytes.Repeat([]byte("9"), n), otherMemDecoders},
	}
	for _, tt := range tests {
		worst, worstName := 0.0, ""
		for _, d := range tt.decs {
			d.warm()
			got, _ := d.decode(t, tt.data)
			if r := float64(got) / float64(len(tt.data)); r > worst {
				worst, worstName = r, d.name
			}
		}
		t.Logf("%s (%d bytes): at most %.1f bytes allocated per byte, by %s", tt.name, len(tt.data), worst, worstName)
	}
}

// maxDecodeStack is the most stack a decode may take: nesting is bounded
// at 10000 levels, some hundreds of bytes each.
const maxDecodeStack = 16 << 20

// decodeStack decodes data with c on a new goroutine and returns the
// stack it took (runtime.MemStats.StackInuse, which the goroutine's stack,
// grown and not yet shrunk, adds to) and Decode's error.
func decodeStack[V any](c codec.Codec[V], data []byte) (uint64, error) {
	var before, after runtime.MemStats
	var err error
	done := make(chan struct{})
	runtime.ReadMemStats(&before)
	go func() {
		defer close(done)
		_, err = c.Decode(data)
		runtime.ReadMemStats(&after)
	}()
	<-done
	return after.StackInuse - min(after.StackInuse, before.StackInuse), err
}

// TestDecodeStack checks that values nested as deeply as the check allows
// take at most maxDecodeStack, and that one which msgpack would nest deeper
// than the check sees (extensions of zero bytes it reads as maps, so that
// each map takes the one after it as an item) fails with ErrDecode.
func TestDecodeStack(t *testing.T) {
	// chain is a map whose value is an array that msgpack, into
	// map[string]memChain, reads as [ext+{}, the map after it]: nested
	// k deep, while the check sees a map of k/2 pairs one level deep.
	const k = 50000
	chain := binary.BigEndian.AppendUint32([]byte{0xdf}, k/2)
	link := "\x81\xa0\x92\xc7\x00\x00\x80" // {"": [ext, {}]}
	chain = append(chain, "\xa0\x92\xc7\x00\x00\x80"...)
	for range k - 1 {
		chain = append(chain, link...)
	}
	tests := []struct {
		name    string
		stack   func() (uint64, error)
		wantErr bool
	}{
		{"MsgPack[any] of arrays 10000 deep", func() (uint64, error) {
			return decodeStack(codec.MsgPack[any](), append(bytes.Repeat([]byte{0x91}, 10000), 0xc0))
		}, false},
		{"MsgPack[memTree] of maps 10000 deep", func() (uint64, error) {
			return decodeStack(codec.MsgPack[memTree](), append(bytes.Repeat([]byte{0x81, 0xa0}, 9999), 0x80))
		}, false},
		{"MsgPack[map[string]memChain] of a chain of extensions read as maps", func() (uint64, error) {
			return decodeStack(codec.MsgPack[map[string]memChain](), chain)
		}, true},
		{"JSON[any] of arrays 10000 deep", func() (uint64, error) {
			return decodeStack(codec.JSON[any](), append(bytes.Repeat([]byte("["), 10000), bytes.Repeat([]byte("]"), 10000)...))
		}, false},
	}
	for _, tt := range tests {
		got, err := tt.stack()
		if tt.wantErr != (err != nil) || err != nil && !errors.Is(err, codec.ErrDecode) {
			t.Errorf("%s: got error %v; want an error matching codec.ErrDecode: %t", tt.name, err, tt.wantErr)
		}
		if got > maxDecodeStack {
			t.Errorf("%s: took %d bytes of stack; want at most %d", tt.name, got, maxDecodeStack)
		}
		t.Logf("%s: %d bytes of stack", tt.name, got)
	}
}
