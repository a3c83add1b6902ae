package cachetest

import (
	"errors"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// testTTL covers TTL and Expire without waiting for any key to expire.
func (s *suite) testTTL(t *testing.T) {
	s.run(t, "NoExpiry", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("v"), 0)
		e.wantNoExpiry(k)
	})
	s.run(t, "Missing", func(e *env) {
		d, err := e.s.TTL(e.ctx, e.key("missing"))
		if e.h.TTLUnreadable && errors.Is(err, cache.ErrUnsupported) {
			return
		}
		if !errors.Is(err, cache.ErrNotFound) {
			e.t.Errorf("TTL(missing key): got (%v, %v); want ErrNotFound", d, err)
		}
	})
	s.run(t, "Remaining", func(e *env) {
		long, short := e.key("long"), e.key("short")
		e.mustSet(long, []byte("v"), e.longTTL)
		e.wantLongTTL(long)
		e.mustSet(short, []byte("v"), e.ttl)
		e.wantShortTTL(short)
	})
	if s.h.TTLUnreadable {
		s.run(t, "Unsupported", func(e *env) {
			k := e.key("k")
			e.mustSet(k, []byte("v"), e.longTTL)
			if d, err := e.s.TTL(e.ctx, k); !errors.Is(err, cache.ErrUnsupported) {
				e.t.Errorf("TTL with Harness.TTLUnreadable: got (%v, %v); want ErrUnsupported", d, err)
			}
		})
	}
	s.run(t, "ExpireMissing", func(e *env) {
		k := e.key("missing")
		ok, err := e.s.Expire(e.ctx, k, e.longTTL)
		if err != nil || ok {
			e.t.Errorf("Expire(missing key): got (%v, %v); want (false, nil)", ok, err)
		}
		e.wantMiss(k)
	})
	s.run(t, "Expire", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("v"), 0)
		e.wantExpire(k, e.longTTL, true)
		e.wantValue(k, []byte("v"))
		e.wantLongTTL(k)
	})
	s.run(t, "ExpireZero", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("v"), e.longTTL)
		e.wantExpire(k, 0, true)
		e.wantValue(k, []byte("v"))
		e.wantNoExpiry(k)
	})
}

func (e *env) wantExpire(key string, ttl time.Duration, want bool) {
	e.t.Helper()
	got, err := e.s.Expire(e.ctx, key, ttl)
	if err != nil || got != want {
		e.t.Fatalf("Expire(%s, %v): got (%v, %v); want (%v, nil)", showKey(key), ttl, got, err, want)
	}
}

// wantAlive checks that key, written with the short ttl at start, is still
// there, as it must be until ttl minus the resolution has passed. When more
// time than that has passed (a very slow machine), the check proves nothing
// and the test is skipped.
func (e *env) wantAlive(key string, start time.Time) {
	e.t.Helper()
	ok := e.mustExists(key)
	if ok {
		return
	}
	if elapsed := time.Since(start); elapsed < e.ttl-e.res {
		e.t.Fatalf("key %s written with ttl %v is gone after %v; want it kept for at least ttl - resolution (%v)", showKey(key), e.ttl, elapsed, e.ttl-e.res)
	}
	e.t.Skipf("key %s written with ttl %v is gone, but more than ttl - resolution (%v) passed: the machine is too slow for this check", showKey(key), e.ttl, e.ttl-e.res)
}
