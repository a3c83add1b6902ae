package lock_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/lock"
)

// hourly makes waiters that never poll on their own: they take the lock
// only when woken by a release, or at the end of the holder's lease.
var hourly = &lock.Options{MinBackoff: time.Hour, MaxBackoff: time.Hour}

// acquireAsync starts l.Acquire in a goroutine bounded by timeout and
// returns the channel of its result.
func acquireAsync(l *lock.RedLock, timeout time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		done <- l.Acquire(ctx)
	}()
	return done
}

// stillWaiting fails the test if done has a result: the waiter returned
// while the lock was held.
func stillWaiting(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s returned (err %v) while the lock was held", what, err)
	default:
	}
}

// awaitCalls waits until count reaches n, that is, until the waiter whose
// result done carries has made the store calls that show it found the lock
// busy. It fails the test if the waiter returns first, or after 10s.
func awaitCalls(t *testing.T, count *atomic.Int64, n int64, done <-chan error, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for count.Load() < n {
		select {
		case err := <-done:
			t.Fatalf("%s returned (err %v) while the lock was held", what, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d store calls after 10s; want %d", what, count.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A release wakes the waiters, in the process and across store instances
// (processes), without any polling: the waiters' backoff and the lease are
// an hour, so only the wake-up can make them take the lock in time.
func TestRedLockWakeUps(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		if b.Name == "memcached" {
			// Memcached cannot notify: waiters poll, at least once per
			// lease (here an hour). TestRedLockPollCappedByLease covers it.
			t.Skip("memcached has no release notification; waiters poll")
		}
		stores := []struct {
			name string
			s    cache.Store
		}{{"same-store", s}}
		if b.Shared { // a memory store is not shared between instances
			stores = append(stores, struct {
				name string
				s    cache.Store
			}{"other-store", b.New(t)})
		}
		for _, ws := range stores {
			for _, mode := range []string{"Acquire", "AcquireOrWait"} {
				t.Run(ws.name+"/"+mode, func(t *testing.T) {
					ctx := context.Background()
					key := ws.name + "-" + mode
					// The waiter's store counts its calls, so that the
					// release waits until the waiter found the lock busy.
					wcs := teststores.NewCounting(ws.s)
					hs := s
					if ws.name == "same-store" {
						hs = wcs // one store instance: in-process wake-ups
					}
					holder := newLock(t, newCache[string](t, hs, ns), key, time.Hour, hourly)
					if err := holder.Acquire(ctx); err != nil {
						t.Fatal(err)
					}
					waiter := newLock(t, newCache[string](t, wcs, ns), key, time.Hour, hourly)
					ttls := wcs.TTLCalls.Load()
					done := make(chan error, 1)
					go func() {
						wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
						defer cancel()
						if mode == "Acquire" {
							done <- waiter.Acquire(wctx)
							return
						}
						held, err := waiter.AcquireOrWait(wctx)
						if err == nil && held {
							err = errors.New("AcquireOrWait held a lock it should have waited for")
						}
						done <- err
					}()
					// Both read the holder's remaining lease once their
					// watch is in place: after that, only a wake-up lets
					// them return within the test.
					awaitCalls(t, &wcs.TTLCalls, ttls+1, done, mode)
					stillWaiting(t, done, mode)
					if err := holder.Release(ctx); err != nil {
						t.Fatal(err)
					}
					if err := <-done; err != nil {
						t.Fatalf("%s after the release (lease and backoff an hour): %v; want woken within 10s", mode, err)
					}
					if mode == "Acquire" {
						if err := waiter.Release(ctx); err != nil {
							t.Fatal(err)
						}
					}
				})
			}
		}
	})
}

// A holder that never releases: the waiter takes the lock when its lease
// runs out, however long its backoff. Where the store cannot report the
// holder's remaining lease (Memcached), the waiter's polls are capped by
// its own lease; elsewhere by the holder's remaining lease. The bound is
// one of correctness (an hour-long poll would miss it), not of speed.
func TestRedLockPollCappedByLease(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		const lease = time.Second // whole seconds for memcached
		const slack = 5 * time.Second
		holder := newLock(t, newCache[string](t, s, ns), "key", lease, nil)
		if err := holder.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		ws := s
		if b.Shared {
			ws = b.New(t)
		}
		waiter := newLock(t, newCache[string](t, ws, ns), "key", lease, hourly)
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, lease+slack)
		defer cancel()
		if err := waiter.Acquire(wctx); err != nil {
			t.Fatalf("waiter, backoff an hour, holder's lease %v never released: %v after %v; want the lock within %v",
				lease, err, time.Since(start), lease+slack)
		}
		t.Logf("acquired after %v", time.Since(start))
		if err := waiter.Release(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// aiocache #979: the wake-up of a release belongs to that release. A
// previous holder's stale Release (ErrNotHeld) wakes nobody and lets no
// waiter in while the new holder holds the lock. Waiters poll never (an
// hour-long backoff) except on Memcached, which has no wake-ups to get
// wrong; there only the lock's behaviour is checked.
func TestStaleReleaseWakesNobody(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		notifies := b.Name != "memcached"
		opts := hourly
		if !notifies {
			opts = nil
		}
		for _, how := range []string{"released", "expired"} {
			t.Run(how, func(t *testing.T) {
				ctx := context.Background()
				cs := teststores.NewCounting(s)
				c := newCache[string](t, cs, ns)
				key := "key-" + how
				// A's lease: an hour when A releases, so that no stall
				// can make it expire first; 2s (whole seconds for
				// memcached) when it is to expire under B's wait.
				leaseA := time.Hour
				if how == "expired" {
					leaseA = 2 * time.Second
				}
				a := newLock(t, c, key, leaseA, opts)
				bl := newLock(t, c, key, time.Hour, opts)
				if err := a.Acquire(ctx); err != nil {
					t.Fatal(err)
				}
				ttls := cs.TTLCalls.Load()
				bDone := acquireAsync(bl, 15*time.Second)
				if how == "released" {
					// B read the lease left with its watch in place: it is
					// waiting.
					awaitCalls(t, &cs.TTLCalls, ttls+1, bDone, "B's Acquire")
					if err := a.Release(ctx); err != nil {
						t.Fatal(err)
					}
				} // else: A overruns its lease; B takes the lock when it ends
				if err := <-bDone; err != nil {
					t.Fatalf("B: %v", err)
				}
				token, err := s.Get(ctx, bl.Key())
				if err != nil {
					t.Fatal(err)
				}

				cl := newLock(t, c, key, time.Hour, opts)
				ttls = cs.TTLCalls.Load()
				cDone := acquireAsync(cl, 15*time.Second)
				awaitCalls(t, &cs.TTLCalls, ttls+1, cDone, "C's Acquire") // C is waiting
				adds := cs.AddCalls.Load()

				// A's stale releases: the first reaches the store when A's
				// lease expired (its token is still set), the second not.
				for i := range 2 {
					if err := a.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
						t.Fatalf("A's stale release %d: %v; want ErrNotHeld", i+1, err)
					}
				}
				time.Sleep(200 * time.Millisecond)
				stillWaiting(t, cDone, "C's Acquire, after A's stale release,")
				if got, err := s.Get(ctx, bl.Key()); err != nil || string(got) != string(token) {
					t.Fatalf("lock key after A's stale release: %q, %v; want B's token %q", got, err, token)
				}
				if got := cs.AddCalls.Load(); notifies && got != adds {
					t.Fatalf("acquisition attempts after A's stale release: %d; want none (C was woken)", got-adds)
				}

				if err := bl.Release(ctx); err != nil {
					t.Fatal(err)
				}
				if err := <-cDone; err != nil {
					t.Fatalf("C after B's release: %v", err)
				}
				if err := cl.Release(ctx); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

// Extend keeps the lock past its original lease, on stores that cannot
// report a TTL (Memcached) too; Remaining follows it, and is 0 after
// Release.
func TestRedLockExtend(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[string](t, s, ns)
		lease, past := 200*time.Millisecond, 500*time.Millisecond
		if b.Name == "memcached" {
			lease, past = time.Second, 2500*time.Millisecond // whole seconds
		}
		const extended = 10 * time.Second
		l := newLock(t, c, "key", lease, nil)
		other := newLock(t, c, "key", lease, nil)
		if err := l.Extend(ctx, extended); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("Extend before Acquire: %v; want ErrNotHeld", err)
		}
		if err := l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.Extend(ctx, 0); !errors.Is(err, cache.ErrInvalidTTL) {
			t.Fatalf("Extend by 0: %v; want ErrInvalidTTL", err)
		}
		if err := l.Extend(ctx, extended); err != nil {
			t.Fatal(err)
		}
		if got := l.Remaining(); got <= lease || got > extended {
			t.Fatalf("Remaining() after Extend(%v) = %v; want in (%v, %v]", extended, got, lease, extended)
		}
		time.Sleep(past) // the original lease is over
		if ok, err := other.TryAcquire(ctx); ok || err != nil {
			t.Fatalf("TryAcquire %v after a lease of %v extended to %v: %v, %v; want false, nil", past, lease, extended, ok, err)
		}
		if got := l.Remaining(); !l.Held() || got <= extended-past-time.Second || got > extended-past {
			t.Fatalf("Held() = %v, Remaining() = %v after %v; want true, about %v", l.Held(), got, past, extended-past)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if l.Held() || l.Remaining() != 0 {
			t.Fatalf("after Release: Held() = %v, Remaining() = %v; want false, 0", l.Held(), l.Remaining())
		}
		if err := l.Extend(ctx, extended); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("Extend after Release: %v; want ErrNotHeld", err)
		}
		if ok, err := other.TryAcquire(ctx); !ok || err != nil {
			t.Fatalf("TryAcquire after Release: %v, %v; want true, nil", ok, err)
		}
		if err := other.Release(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// noTTL hides a store's TTL, and its Watch (only cache.Store's methods are
// promoted): as on Memcached, waiters poll and cannot tell the holder's
// remaining lease.
type noTTL struct{ cache.Store }

func (*noTTL) TTL(context.Context, string) (time.Duration, error) { return 0, cache.ErrUnsupported }

// The holder AcquireOrWait waits for releases, and another takes the lock
// before the waiter looks again: the wait ends all the same (the holder it
// waited for is gone) instead of running on through the new holder's lease.
// Where the store notifies, the release wakes the waiter; where it cannot
// (Memcached, and memory with TTL and Watch hidden), each poll reads the
// holder's token. The waiter has no in-process wake-up: its store is
// another instance (or, for memory, another wrapper).
func TestAcquireOrWaitHolderReplaced(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		ws := s
		switch {
		case b.Name == "memory":
			ws = &noTTL{s}
		case b.Shared:
			ws = b.New(t)
		}
		wcs := teststores.NewCounting(ws)
		c := newCache[string](t, s, ns)
		a := newLock(t, c, "key", time.Hour, nil)
		bl := newLock(t, c, "key", time.Hour, nil)
		if err := a.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		waiter := newLock(t, newCache[string](t, wcs, ns), "key", time.Hour, nil)
		done := make(chan error, 1)
		go func() {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			held, err := waiter.AcquireOrWait(wctx)
			if err == nil && held {
				err = errors.New("AcquireOrWait held a lock it should have waited for")
			}
			done <- err
		}()
		awaitCalls(t, &wcs.LockGetCalls, 1, done, "AcquireOrWait") // it read A's token
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, err := bl.TryAcquire(ctx); !ok || err != nil {
			t.Fatalf("B's TryAcquire after A's release: %v, %v; want true, nil", ok, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("AcquireOrWait after its holder left and B took the lock (lease an hour): %v; want the wait over within 10s", err)
		}
		if err := bl.Release(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
