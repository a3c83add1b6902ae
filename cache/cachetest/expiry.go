package cachetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// expiryCase is a case that waits for time to pass. write runs first and
// returns the check to run once the keys it wrote with the short ttl have
// had time to expire; write may also register control keys (see
// env.control), and every check runs only once all of them have expired.
//
// The cases run in three phases (write all, wait once, check all) rather
// than as parallel subtests, whose number at once go test bounds to
// GOMAXPROCS: the suite waits for one ttl, not for one per case.
type expiryCase struct {
	name  string
	write func(e *env) (check func(e *env))
}

// control writes a key with the short ttl and registers it: the checks of
// the expiry cases run only after it expired (and two more resolution
// steps). Any key written with the short ttl before the control has expired
// by then too, unless something removed its expiry.
func (e *env) control() {
	e.t.Helper()
	k := e.key("control")
	e.mustSet(k, []byte("control"), e.ttl)
	*e.controls = append(*e.controls, k)
}

// testExpiry covers every way a key gets or loses a ttl, by waiting for
// keys to expire.
func (s *suite) testExpiry(t *testing.T) {
	type state struct {
		c     expiryCase
		e     *env
		check func(e *env)
	}
	cases := s.expiryCases()
	// The stores live until the checks are done.
	envs := make([]*env, len(cases))
	for i := range cases {
		envs[i] = s.newEnv(t)
	}
	var states []*state
	t.Run("Write", func(wt *testing.T) {
		for i, c := range cases {
			wt.Run(c.name, func(ct *testing.T) {
				e := envs[i].with(ct)
				check := c.write(e)
				states = append(states, &state{c: c, e: e, check: check})
			})
		}
	})
	// Wait for every control key to expire.
	for _, st := range states {
		e := st.e.with(t)
		for _, k := range *e.controls {
			e.waitExpired(k)
		}
	}
	time.Sleep(2*s.res + 10*time.Millisecond)
	t.Run("Check", func(ct *testing.T) {
		for _, st := range states {
			ct.Run(st.c.name, func(t *testing.T) { st.check(st.e.with(t)) })
		}
	})
}

func (s *suite) expiryCases() []expiryCase {
	return []expiryCase{
		{"Set", func(e *env) func(*env) {
			k := e.key("k")
			start := time.Now()
			e.mustSet(k, []byte("v"), e.ttl)
			e.wantAlive(k, start)
			e.wantValue(k, []byte("v"))
			e.wantShortTTL(k)
			return func(e *env) {
				e.waitExpired(k)
				e.wantAllMiss(k)
				// No write that needs the key resurrects it.
				if n := e.mustDelete(k); n != 0 {
					e.t.Errorf("Delete(expired key): got %d; want 0", n)
				}
				if ok, err := e.s.Expire(e.ctx, k, 0); ok || err != nil {
					e.t.Errorf("Expire(expired key): got (%v, %v); want (false, nil)", ok, err)
				}
				if ok, err := e.s.DeleteIfEqual(e.ctx, k, []byte("v")); ok || err != nil {
					e.t.Errorf("DeleteIfEqual(expired key): got (%v, %v); want (false, nil)", ok, err)
				}
				if ok, err := e.s.ExtendIfEqual(e.ctx, k, []byte("v"), 0); ok || err != nil {
					e.t.Errorf("ExtendIfEqual(expired key): got (%v, %v); want (false, nil)", ok, err)
				}
				e.wantAllMiss(k)
			}
		}},
		{"SetMulti", func(e *env) func(*env) {
			a, b, c := e.key("a"), e.key("b"), e.key("c")
			items := []cache.Item{
				{Key: a, Value: []byte("va"), TTL: e.ttl},
				{Key: b, Value: []byte("vb")},
				{Key: c, Value: []byte("vc"), TTL: e.longTTL},
			}
			start := time.Now()
			if err := e.s.SetMulti(e.ctx, items); err != nil {
				e.t.Fatalf("SetMulti: %v", err)
			}
			e.wantAlive(a, start)
			e.wantShortTTL(a)
			return func(e *env) {
				e.waitExpired(a)
				e.wantAllMiss(a)
				e.wantValue(b, []byte("vb"))
				e.wantNoExpiry(b)
				e.wantValue(c, []byte("vc"))
				e.wantLongTTL(c)
			}
		}},
		{"SetWithoutTTLRemovesExpiry", func(e *env) func(*env) {
			k := e.key("k")
			e.mustSet(k, []byte("v1"), e.ttl)
			e.control()
			e.mustSet(k, []byte("v2"), 0)
			e.wantNoExpiry(k)
			return func(e *env) { e.wantValue(k, []byte("v2")) }
		}},
		{"SetWithTTLOverNoExpiry", func(e *env) func(*env) {
			k := e.key("k")
			e.mustSet(k, []byte("v1"), 0)
			start := time.Now()
			e.mustSet(k, []byte("v2"), e.ttl)
			e.wantAlive(k, start)
			e.wantShortTTL(k)
			return func(e *env) { e.waitExpired(k) }
		}},
		{"Add", func(e *env) func(*env) {
			k := e.key("k")
			start := time.Now()
			e.mustAdd(k, []byte("v1"), e.ttl)
			e.wantAlive(k, start)
			e.wantShortTTL(k)
			return func(e *env) {
				e.waitExpired(k)
				e.wantAllMiss(k)
				// Add over an expired key succeeds, with the new ttl.
				e.mustAdd(k, []byte("v2"), 0)
				e.wantValue(k, []byte("v2"))
				e.wantNoExpiry(k)
			}
		}},
		{"Expire", func(e *env) func(*env) {
			k := e.key("k")
			e.mustSet(k, []byte("v"), 0)
			start := time.Now()
			e.wantExpire(k, e.ttl, true)
			e.wantAlive(k, start)
			e.wantValue(k, []byte("v"))
			e.wantShortTTL(k)
			return func(e *env) {
				e.waitExpired(k)
				e.wantAllMiss(k)
			}
		}},
		{"ExpireZeroRemovesExpiry", func(e *env) func(*env) {
			k := e.key("k")
			e.mustSet(k, []byte("v"), e.ttl)
			e.control()
			e.wantExpire(k, 0, true)
			e.wantNoExpiry(k)
			return func(e *env) { e.wantValue(k, []byte("v")) }
		}},
		{"ExpireCanceled", func(e *env) func(*env) {
			k := e.key("k")
			e.mustSet(k, []byte("v"), 0)
			ctx, cancel := context.WithCancel(e.ctx)
			cancel()
			if _, err := e.s.Expire(ctx, k, e.ttl); !errors.Is(err, context.Canceled) {
				e.t.Errorf("Expire with a cancelled context: got %v; want an error matching context.Canceled", err)
			}
			e.control()
			return func(e *env) { e.wantValue(k, []byte("v")) }
		}},
		{"IncrementKeepsTTL", func(e *env) func(*env) {
			k := e.key("k")
			start := time.Now()
			e.mustSet(k, []byte("1"), e.ttl)
			if got := e.mustIncrement(k, 1); got != 2 {
				e.t.Fatalf("Increment(key holding 1, 1): got %d; want 2", got)
			}
			e.wantAlive(k, start)
			e.wantShortTTL(k)
			return func(e *env) { e.waitExpired(k) }
		}},
		{"IncrementAfterExpiry", func(e *env) func(*env) {
			k := e.key("k")
			e.mustSet(k, []byte("10"), e.ttl)
			return func(e *env) {
				e.waitExpired(k)
				if got := e.mustIncrement(k, 5); got != 5 {
					e.t.Errorf("Increment(expired key, 5): got %d; want 5 (a fresh key)", got)
				}
				e.wantValue(k, []byte("5"))
				e.wantNoExpiry(k)
			}
		}},
		{"CompareAndSwap", func(e *env) func(*env) {
			absent, present := e.key("absent"), e.key("present")
			e.mustSet(present, []byte("v1"), 0)
			_, tok := e.mustGets(present)
			start := time.Now()
			e.mustCAS(absent, []byte("a"), cache.AbsentToken(), e.ttl)
			e.mustCAS(present, []byte("v2"), tok, e.ttl)
			e.wantAlive(absent, start)
			e.wantAlive(present, start)
			e.wantShortTTL(absent)
			e.wantShortTTL(present)
			return func(e *env) {
				e.waitExpired(absent)
				e.waitExpired(present)
				e.wantAllMiss(absent)
				e.wantAllMiss(present)
			}
		}},
		{"CompareAndSwapZeroRemovesExpiry", func(e *env) func(*env) {
			k := e.key("k")
			e.mustSet(k, []byte("v1"), e.ttl)
			_, tok := e.mustGets(k)
			e.control()
			e.mustCAS(k, []byte("v2"), tok, 0)
			e.wantNoExpiry(k)
			return func(e *env) { e.wantValue(k, []byte("v2")) }
		}},
		{"CompareAndSwapAfterExpiry", func(e *env) func(*env) {
			k := e.key("k")
			e.mustSet(k, []byte("v1"), e.ttl)
			_, tok := e.mustGets(k)
			return func(e *env) {
				e.waitExpired(k)
				if err := e.s.CompareAndSwap(e.ctx, k, []byte("v2"), tok, 0); !errors.Is(err, cache.ErrConflict) {
					e.t.Errorf("CompareAndSwap with a token of a key that expired since: got %v; want ErrConflict", err)
				}
				e.wantMiss(k)
			}
		}},
		{"DeleteIfEqualWrongValueKeepsTTL", func(e *env) func(*env) {
			k := e.key("k")
			e.mustSet(k, []byte("v"), e.ttl)
			e.wantDelete(k, []byte("other"), false)
			e.wantValue(k, []byte("v"))
			e.wantShortTTL(k)
			return func(e *env) { e.waitExpired(k) }
		}},
		{"ExtendIfEqual", func(e *env) func(*env) {
			k := e.key("k")
			e.mustSet(k, []byte("v"), e.ttl)
			e.control()
			e.wantExtend(k, []byte("v"), e.longTTL, true)
			e.wantLongTTL(k)
			return func(e *env) {
				e.wantValue(k, []byte("v"))
				e.wantLongTTL(k)
			}
		}},
		{"ExtendIfEqualZeroRemovesExpiry", func(e *env) func(*env) {
			k := e.key("k")
			e.mustSet(k, []byte("v"), e.ttl)
			e.control()
			e.wantExtend(k, []byte("v"), 0, true)
			e.wantNoExpiry(k)
			return func(e *env) { e.wantValue(k, []byte("v")) }
		}},
		{"ExtendIfEqualWrongValueKeepsTTL", func(e *env) func(*env) {
			k := e.key("k")
			e.mustSet(k, []byte("v"), e.ttl)
			e.wantExtend(k, []byte("other"), e.longTTL, false)
			e.wantExtend(k, []byte("other"), 0, false)
			e.wantValue(k, []byte("v"))
			e.wantShortTTL(k)
			return func(e *env) { e.waitExpired(k) }
		}},
		{"ExtendIfEqualSetsTTL", func(e *env) func(*env) {
			k := e.key("k")
			e.mustSet(k, []byte("v"), 0)
			start := time.Now()
			e.wantExtend(k, []byte("v"), e.ttl, true)
			e.wantAlive(k, start)
			e.wantShortTTL(k)
			return func(e *env) { e.waitExpired(k) }
		}},
		{"ExtendIfEqualCanceled", func(e *env) func(*env) {
			k := e.key("k")
			e.mustSet(k, []byte("v"), 0)
			ctx, cancel := context.WithCancel(e.ctx)
			cancel()
			if _, err := e.s.ExtendIfEqual(ctx, k, []byte("v"), e.ttl); !errors.Is(err, context.Canceled) {
				e.t.Errorf("ExtendIfEqual with a cancelled context: got %v; want an error matching context.Canceled", err)
			}
			e.control()
			return func(e *env) { e.wantValue(k, []byte("v")) }
		}},
		{"FencerAfterExpiry", func(e *env) func(*env) {
			f := e.fencer()
			k := e.key("lock")
			prev := e.mustFence(f, k, []byte("h"), e.ttl)
			e.wantShortTTL(k)
			return func(e *env) {
				e.waitExpired(k)
				e.wantAfter(e.mustFence(f, k, []byte("h"), 0), prev, "after the holder's key expired")
			}
		}},
	}
}
