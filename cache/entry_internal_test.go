package cache

import (
	"bytes"
	"errors"
	"testing"

	"github.com/typedcache/typedcache/codec"
)

func TestEntryRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		m       entryMeta
		payload []byte
		size    int
	}{
		{"value", entryMeta{flags: flagValue, written: 1_700_000_000_000, freshUntil: 1_700_000_060_000, id: 42}, []byte("v"), entryHeaderLen + 1},
		{"empty value", entryMeta{flags: flagValue, written: 1, id: 7}, nil, entryHeaderLen},
		{"not found", entryMeta{flags: flagNotFound, written: 1, freshUntil: 2, id: 3}, nil, entryHeaderLen},
		{"lease", entryMeta{flags: flagLease, written: 5, id: 9, leaseEnd: 10_005}, nil, entryLeaseHeaderLen},
		{"value and lease", entryMeta{flags: flagValue | flagLease, written: 5, id: 9, leaseEnd: 10_005}, []byte{0xC1, 0, 1}, entryLeaseHeaderLen + 3},
	}
	for _, tt := range tests {
		b := appendEntry(nil, tt.m, tt.payload)
		if len(b) != tt.size {
			t.Errorf("%s: %d bytes; want %d", tt.name, len(b), tt.size)
		}
		if !isEntry(b) {
			t.Errorf("%s: not an entry", tt.name)
		}
		m, payload, err := parseEntry(b)
		if err != nil {
			t.Fatalf("%s: parse: %v", tt.name, err)
		}
		if m != tt.m || !bytes.Equal(payload, tt.payload) {
			t.Errorf("%s: got %+v %q; want %+v %q", tt.name, m, payload, tt.m, tt.payload)
		}
	}
}

func TestEntryCorrupt(t *testing.T) {
	good := appendEntry(nil, entryMeta{flags: flagValue, written: 1, id: 1}, []byte("v"))
	lease := appendEntry(nil, entryMeta{flags: flagLease, written: 1, id: 1, leaseEnd: 2}, nil)
	mutate := func(b []byte, i int, v byte) []byte {
		c := bytes.Clone(b)
		c[i] = v
		return c
	}
	tests := map[string][]byte{
		"magic only":           {EntryMagic},
		"short header":         good[:10],
		"version 0":            mutate(good, 1, 0),
		"version 2":            mutate(good, 1, 2),
		"no flags":             mutate(good, 2, 0),
		"unknown flag":         mutate(good, 2, 0x81),
		"value and not found":  mutate(good, 2, flagValue|flagNotFound),
		"compressed, no value": mutate(lease, 2, flagLease|flagCompressed),
		"header length short":  mutate(good, 3, 27),
		"header length long":   mutate(good, 3, 200),
		"lease header short":   mutate(lease, 3, entryHeaderLen),
		"bytes after a lease":  append(bytes.Clone(lease), 'x'),
	}
	for name, b := range tests {
		if _, _, err := parseEntry(b); !errors.Is(err, codec.ErrDecode) {
			t.Errorf("%s (% x): got %v; want an error matching codec.ErrDecode", name, b, err)
		}
	}
	// A longer header than version 1's is read: later versions may add
	// fields, which this one skips.
	longer := append(bytes.Clone(good[:entryHeaderLen]), 0, 0, 0, 0, 'v')
	longer[3] = entryHeaderLen + 4
	if _, payload, err := parseEntry(longer); err != nil || string(payload) != "v" {
		t.Errorf("a header with 4 more bytes: got %q, %v; want v", payload, err)
	}
}

// FuzzParseEntry: no input panics or is read past its end, and every
// entry that parses is written back to the same bytes (for headers of the
// length version 1 writes).
func FuzzParseEntry(f *testing.F) {
	f.Add(appendEntry(nil, entryMeta{flags: flagValue, written: 1, freshUntil: 2, id: 3}, []byte("v")))
	f.Add(appendEntry(nil, entryMeta{flags: flagLease | flagValue, written: 1, id: 3, leaseEnd: 4}, []byte{0xC1}))
	f.Add(appendEntry(nil, entryMeta{flags: flagNotFound, written: 1, id: 3}, nil))
	f.Add([]byte{EntryMagic})
	f.Add([]byte{EntryMagic, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if !isEntry(b) {
			return
		}
		m, payload, err := parseEntry(b)
		if err != nil {
			if !errors.Is(err, codec.ErrDecode) {
				t.Fatalf("error %v does not match codec.ErrDecode", err)
			}
			return
		}
		want := entryHeaderLen
		if m.flags&flagLease != 0 {
			want = entryLeaseHeaderLen
		}
		if int(b[3]) != want {
			return // a longer header: its extra bytes are not written back
		}
		if got := appendEntry(nil, m, payload); !bytes.Equal(got, b) {
			t.Fatalf("parse then append: got % x; want % x", got, b)
		}
	})
}
