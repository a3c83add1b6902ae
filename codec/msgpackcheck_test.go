package codec

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatalf("msgpack.Marshal(%T): %v", v, err)
	}
	return b
}

// nested returns depth arrays of one item each around nil.
func nested(depth int) []byte {
	return append(bytes.Repeat([]byte{0x91}, depth), 0xc0)
}

func TestCheckMsgpackValid(t *testing.T) {
	big := make([]int, 70000)
	bigMap := make(map[int]bool, 70000)
	for i := range 70000 {
		bigMap[i] = true
	}
	values := []any{
		nil, true, false,
		0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64,
		-1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64,
		int8(-5), int16(300), int32(-70000), uint8(200), uint16(60000), uint32(1 << 31), uint64(math.MaxUint64),
		float32(1.5), 2.5, math.Inf(-1),
		"", "a", strings.Repeat("s", 31), strings.Repeat("s", 32), strings.Repeat("s", 255),
		strings.Repeat("s", 256), strings.Repeat("s", 65535), strings.Repeat("s", 65536),
		[]byte{}, []byte{1}, make([]byte, 255), make([]byte, 256), make([]byte, 65536),
		[]int{}, make([]int, 15), make([]int, 16), make([]int, 65535), big,
		map[string]int{}, map[int]int{1: 2}, make(map[int]bool, 15), map[string][]any{"a": {1, "b", nil, []any{}}},
		bigMap,
		time.Unix(1, 0), time.Unix(1<<33, 5), time.Unix(1<<40, 5).UTC(),
		struct {
			ID   int64
			Tags []string
			M    map[string]float64
			T    time.Time
			P    *int
		}{ID: 1, Tags: []string{"x"}, M: map[string]float64{"y": 1}, T: time.Unix(0, 1)},
	}
	for _, v := range values {
		checkValid(t, mustMarshal(t, v))
	}
	// Encodings msgpack.Marshal does not produce for the values above: every
	// extension size, and the nesting depth at the bound.
	raw := [][]byte{
		{0xd4, 1, 0}, {0xd5, 1, 0, 0}, {0xd6, 1, 0, 0, 0, 0}, append([]byte{0xd7, 1}, make([]byte, 8)...),
		append([]byte{0xd8, 1}, make([]byte, 16)...),
		{0xc7, 0, 1}, {0xc7, 2, 1, 0, 0}, {0xc8, 0, 2, 1, 0, 0}, {0xc9, 0, 0, 0, 1, 1, 0},
		{0xc4, 0}, {0xc5, 0, 1, 0}, {0xc6, 0, 0, 0, 1, 0}, {0xd9, 1, 'x'}, {0xda, 0, 0}, {0xdb, 0, 0, 0, 0},
		{0xdc, 0, 1, 0xc0}, {0xdd, 0, 0, 0, 1, 0xc0}, {0xde, 0, 1, 0xc0, 0xc0}, {0xdf, 0, 0, 0, 1, 0xc0, 0xc0},
		{0xca, 0, 0, 0, 0}, {0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, {0xcc, 0}, {0xd0, 0}, {0xcd, 0, 0}, {0xd1, 0, 0},
		{0xce, 0, 0, 0, 0}, {0xd2, 0, 0, 0, 0}, {0xcf, 0, 0, 0, 0, 0, 0, 0, 0}, {0xd3, 0, 0, 0, 0, 0, 0, 0, 0},
		nested(maxMsgpackDepth),
	}
	for _, b := range raw {
		checkValid(t, b)
	}
}

// checkValid checks that checkMsgpack accepts the valid encoding b, with
// and without trailing bytes, and finds its length; and that it rejects
// every truncation of b.
func checkValid(t *testing.T, b []byte) {
	t.Helper()
	for _, data := range [][]byte{b, append(b[:len(b):len(b)], 0xc1, 0xdd)} {
		n, _, err := checkMsgpack(data, nil, true)
		if err != nil || n != len(b) {
			t.Fatalf("checkMsgpack(% x...): got %d, %v; want %d, nil", head(data), n, err, len(b))
		}
	}
	cuts := []int{0, len(b) - 1, len(b) / 2}
	if len(b) < 64 {
		cuts = cuts[:0]
		for i := range len(b) {
			cuts = append(cuts, i)
		}
	}
	for _, cut := range cuts {
		if n, _, err := checkMsgpack(b[:cut], nil, true); err == nil {
			t.Fatalf("checkMsgpack(% x...) cut at %d of %d: got %d, nil; want an error", head(b), cut, len(b), n)
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }

func TestCheckMsgpackInvalid(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"never used code", []byte{0xc1}},
		{"never used code in array", []byte{0x92, 0x01, 0xc1}},
		{"str8 length missing", []byte{0xd9}},
		{"str16 length short", []byte{0xda, 0x00}},
		{"str32 length short", []byte{0xdb, 0, 0, 0}},
		{"fixstr longer than input", []byte{0xa3, 'a', 'b'}},
		{"str8 longer than input", []byte{0xd9, 3, 'a', 'b'}},
		{"str32 huge", []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}},
		{"bin32 huge", []byte{0xc6, 0x7f, 0xff, 0xff, 0xff}},
		{"ext8 type missing", []byte{0xc7, 0}},
		{"ext32 huge", []byte{0xc9, 0xff, 0xff, 0xff, 0xff, 1, 0}},
		{"fixext16 short", append([]byte{0xd8, 1}, make([]byte, 15)...)},
		{"float64 short", []byte{0xcb, 0, 0, 0, 0, 0, 0, 0}},
		{"int64 short", []byte{0xd3, 0, 0}},
		{"fixarray short", []byte{0x93, 1, 2}},
		{"fixmap value missing", []byte{0x81, 0xa1, 'a'}},
		{"array32 huge", []byte{0xdd, 0x7f, 0xff, 0xff, 0xff, 0xc0}},
		{"map32 huge", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0}},
		{"map16 of more pairs than bytes allow", []byte{0xde, 0, 3, 1, 2, 3, 4}},
		{"huge array nested", []byte{0x92, 0x91, 0xdd, 0, 0, 1, 0, 0xc0, 0xc0}},
		{"struct with huge slice", []byte("\x82\xa2ID\x01\xa3IDs\xdd\x7f\xff\xff\xff")},
		{"map with huge slice", []byte("\x81\xa3a\x86\x91\xdd^\x8f\xfb\x01")},
		{"nested too deep", nested(maxMsgpackDepth + 1)},
		{"nested too deep in a map", append([]byte{0x81, 0xa1, 'x'}, nested(maxMsgpackDepth+1)...)},
	}
	for _, tt := range tests {
		if n, _, err := checkMsgpack(tt.data, nil, true); err == nil {
			t.Errorf("%s: checkMsgpack(% x...): got %d, nil; want an error", tt.name, head(tt.data), n)
		}
	}
}

// TestCheckMsgpackSkip checks that checkMsgpack agrees with the msgpack
// decoder's Skip on every code byte, followed by a few bytes.
func TestCheckMsgpackSkip(t *testing.T) {
	tails := [][]byte{nil, {0}, {1}, {0, 0}, {0, 1, 0xc0}, {0, 0, 0, 1, 0xc0, 0xc0}, bytes.Repeat([]byte{2}, 20)}
	for c := range 256 {
		for _, tail := range tails {
			checkSkip(t, append([]byte{byte(c)}, tail...))
		}
	}
}

// checkSkip checks that checkMsgpack accepts data if and only if
// msgpack.Decoder.Skip does, with the same length.
func checkSkip(t *testing.T, data []byte) {
	t.Helper()
	r := bytes.NewReader(data)
	skipErr := msgpack.NewDecoder(r).Skip()
	skipped := len(data) - r.Len()
	n, _, err := checkMsgpack(data, nil, true)
	if (err == nil) != (skipErr == nil) || err == nil && n != skipped {
		t.Fatalf("checkMsgpack(% x): got %d, %v; Skip: %d, %v", head(data), n, err, skipped, skipErr)
	}
}

func FuzzCheckMsgpackSkip(f *testing.F) {
	f.Add([]byte{0x92, 0xa1, 'a', 0xc0})
	f.Add([]byte("\x81\xa3a\x86\x91\xdd^\x8f\xfb\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxMsgpackDepth {
			return // Skip has no bound on nesting
		}
		checkSkip(t, data)
	})
}

// FuzzCheckMsgpackMarshal checks that checkMsgpack accepts whatever
// msgpack.Marshal makes of a value built from the fuzzer's bytes.
func FuzzCheckMsgpackMarshal(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte{11, 2, 12, 1, 6, 3, 200, 9, 2, 5})
	f.Fuzz(func(t *testing.T, seed []byte) {
		g := &valueGen{b: seed}
		b := mustMarshal(t, g.value(0))
		if n, _, err := checkMsgpack(b, nil, true); err != nil || n != len(b) {
			t.Fatalf("checkMsgpack(Marshal(...) = % x...): got %d, %v; want %d, nil", head(b), n, err, len(b))
		}
	})
}

// valueGen builds a value of any shape msgpack encodes from bytes.
type valueGen struct{ b []byte }

func (g *valueGen) byte() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

func (g *valueGen) uint64() uint64 {
	var n uint64
	for range g.byte() % 9 {
		n = n<<8 | uint64(g.byte())
	}
	return n
}

// length returns a length that is small, or past a size boundary of the
// msgpack encoding.
func (g *valueGen) length() int {
	switch g.byte() % 8 {
	case 0:
		return 16 + int(g.byte())
	case 1:
		return 256 + int(g.byte())
	case 2:
		if g.byte()%4 == 0 {
			return 65536 + int(g.byte())
		}
	}
	return int(g.byte() % 16)
}

func (g *valueGen) value(depth int) any {
	k := g.byte() % 16
	if depth > 4 && k >= 12 {
		k %= 12
	}
	switch k {
	case 0:
		return nil
	case 1:
		return g.byte()%2 == 0
	case 2:
		return int64(g.uint64())
	case 3:
		return g.uint64()
	case 4:
		return int8(g.byte())
	case 5:
		return math.Float32frombits(uint32(g.uint64()))
	case 6:
		return math.Float64frombits(g.uint64())
	case 7:
		return strings.Repeat(string(rune('a'+g.byte()%26)), g.length())
	case 8:
		return bytes.Repeat([]byte{g.byte()}, g.length())
	case 9:
		return time.Unix(int64(g.uint64()>>30), int64(g.byte())*3)
	case 10:
		return uint16(g.uint64())
	case 11:
		return int32(g.uint64())
	case 12, 13:
		a := make([]any, g.length())
		for i := range a {
			a[i] = g.value(depth + 1)
		}
		return a
	default:
		n := g.length()
		m := make(map[string]any, n)
		for i := range n {
			m[strings.Repeat("k", i%40)+string(rune('a'+i%26))+string(rune(i))] = g.value(depth + 1)
		}
		return m
	}
}

func BenchmarkCheckMsgpack(b *testing.B) {
	data := mustMarshal(b, struct {
		ID      int64
		Name    string
		Email   string
		Tags    []string
		Enabled bool
	}{42, "ada", "ada@example.com", []string{"a", "b"}, true})
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := checkMsgpack(data, nil, true); err != nil {
			b.Fatal(err)
		}
	}
}
