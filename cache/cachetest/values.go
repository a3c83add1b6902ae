package cachetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/typedcache/typedcache/cache"
)

// allBytes returns the 256 byte values, in order.
func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// randomBytes returns n pseudo-random bytes.
func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// testValues round-trips values through every operation that writes or
// reads one.
func (s *suite) testValues(t *testing.T) {
	values := []struct {
		name  string
		value []byte
	}{
		{"Binary", allBytes()},
		{"Empty", []byte{}},
		{"MaxSize", randomBytes(s.h.MaxValueSize)},
		{"ProtocolText", []byte("x\r\nEND\r\nVALUE k 0 1\r\n*1\r\n$4\r\nPING\r\n")},
		{"UTF8", []byte("значение 🔑")},
	}
	for _, tv := range values {
		s.run(t, tv.name, func(e *env) {
			v := tv.value
			check := func(op string, got []byte) {
				e.t.Helper()
				if !bytes.Equal(got, v) {
					e.t.Errorf("%s: got %s; want %s", op, showValue(got), showValue(v))
				}
			}
			set, multi, add, cas, absent := e.key("set"), e.key("multi"), e.key("add"), e.key("cas"), e.key("cas-absent")

			e.mustSet(set, v, 0)
			check("Set then Get", e.mustGet(set))

			if err := e.s.SetMulti(e.ctx, []cache.Item{{Key: multi, Value: v}}); err != nil {
				e.t.Fatalf("SetMulti: %v", err)
			}
			check("SetMulti then Get", e.mustGet(multi))
			got, err := e.s.GetMulti(e.ctx, []string{set, multi})
			if err != nil || len(got) != 2 {
				e.t.Fatalf("GetMulti: got (%d values, %v); want (2, nil)", len(got), err)
			}
			for i, g := range got {
				if g == nil || !bytes.Equal(g, v) {
					e.t.Errorf("GetMulti [%d]: got %s; want %s (non-nil: a hit)", i, showValue(g), showValue(v))
				}
			}

			e.mustAdd(add, v, 0)
			check("Add then Get", e.mustGet(add))

			e.mustSet(cas, []byte("old"), 0)
			_, tok := e.mustGets(cas)
			e.mustCAS(cas, v, tok, 0)
			check("CompareAndSwap then Get", e.mustGet(cas))
			gv, tok := e.mustGets(cas)
			check("Gets", gv)
			e.mustCAS(absent, v, cache.AbsentToken(), 0)
			check("CompareAndSwap(absent token) then Get", e.mustGet(absent))
			// A token read from the value itself works.
			e.mustCAS(cas, []byte("new"), tok, 0)

			e.wantExtend(set, v, e.longTTL, true)
			e.wantDelete(set, v, true)
			e.wantMiss(set)
		})
	}
	s.run(t, "TooLarge", func(e *env) {
		if e.h.TooLargeSize <= 0 {
			e.t.Skip("Harness.TooLargeSize is 0: the store has no size limit")
		}
		big := randomBytes(e.h.TooLargeSize)
		old := []byte("old")
		tooLarge := func(op string, err error) {
			e.t.Helper()
			if !errors.Is(err, cache.ErrTooLarge) {
				e.t.Errorf("%s of a %d-byte value: got %v; want ErrTooLarge", op, len(big), err)
			}
		}
		set, multi, add, cas, absent := e.key("set"), e.key("multi"), e.key("add"), e.key("cas"), e.key("cas-absent")

		e.mustSet(set, old, 0)
		tooLarge("Set", e.s.Set(e.ctx, set, big, 0))
		e.wantValue(set, old)

		e.mustSet(multi, old, 0)
		tooLarge("SetMulti", e.s.SetMulti(e.ctx, []cache.Item{{Key: multi, Value: big}}))
		e.wantValue(multi, old)
		tooLarge("SetMulti of two", e.s.SetMulti(e.ctx, []cache.Item{{Key: multi, Value: big}, {Key: set, Value: old}}))
		e.wantValue(multi, old)

		tooLarge("Add", e.s.Add(e.ctx, add, big, 0))
		e.wantMiss(add)

		e.mustSet(cas, old, 0)
		_, tok := e.mustGets(cas)
		tooLarge("CompareAndSwap", e.s.CompareAndSwap(e.ctx, cas, big, tok, 0))
		e.wantValue(cas, old)
		tooLarge("CompareAndSwap(absent token)", e.s.CompareAndSwap(e.ctx, absent, big, cache.AbsentToken(), 0))
		e.wantMiss(absent)
	})
	s.run(t, "Ownership", func(e *env) {
		// The store keeps its own copy of what it is given and hands out
		// slices the caller owns (codec.Bytes relies on it).
		k := e.key("k")
		in := []byte("original")
		e.mustSet(k, in, 0)
		copy(in, "XXXXXXXX")
		e.wantValue(k, []byte("original"))

		out := e.mustGet(k)
		copy(out, "YYYYYYYY")
		e.wantValue(k, []byte("original"))

		multi, err := e.s.GetMulti(e.ctx, []string{k})
		if err != nil {
			e.t.Fatalf("GetMulti: %v", err)
		}
		copy(multi[0], "ZZZZZZZZ")
		e.wantValue(k, []byte("original"))

		gv, _ := e.mustGets(k)
		copy(gv, "WWWWWWWW")
		e.wantValue(k, []byte("original"))

		items := []cache.Item{{Key: k, Value: []byte("original2")}}
		if err := e.s.SetMulti(e.ctx, items); err != nil {
			e.t.Fatalf("SetMulti: %v", err)
		}
		copy(items[0].Value, "VVVVVVVVV")
		e.wantValue(k, []byte("original2"))
	})
}

// testKeys stores a distinct value under each awkward key and reads them
// all back, so that two keys an encoding confuses would show.
func (s *suite) testKeys(t *testing.T) {
	s.run(t, "Awkward", func(e *env) {
		long := func(n int) string {
			return strings.Repeat("k", max(n-len(e.prefix), 1))
		}
		names := []string{
			"a b", "a", "ab", "with space", " leading", "trailing ",
			"new\nline", "crlf\r\n", "a\r\nflush_all", "a\r\nflush_all\r\n", "tab\t",
			"ключ-🔑", "日本語", "%41", "a+b", "a/b", "a\\b", "a:b", "a\"b", "a'b",
			"a*", "a?", "[a]", "{a}", "{a}b", "a{b}",
			long(e.h.MaxKeySize),
		}
		if n := e.h.MaxKeySize; n >= 300 {
			// Keys longer than memcached's 250 bytes that differ only in
			// their tail: a store that truncates long keys confuses them.
			base := long(260)
			names = append(names, base+"-tail-1", base+"-tail-2", base)
			names = append(names, long(n-1)+"1", long(n-1)+"2")
		}
		seen := map[string]bool{}
		var keys []string
		for _, n := range names {
			k := e.key(n)
			if len(k) > e.h.MaxKeySize {
				k = k[:e.h.MaxKeySize]
			}
			if seen[k] {
				continue
			}
			seen[k] = true
			keys = append(keys, k)
		}
		want := make([][]byte, len(keys))
		for i, k := range keys {
			want[i] = []byte(fmt.Sprintf("value of key %d", i))
			e.mustSet(k, want[i], 0)
		}
		for i, k := range keys {
			got, err := e.s.Get(e.ctx, k)
			if err != nil || !bytes.Equal(got, want[i]) {
				e.t.Errorf("Get(%s): got (%s, %v); want %q", showKey(k), showValue(got), err, want[i])
			}
			if !e.mustExists(k) {
				e.t.Errorf("Exists(%s): got false; want true", showKey(k))
			}
		}
		e.wantMulti(keys, want)

		// Every other operation on the same keys.
		for i, k := range keys {
			_, tok := e.mustGets(k)
			v := []byte(fmt.Sprintf("cas %d", i))
			e.mustCAS(k, v, tok, 0)
			e.wantExtend(k, v, e.longTTL, true)
			e.wantExpire(k, 0, true)
			if err := e.s.Add(e.ctx, k, []byte("add"), 0); !errors.Is(err, cache.ErrExists) {
				e.t.Errorf("Add(%s) over a present key: got %v; want ErrExists", showKey(k), err)
			}
			want[i] = v
		}
		e.wantMulti(keys, want)
		for i, k := range keys {
			e.wantDelete(k, want[i], true)
			if i+1 < len(keys) {
				e.wantValue(keys[i+1], want[i+1])
			}
		}
		for i, k := range keys {
			ck := e.track(k + "#")
			if len(ck) > e.h.MaxKeySize {
				continue
			}
			if got := e.mustIncrement(ck, int64(i+1)); got != int64(i+1) {
				e.t.Errorf("Increment(%s, %d) on a fresh key: got %d; want %d", showKey(ck), i+1, got, i+1)
			}
		}
	})
}
