package lock_test

import (
	"testing"
	"time"

	"github.com/typedcache/typedcache/internal/testing/teststores"
)

// A waiter on a store that notifies releases (memory, Redis) sends no
// request while it waits: with the default options, while a holder keeps
// a lock with a 3s lease for 2s, the waiter's store calls before the
// release are its first acquisition attempt, the read of the holder's
// remaining lease, and at most one more. The waiter is on a store
// instance of its own (on Redis, a client of its own: another process).
func TestRedLockWaiterRequests(t *testing.T) {
	const lease, hold, most = 3 * time.Second, 2 * time.Second, 3
	for _, name := range []string{"memory", "redis"} {
		t.Run(name, func(t *testing.T) {
			b := teststores.Get(t, name)
			s, ns := b.New(t), teststores.Namespace("lockwait")
			ws := s
			if b.Shared {
				ws = b.New(t)
			}
			wcs := teststores.NewCounting(ws)
			holder := newLock(t, newCache[string](t, s, ns), "key", lease, nil)
			waiter := newLock(t, newCache[string](t, wcs, ns), "key", lease, nil)
			if err := holder.Acquire(t.Context()); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			done := acquireAsync(waiter, 15*time.Second)
			awaitCalls(t, &wcs.TTLCalls, 1, done, "the waiter's Acquire") // it found the lock busy
			time.Sleep(hold - time.Since(start))
			stillWaiting(t, done, "the waiter's Acquire")
			adds, ttls := wcs.AddCalls.Load(), wcs.TTLCalls.Load()
			gets := wcs.GetCalls.Load() + wcs.LockGetCalls.Load()
			others := wcs.SetCalls.Load() + wcs.DeleteCalls.Load() + wcs.DeleteIfEqualCalls.Load() +
				wcs.SwapCalls.Load() + wcs.GetMultiCalls.Load() + wcs.SetMultiCalls.Load()
			if err := holder.Release(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("the waiter's Acquire after the release: %v", err)
			}
			if err := waiter.Release(t.Context()); err != nil {
				t.Fatal(err)
			}
			total := adds + ttls + gets + others
			t.Logf("%s: the waiter's requests during a %v hold of a %v lease: %d (Add %d, TTL %d, Get %d, others %d)",
				name, hold, lease, total, adds, ttls, gets, others)
			if total > most {
				t.Errorf("the waiter's requests during a %v hold of a %v lease: %d (Add %d, TTL %d, Get %d, others %d); want at most %d",
					hold, lease, total, adds, ttls, gets, others, most)
			}
		})
	}
}
