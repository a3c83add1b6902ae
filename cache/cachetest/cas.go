package cachetest

import (
	"errors"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
)

func (e *env) mustCAS(key string, value []byte, tok cache.Token, ttl time.Duration) {
	e.t.Helper()
	if err := e.s.CompareAndSwap(e.ctx, key, value, tok, ttl); err != nil {
		e.t.Fatalf("CompareAndSwap(%s, %s, absent=%v, %v): got %v; want nil", showKey(key), showValue(value), tok.Absent(), ttl, err)
	}
}

func (e *env) wantConflict(key string, value []byte, tok cache.Token) {
	e.t.Helper()
	if err := e.s.CompareAndSwap(e.ctx, key, value, tok, 0); !errors.Is(err, cache.ErrConflict) {
		e.t.Fatalf("CompareAndSwap(%s, %s, absent=%v): got %v; want ErrConflict", showKey(key), showValue(value), tok.Absent(), err)
	}
}

// testCAS covers Gets and CompareAndSwap (their expiry is in testExpiry).
func (s *suite) testCAS(t *testing.T) {
	s.run(t, "GetsMissing", func(e *env) {
		v, tok, err := e.s.Gets(e.ctx, e.key("missing"))
		if !errors.Is(err, cache.ErrNotFound) || v != nil || !tok.Absent() {
			e.t.Errorf("Gets(missing key): got (%s, absent=%v, %v); want (nil, absent=true, ErrNotFound)", showValue(v), tok.Absent(), err)
		}
	})
	s.run(t, "GetsHit", func(e *env) {
		k, empty := e.key("k"), e.key("empty")
		e.mustSet(k, []byte("v"), 0)
		e.mustSet(empty, []byte{}, 0)
		if v, _ := e.mustGets(k); string(v) != "v" {
			e.t.Errorf("Gets: got %s; want \"v\"", showValue(v))
		}
		if v, _ := e.mustGets(empty); len(v) != 0 {
			e.t.Errorf("Gets(key holding an empty value): got %s; want an empty value", showValue(v))
		}
	})
	s.run(t, "Fresh", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("v1"), e.longTTL)
		_, tok := e.mustGets(k)
		e.mustCAS(k, []byte("v2"), tok, 0)
		e.wantValue(k, []byte("v2"))
		e.wantNoExpiry(k) // the ttl is replaced too
	})
	s.run(t, "WithTTL", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("v1"), 0)
		_, tok := e.mustGets(k)
		e.mustCAS(k, []byte("v2"), tok, e.longTTL)
		e.wantValue(k, []byte("v2"))
		e.wantLongTTL(k)
	})
	s.run(t, "Chain", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("v0"), 0)
		for _, v := range []string{"v1", "v2", "v3"} {
			_, tok := e.mustGets(k)
			e.mustCAS(k, []byte(v), tok, 0)
			e.wantValue(k, []byte(v))
		}
	})
	s.run(t, "AfterSet", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("v1"), 0)
		_, tok := e.mustGets(k)
		e.mustSet(k, []byte("v2"), 0)
		e.wantConflict(k, []byte("v3"), tok)
		e.wantValue(k, []byte("v2"))
	})
	s.run(t, "AfterIncrement", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("1"), 0)
		_, tok := e.mustGets(k)
		e.mustIncrement(k, 1)
		e.wantConflict(k, []byte("10"), tok)
		e.wantValue(k, []byte("2"))
	})
	s.run(t, "Twice", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("v1"), 0)
		_, tok := e.mustGets(k)
		e.mustCAS(k, []byte("v2"), tok, 0)
		e.wantConflict(k, []byte("v3"), tok)
		e.wantValue(k, []byte("v2"))
	})
	s.run(t, "DeletedSince", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("v1"), 0)
		_, tok := e.mustGets(k)
		e.mustDelete(k)
		e.wantConflict(k, []byte("v2"), tok)
		e.wantMiss(k)
	})
	s.run(t, "AbsentOnAbsent", func(e *env) {
		k := e.key("k")
		_, tok, err := e.s.Gets(e.ctx, k)
		if !errors.Is(err, cache.ErrNotFound) {
			e.t.Fatalf("Gets(missing key): got %v; want ErrNotFound", err)
		}
		e.mustCAS(k, []byte("v"), tok, 0)
		e.wantValue(k, []byte("v"))
		e.wantNoExpiry(k)
		// The token built by AbsentToken works the same.
		k2 := e.key("k2")
		e.mustCAS(k2, []byte("v2"), cache.AbsentToken(), e.longTTL)
		e.wantValue(k2, []byte("v2"))
		e.wantLongTTL(k2)
	})
	s.run(t, "AbsentTwice", func(e *env) {
		k := e.key("k")
		e.mustCAS(k, []byte("v1"), cache.AbsentToken(), 0)
		e.wantConflict(k, []byte("v2"), cache.AbsentToken())
		e.wantValue(k, []byte("v1"))
	})
	creators := []struct {
		name   string
		create func(e *env, k string)
	}{
		{"Set", func(e *env, k string) { e.mustSet(k, []byte("theirs"), 0) }},
		{"SetEmpty", func(e *env, k string) { e.mustSet(k, []byte{}, 0) }},
		{"Add", func(e *env, k string) { e.mustAdd(k, []byte("theirs"), 0) }},
		{"Increment", func(e *env, k string) { e.mustIncrement(k, 1) }},
	}
	for _, c := range creators {
		s.run(t, "AbsentCreatedMeanwhileBy"+c.name, func(e *env) {
			k := e.key("k")
			_, tok, err := e.s.Gets(e.ctx, k)
			if !errors.Is(err, cache.ErrNotFound) || !tok.Absent() {
				e.t.Fatalf("Gets(missing key): got (absent=%v, %v); want (absent=true, ErrNotFound)", tok.Absent(), err)
			}
			c.create(e, k)
			want := e.mustGet(k)
			e.wantConflict(k, []byte("mine"), tok)
			e.wantValue(k, want)
		})
	}
}

func (e *env) wantDelete(key string, value []byte, want bool) {
	e.t.Helper()
	got, err := e.s.DeleteIfEqual(e.ctx, key, value)
	if err != nil || got != want {
		e.t.Fatalf("DeleteIfEqual(%s, %s): got (%v, %v); want (%v, nil)", showKey(key), showValue(value), got, err, want)
	}
}

func (e *env) wantExtend(key string, value []byte, ttl time.Duration, want bool) {
	e.t.Helper()
	got, err := e.s.ExtendIfEqual(e.ctx, key, value, ttl)
	if err != nil || got != want {
		e.t.Fatalf("ExtendIfEqual(%s, %s, %v): got (%v, %v); want (%v, nil)", showKey(key), showValue(value), ttl, got, err, want)
	}
}

// unequal are values that differ from "abc" in ways a sloppy comparison
// misses.
var unequal = []string{"ab", "abcd", "ABC", "abd", "", "abc\x00", "\x00abc"}

// testDeleteIfEqual covers DeleteIfEqual.
func (s *suite) testDeleteIfEqual(t *testing.T) {
	s.run(t, "Equal", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("abc"), e.longTTL)
		e.wantDelete(k, []byte("abc"), true)
		e.wantAllMiss(k)
		e.wantDelete(k, []byte("abc"), false) // twice
	})
	s.run(t, "WrongValue", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("abc"), e.longTTL)
		for _, v := range unequal {
			e.wantDelete(k, []byte(v), false)
		}
		e.wantValue(k, []byte("abc"))
		e.wantLongTTL(k)
	})
	s.run(t, "Missing", func(e *env) {
		k := e.key("missing")
		e.wantDelete(k, []byte("abc"), false)
		e.wantDelete(k, []byte{}, false)
		e.wantMiss(k)
	})
	s.run(t, "EmptyValue", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte{}, 0)
		e.wantDelete(k, []byte("x"), false)
		e.wantValue(k, []byte{})
		e.wantDelete(k, []byte{}, true)
		e.wantMiss(k)
	})
	s.run(t, "BinaryValue", func(e *env) {
		k := e.key("k")
		v := allBytes()
		e.mustSet(k, v, 0)
		w := allBytes()
		w[128] ^= 1
		e.wantDelete(k, w, false)
		e.wantDelete(k, v, true)
		e.wantMiss(k)
	})
}

// testExtendIfEqual covers ExtendIfEqual (its expiry is in testExpiry).
func (s *suite) testExtendIfEqual(t *testing.T) {
	s.run(t, "Equal", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("abc"), 0)
		e.wantExtend(k, []byte("abc"), e.longTTL, true)
		e.wantValue(k, []byte("abc"))
		e.wantLongTTL(k)
	})
	s.run(t, "ZeroRemovesExpiry", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("abc"), e.longTTL)
		e.wantExtend(k, []byte("abc"), 0, true)
		e.wantValue(k, []byte("abc"))
		e.wantNoExpiry(k)
	})
	s.run(t, "WrongValue", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("abc"), e.longTTL)
		for _, v := range unequal {
			e.wantExtend(k, []byte(v), 0, false)
		}
		e.wantValue(k, []byte("abc"))
		e.wantLongTTL(k)
	})
	s.run(t, "Missing", func(e *env) {
		k := e.key("missing")
		e.wantExtend(k, []byte("abc"), e.longTTL, false)
		e.wantExtend(k, []byte{}, 0, false)
		e.wantMiss(k)
	})
	s.run(t, "EmptyValue", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte{}, 0)
		e.wantExtend(k, []byte("x"), e.longTTL, false)
		e.wantNoExpiry(k)
		e.wantExtend(k, []byte{}, e.longTTL, true)
		e.wantLongTTL(k)
		e.wantValue(k, []byte{})
	})
}
