package memcachestore

import (
	"crypto/rand"
	"strconv"
	"strings"
	"testing"
	"time"
)

func legal(key string) bool {
	if len(key) == 0 || len(key) > maxKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] == 0x7f {
			return false
		}
	}
	return true
}

func TestEncodeKeyPlain(t *testing.T) {
	for _, key := range []string{
		"a",
		"users:42",
		"ns:key-with.punct/uation!@$%^&*()",
		"ключ:日本語",
		"~", "#", "#~", "a~b#c",
		strings.Repeat("k", maxKeyLen),
	} {
		if got := encodeKey(key); got != key {
			t.Errorf("encodeKey(%q) = %q; want the key unchanged", key, got)
		}
	}
}

func TestEncodeKeyEncoded(t *testing.T) {
	for _, key := range []string{
		"",
		"a b",
		"a\r\nflush_all",
		"tab\there",
		"nul\x00",
		"del\x7f",
		"has~#marker",
		"~#",
		strings.Repeat("k", maxKeyLen+1),
		strings.Repeat("日", 200),
		strings.Repeat(" ", 1000),
	} {
		got := encodeKey(key)
		if got == key {
			t.Errorf("encodeKey(%q) left the key unchanged; want it encoded", key)
		}
		if !legal(got) {
			t.Errorf("encodeKey(%q) = %q: not a legal memcached key", key, got)
		}
		if !strings.Contains(got, keyMarker) {
			t.Errorf("encodeKey(%q) = %q: no marker %q", key, got, keyMarker)
		}
		if again := encodeKey(key); again != got {
			t.Errorf("encodeKey(%q) is not deterministic: %q then %q", key, got, again)
		}
	}
	if got, want := encodeKey("a b"), "a_b"+keyMarker; !strings.HasPrefix(got, want) {
		t.Errorf("encodeKey(%q) = %q; want the readable prefix %q", "a b", got, want)
	}
}

func TestEncodeKeys(t *testing.T) {
	plain := []string{"a", "b", "c"}
	if got := encodeKeys(plain); &got[0] != &plain[0] {
		t.Errorf("encodeKeys of plain keys copied the slice; want it returned as is")
	}
	mixed := []string{"a", "b c", "d"}
	got := encodeKeys(mixed)
	want := []string{"a", encodeKey("b c"), "d"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("encodeKeys(%q)[%d] = %q; want %q", mixed, i, got[i], want[i])
		}
	}
	if mixed[1] != "b c" {
		t.Errorf("encodeKeys modified its argument: %q", mixed)
	}
}

func FuzzEncodeKey(f *testing.F) {
	for _, s := range []string{"", "a", "a b", "a\r\nflush_all", "x~#y", strings.Repeat("z", 300)} {
		f.Add(s, s+" ")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ea, eb := encodeKey(a), encodeKey(b)
		if !legal(ea) {
			t.Fatalf("encodeKey(%q) = %q: not a legal memcached key", a, ea)
		}
		if (a == b) != (ea == eb) {
			t.Fatalf("encodeKey(%q) = %q, encodeKey(%q) = %q: distinct keys must encode distinctly", a, ea, b, eb)
		}
		if plainKey(a) != (ea == a) {
			t.Fatalf("encodeKey(%q) = %q: plain=%v", a, ea, plainKey(a))
		}
	})
}

// TestEncodeKeyDistinct checks many random, mostly illegal, keys, including
// long keys that differ only past the readable prefix.
func TestEncodeKeyDistinct(t *testing.T) {
	seen := make(map[string]string)
	add := func(key string) {
		t.Helper()
		e := encodeKey(key)
		if !legal(e) {
			t.Fatalf("encodeKey(%q) = %q: not a legal memcached key", key, e)
		}
		if prev, ok := seen[e]; ok && prev != key {
			t.Fatalf("encodeKey(%q) = encodeKey(%q) = %q", key, prev, e)
		}
		seen[e] = key
	}
	long := strings.Repeat("p", 400)
	for i := range 2000 {
		add(long + strconv.Itoa(i))
		add("k " + strconv.Itoa(i))
		add("k_" + strconv.Itoa(i)) // the readable form of "k " + i, but plain
		var b [12]byte
		_, _ = rand.Read(b[:])
		add(string(b[:]))
	}
	// The encoded form of a key, used as a key, is itself encoded (it holds
	// the marker) and so cannot collide with the key it came from.
	e := encodeKey("a b")
	add(e)
}

// TestProtocolInjection stores values under keys that would be protocol
// commands or several keys if sent as they are.
func TestProtocolInjection(t *testing.T) {
	s, _, k := testStore(t)
	sentinel := k("sentinel")
	mustSet(t, s, sentinel, []byte("still here"), 0)
	keys := []string{
		"a",
		"a\r\nflush_all",
		"a b",
		"a\r\nflush_all\r\n",
		"a\nflush_all",
		"a 0 0 1\r\nx",
		"a\x00",
	}
	for i, key := range keys {
		mustSet(t, s, key, []byte("v"+strconv.Itoa(i)), time.Minute)
	}
	for i, key := range keys {
		wantValue(t, s, key, []byte("v"+strconv.Itoa(i)))
	}
	wantValue(t, s, sentinel, []byte("still here"))
	vals, err := s.GetMulti(t.Context(), keys)
	if err != nil {
		t.Fatalf("GetMulti: %v", err)
	}
	for i := range keys {
		if want := "v" + strconv.Itoa(i); string(vals[i]) != want {
			t.Errorf("GetMulti[%q] = %q; want %q", keys[i], vals[i], want)
		}
	}
	if n, err := s.Delete(t.Context(), keys...); err != nil || n != len(keys) {
		t.Errorf("Delete(keys...) = %d, %v; want %d, nil", n, err, len(keys))
	}
	wantValue(t, s, sentinel, []byte("still here"))
}

func TestLongAndOddKeys(t *testing.T) {
	s, _, k := testStore(t)
	long := k(strings.Repeat("x", 1000))
	keys := []string{
		long + "1",
		long + "2",
		k("sp ace"),
		k("sp_ace"), // the readable form of the previous one: a different key
		k("~#"),
		encodeKey(k("sp ace")), // an encoded form, used as a key
		k("日本語"),
	}
	for i, key := range keys {
		mustSet(t, s, key, []byte(strconv.Itoa(i)), time.Minute)
	}
	for i, key := range keys {
		wantValue(t, s, key, []byte(strconv.Itoa(i)))
	}
}
