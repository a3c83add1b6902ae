package cachetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// Bounds of the Notifier cases. A wake-up may take long (a pub/sub message
// through a busy server), so wakeWait is generous: only a wake-up that
// never comes reaches it. silence is how long a watch must stay quiet when
// nothing concerning it happened.
const (
	wakeWait = 5 * time.Second
	silence  = 200 * time.Millisecond
)

func (e *env) notifier() cache.Notifier {
	e.t.Helper()
	n, ok := e.s.(cache.Notifier)
	if !ok {
		e.t.Skip("the store does not implement cache.Notifier")
	}
	return n
}

func (e *env) watch(n cache.Notifier, key string) <-chan struct{} {
	e.t.Helper()
	ch, stop, err := n.Watch(e.ctx, key)
	if err != nil {
		e.t.Fatalf("Watch(%s): %v", showKey(key), err)
	}
	if ch == nil || stop == nil {
		e.t.Fatalf("Watch(%s): got a nil channel or stop function", showKey(key))
	}
	e.t.Cleanup(stop)
	return ch
}

// wantWake waits for a wake-up on ch (a value, or the channel closed).
func (e *env) wantWake(ch <-chan struct{}, after string) {
	e.t.Helper()
	select {
	case <-ch:
	case <-time.After(wakeWait):
		e.t.Fatalf("watch not woken %v after %s; want a wake-up", wakeWait, after)
	}
}

// wantSilence checks that ch receives nothing for a while; a closed channel
// is accepted only if closedOK.
func (e *env) wantSilence(ch <-chan struct{}, closedOK bool, what string) {
	e.t.Helper()
	select {
	case _, ok := <-ch:
		if ok || !closedOK {
			e.t.Errorf("watch woken (value received: %v) %s; want no wake-up", ok, what)
		}
	case <-time.After(silence):
	}
}

// testNotifier covers cache.Notifier, for stores that implement it.
func (s *suite) testNotifier(t *testing.T) {
	s.run(t, "WakeSameStore", func(e *env) {
		n := e.notifier()
		k := e.key("lock")
		e.mustSet(k, []byte("holder"), 0)
		ch := e.watch(n, k)
		e.wantDelete(k, []byte("holder"), true)
		e.wantWake(ch, "DeleteIfEqual by the same store")
	})
	s.run(t, "WakeOtherStore", func(e *env) {
		n := e.notifier()
		other, shared := e.shared()
		if !shared {
			e.t.Skip("two stores of this harness do not share a backend: no other client can release the key")
		}
		k := e.key("lock")
		e.mustSet(k, []byte("holder"), 0)
		ch := e.watch(n, k)
		if ok, err := other.DeleteIfEqual(e.ctx, k, []byte("holder")); !ok || err != nil {
			e.t.Fatalf("second store: DeleteIfEqual: got (%v, %v); want (true, nil)", ok, err)
		}
		e.wantWake(ch, "DeleteIfEqual by another store of the same backend")
	})
	s.run(t, "EveryWatcher", func(e *env) {
		n := e.notifier()
		k := e.key("lock")
		e.mustSet(k, []byte("holder"), 0)
		chs := []<-chan struct{}{e.watch(n, k), e.watch(n, k)}
		if other, shared := e.shared(); shared {
			if on, ok := other.(cache.Notifier); ok {
				chs = append(chs, e.watch(on, k))
			}
		}
		e.wantDelete(k, []byte("holder"), true)
		for i, ch := range chs {
			e.wantWake(ch, fmt.Sprintf("DeleteIfEqual (watcher %d of %d)", i+1, len(chs)))
		}
	})
	s.run(t, "SecondRelease", func(e *env) {
		n := e.notifier()
		k := e.key("lock")
		ch := e.watch(n, k)
		for i := range 2 {
			e.mustSet(k, []byte("holder"), 0)
			e.wantDelete(k, []byte("holder"), true)
			e.wantWake(ch, fmt.Sprintf("release %d", i+1))
		}
	})
	s.run(t, "Stop", func(e *env) {
		n := e.notifier()
		k := e.key("lock")
		ch, stop, err := n.Watch(e.ctx, k)
		if err != nil {
			e.t.Fatalf("Watch: %v", err)
		}
		stop()
		e.mustSet(k, []byte("holder"), 0)
		e.wantDelete(k, []byte("holder"), true)
		e.wantSilence(ch, true, "after its stop function was called")
	})
	s.run(t, "OtherKey", func(e *env) {
		n := e.notifier()
		k, other := e.key("lock"), e.key("lock2")
		ch := e.watch(n, k)
		e.mustSet(other, []byte("holder"), 0)
		e.wantDelete(other, []byte("holder"), true)
		e.wantSilence(ch, false, "by the release of another key")
		// The watch was live all along.
		e.mustSet(k, []byte("holder"), 0)
		e.wantDelete(k, []byte("holder"), true)
		e.wantWake(ch, "DeleteIfEqual of the watched key")
	})
	s.run(t, "Canceled", func(e *env) {
		n := e.notifier()
		ctx, cancel := context.WithCancel(e.ctx)
		cancel()
		_, stop, err := n.Watch(ctx, e.key("lock"))
		if !errors.Is(err, context.Canceled) {
			e.t.Errorf("Watch with a cancelled context: got %v; want an error matching context.Canceled", err)
			if err == nil && stop != nil {
				stop()
			}
		}
	})
}

func (e *env) fencer() cache.Fencer {
	e.t.Helper()
	f, ok := e.s.(cache.Fencer)
	if !ok {
		e.t.Skip("the store does not implement cache.Fencer")
	}
	return f
}

func (e *env) mustFence(f cache.Fencer, key string, value []byte, ttl time.Duration) int64 {
	e.t.Helper()
	n, err := f.AddFenced(e.ctx, key, value, ttl)
	if err != nil {
		e.t.Fatalf("AddFenced(%s, %s, %v): got %v; want nil", showKey(key), showValue(value), ttl, err)
	}
	if n <= 0 {
		e.t.Fatalf("AddFenced(%s, %s, %v): got the token %d; want a positive one", showKey(key), showValue(value), ttl, n)
	}
	return n
}

func (e *env) wantFenceExists(f cache.Fencer, key string) {
	e.t.Helper()
	if n, err := f.AddFenced(e.ctx, key, []byte("intruder"), 0); !errors.Is(err, cache.ErrExists) {
		e.t.Fatalf("AddFenced(%s) of a held key: got (%d, %v); want ErrExists", showKey(key), n, err)
	}
}

// wantAfter checks that a token is greater than the one of the previous
// successful AddFenced of the key. Tokens need not be consecutive.
func (e *env) wantAfter(got, prev int64, what string) {
	e.t.Helper()
	if got <= prev {
		e.t.Fatalf("AddFenced %s: got %d; want > %d (the previous success)", what, got, prev)
	}
}

// testFencer covers cache.Fencer, for stores that implement it.
func (s *suite) testFencer(t *testing.T) {
	s.run(t, "Cycles", func(e *env) {
		f := e.fencer()
		k := e.key("lock")
		prev := e.mustFence(f, k, []byte("h0"), 0)
		e.wantValue(k, []byte("h0"))
		e.wantNoExpiry(k)
		releases := []struct {
			name    string
			release func(holder []byte)
		}{
			{"DeleteIfEqual", func(h []byte) { e.wantDelete(k, h, true) }},
			{"Delete", func([]byte) { e.mustDelete(k) }},
			{"DeleteIfEqual", func(h []byte) { e.wantDelete(k, h, true) }},
		}
		for i, r := range releases {
			holder := []byte("h" + strconv.Itoa(i))
			e.wantFenceExists(f, k)
			e.wantValue(k, holder)
			r.release(holder)
			next := e.mustFence(f, k, []byte("h"+strconv.Itoa(i+1)), 0)
			e.wantAfter(next, prev, "after a release by "+r.name)
			prev = next
		}
	})
	s.run(t, "WithTTL", func(e *env) {
		f := e.fencer()
		k := e.key("lock")
		e.mustFence(f, k, []byte("h"), e.longTTL)
		e.wantValue(k, []byte("h"))
		e.wantLongTTL(k)
	})
	s.run(t, "HeldByAdd", func(e *env) {
		f := e.fencer()
		k := e.key("lock")
		prev := e.mustFence(f, k, []byte("h"), 0)
		e.wantDelete(k, []byte("h"), true)
		e.mustAdd(k, []byte("plain"), 0)
		e.wantFenceExists(f, k)
		e.wantValue(k, []byte("plain"))
		e.mustDelete(k)
		e.wantAfter(e.mustFence(f, k, []byte("h"), 0), prev, "after a plain Add and a failed AddFenced")
	})
	s.run(t, "IndependentKeys", func(e *env) {
		f := e.fencer()
		a, b := e.key("a"), e.key("b")
		a0 := e.mustFence(f, a, []byte("h"), 0)
		b0 := e.mustFence(f, b, []byte("h"), 0)
		prev := a0
		for range 3 {
			e.wantDelete(a, []byte("h"), true)
			n := e.mustFence(f, a, []byte("h"), 0)
			e.wantAfter(n, prev, "of key a")
			prev = n
		}
		e.wantDelete(b, []byte("h"), true)
		e.wantAfter(e.mustFence(f, b, []byte("h"), 0), b0, "of key b, after 3 cycles of key a")
	})
	s.run(t, "Race", func(e *env) {
		f := e.fencer()
		fencers := []cache.Fencer{f}
		if other, shared := e.shared(); shared {
			if of, ok := other.(cache.Fencer); ok {
				fencers = append(fencers, of)
			}
		}
		const n = 50
		e.races("AddFenced", n, func(r int) int64 {
			keys := e.roundKeys("lock", r)
			prev := make([]int64, len(keys))
			for j, k := range keys {
				prev[j] = e.mustFence(f, k, []byte("first"), 0)
				e.mustDelete(k)
			}
			nums := make([][]int64, n)
			errs := errGrid(n)
			peak := race(n, func(i int, call func(func())) {
				fe := fencers[i%len(fencers)]
				nums[i] = make([]int64, len(keys))
				for j, k := range keys {
					call(func() { nums[i][j], errs[i][j] = fe.AddFenced(e.ctx, k, []byte(strconv.Itoa(i)), 0) })
				}
			})
			for j, k := range keys {
				winner := e.oneWinner("AddFenced", column(errs, j), cache.ErrExists)
				e.wantValue(k, []byte(strconv.Itoa(winner)))
				e.wantAfter(nums[winner][j], prev[j], fmt.Sprintf("won by 1 of %d racing goroutines", n))
			}
			return peak
		})
	})
	s.run(t, "Canceled", func(e *env) {
		f := e.fencer()
		k := e.key("lock")
		prev := e.mustFence(f, k, []byte("h"), 0)
		e.mustDelete(k)
		ctx, cancel := context.WithCancel(e.ctx)
		cancel()
		if _, err := f.AddFenced(ctx, k, []byte("h"), 0); !errors.Is(err, context.Canceled) {
			e.t.Errorf("AddFenced with a cancelled context: got %v; want an error matching context.Canceled", err)
		}
		e.wantMiss(k)
		e.wantAfter(e.mustFence(f, k, []byte("h"), 0), prev, "after a cancelled AddFenced")
	})
}

func (e *env) leaser() cache.Leaser {
	e.t.Helper()
	l, ok := e.s.(cache.Leaser)
	if !ok {
		e.t.Skip("the store does not implement cache.Leaser")
	}
	return l
}

// testLeaser checks AddLease: Add's contract (only if absent, the ttl
// kept, released by DeleteIfEqual, extended by ExtendIfEqual). That the
// key survives memory pressure is the store's own test to make: the suite
// cannot fill a store's memory portably.
func (s *suite) testLeaser(t *testing.T) {
	s.run(t, "AddLease", func(e *env) {
		l := e.leaser()
		k := e.key("lock")
		if err := l.AddLease(e.ctx, k, []byte("h1"), e.longTTL); err != nil {
			e.t.Fatalf("AddLease of an absent key: %v", err)
		}
		e.wantValue(k, []byte("h1"))
		e.wantLongTTL(k)
		if err := l.AddLease(e.ctx, k, []byte("h2"), e.longTTL); !errors.Is(err, cache.ErrExists) {
			e.t.Fatalf("AddLease of a held key: %v; want ErrExists", err)
		}
		if err := e.s.Add(e.ctx, k, []byte("h2"), e.longTTL); !errors.Is(err, cache.ErrExists) {
			e.t.Fatalf("Add over a lease: %v; want ErrExists", err)
		}
		e.wantValue(k, []byte("h1"))
		if ok, err := e.s.ExtendIfEqual(e.ctx, k, []byte("h1"), e.longTTL); !ok || err != nil {
			e.t.Fatalf("ExtendIfEqual of a lease: %v, %v; want true", ok, err)
		}
		e.wantDelete(k, []byte("h1"), true)
		e.wantMiss(k)
		if err := l.AddLease(e.ctx, k, []byte("h3"), e.ttl); err != nil {
			e.t.Fatalf("AddLease after the release: %v", err)
		}
		e.wantValue(k, []byte("h3"))
	})
}

func (e *env) swapper() cache.Swapper {
	e.t.Helper()
	sw, ok := e.s.(cache.Swapper)
	if !ok {
		e.t.Skip("the store does not implement cache.Swapper")
	}
	return sw
}

func (e *env) mustSwap(sw cache.Swapper, key string, old, value []byte, ttl time.Duration) bool {
	e.t.Helper()
	ok, err := sw.SwapIfEqual(e.ctx, key, old, value, ttl)
	if err != nil {
		e.t.Fatalf("SwapIfEqual(%s, %s → %s): %v", showKey(key), showValue(old), showValue(value), err)
	}
	return ok
}

// testSwapper covers cache.Swapper, for stores that implement it.
func (s *suite) testSwapper(t *testing.T) {
	s.run(t, "Equal", func(e *env) {
		sw := e.swapper()
		k := e.key("k")
		e.mustSet(k, []byte("lease"), 0)
		if !e.mustSwap(sw, k, []byte("lease"), []byte("value"), e.longTTL) {
			e.t.Fatal("SwapIfEqual over the bytes it was given: did not swap")
		}
		e.wantValue(k, []byte("value"))
		e.wantLongTTL(k)
	})
	s.run(t, "NotEqual", func(e *env) {
		sw := e.swapper()
		k := e.key("k")
		e.mustSet(k, []byte("other"), 0)
		for _, old := range [][]byte{[]byte("lease"), []byte("othe"), []byte("other "), {}} {
			if e.mustSwap(sw, k, old, []byte("value"), 0) {
				e.t.Fatalf("SwapIfEqual over %s while the key holds \"other\": swapped", showValue(old))
			}
		}
		e.wantValue(k, []byte("other"))
	})
	s.run(t, "Missing", func(e *env) {
		sw := e.swapper()
		k := e.key("k")
		if e.mustSwap(sw, k, []byte("lease"), []byte("value"), 0) {
			e.t.Fatal("SwapIfEqual on a missing key: swapped")
		}
		if e.mustSwap(sw, k, nil, []byte("value"), 0) {
			e.t.Fatal("SwapIfEqual of nil on a missing key: swapped (a missing key holds no bytes, not the empty value)")
		}
		e.wantMiss(k)
	})
	s.run(t, "Empty", func(e *env) {
		sw := e.swapper()
		k := e.key("k")
		e.mustSet(k, []byte{}, 0)
		if !e.mustSwap(sw, k, []byte{}, []byte("value"), 0) {
			e.t.Fatal("SwapIfEqual over the empty value it holds: did not swap")
		}
		e.wantValue(k, []byte("value"))
	})
	s.run(t, "NoExpiry", func(e *env) {
		sw := e.swapper()
		k := e.key("k")
		e.mustSet(k, []byte("lease"), e.longTTL)
		if !e.mustSwap(sw, k, []byte("lease"), []byte("value"), 0) {
			e.t.Fatal("did not swap")
		}
		e.wantNoExpiry(k)
		e.wantValue(k, []byte("value"))
	})
	s.run(t, "Expired", func(e *env) {
		sw := e.swapper()
		k := e.key("k")
		e.mustSet(k, []byte("lease"), e.ttl)
		e.waitExpired(k)
		if e.mustSwap(sw, k, []byte("lease"), []byte("value"), 0) {
			e.t.Fatal("SwapIfEqual over an expired key: swapped")
		}
		e.wantMiss(k)
	})
	s.run(t, "Binary", func(e *env) {
		sw := e.swapper()
		k := e.key("k")
		old := []byte{0xC1, 0, 1, 0, 0xff, '\r', '\n'}
		e.mustSet(k, old, 0)
		if !e.mustSwap(sw, k, old, []byte{0, 0xC1}, 0) {
			e.t.Fatal("did not swap binary bytes")
		}
		e.wantValue(k, []byte{0, 0xC1})
	})
	s.run(t, "Wakes", func(e *env) {
		sw := e.swapper()
		n, ok := e.s.(cache.Notifier)
		if !ok {
			e.t.Skip("the store does not implement cache.Notifier")
		}
		k := e.key("k")
		e.mustSet(k, []byte("lease"), 0)
		ch := e.watch(n, k)
		if !e.mustSwap(sw, k, []byte("lease"), []byte("value"), 0) {
			e.t.Fatal("did not swap")
		}
		e.wantWake(ch, "a swap")
		// A swap that finds other bytes wakes too: the caller's lease
		// ended all the same.
		e.mustSwap(sw, k, []byte("lease"), []byte("late"), 0)
		e.wantWake(ch, "a swap that did not swap")
	})
	s.run(t, "Race", func(e *env) {
		sw := e.swapper()
		stores := []cache.Swapper{sw}
		if other, ok := e.shared(); ok {
			if osw, ok := other.(cache.Swapper); ok {
				stores = append(stores, osw)
			}
		}
		const n = 8
		e.races("SwapIfEqual", n, func(r int) int64 {
			k := e.key(fmt.Sprintf("race-%d", r))
			e.mustSet(k, []byte("lease"), 0)
			var won atomic.Int64
			peak := race(n, func(i int, call func(func())) {
				var ok bool
				var err error
				call(func() {
					ok, err = stores[i%len(stores)].SwapIfEqual(e.ctx, k, []byte("lease"), []byte("v"+strconv.Itoa(i)), 0)
				})
				if err != nil {
					e.t.Errorf("SwapIfEqual: goroutine %d: %v", i, err)
				}
				if ok {
					won.Add(1)
				}
			})
			if got := won.Load(); got != 1 {
				e.t.Fatalf("%d racing swaps of one lease: %d swapped; want exactly 1", n, got)
			}
			return peak
		})
	})
}
