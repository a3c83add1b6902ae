package lock_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/lock"
)

// Ported from aiocache's tests: inside the lock the lock key holds the
// token, and after release it is gone.
func TestRedLockHoldsToken(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[string](t, s, ns)
		l := newLock(t, c, "key", 10*time.Second, nil)
		if got, want := l.Key(), ns+":key\x00lock"; got != want {
			t.Fatalf("Key() = %q; want %q", got, want)
		}
		if err := l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		token, err := s.Get(ctx, l.Key())
		if err != nil {
			t.Fatalf("lock key while held: %v", err)
		}
		if len(token) != 36 {
			t.Fatalf("lock key holds %q; want a uuid token", token)
		}
		if !l.Held() || l.Remaining() <= 0 || l.Remaining() > 10*time.Second {
			t.Fatalf("Held() = %v, Remaining() = %v; want true and in (0, 10s]", l.Held(), l.Remaining())
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, l.Key()); !errors.Is(err, cache.ErrNotFound) {
			t.Fatalf("lock key after release: got err %v; want ErrNotFound", err)
		}
		// Tokens are fresh per acquisition.
		if err := l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		token2, _ := s.Get(ctx, l.Key())
		if string(token2) == string(token) {
			t.Fatalf("second acquisition reused token %q", token)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// Ported: a release without acquire deletes nothing; a wrong-token release,
// and another client's release, delete nothing (on Memcached too, unlike
// aiocache).
func TestRedLockReleaseNotHeld(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[string](t, s, ns)
		holder := newLock(t, c, "key", 10*time.Second, nil)
		other := newLock(t, c, "key", 10*time.Second, nil)

		if err := other.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("release without acquire: got %v; want ErrNotHeld", err)
		}
		if err := holder.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		token, _ := s.Get(ctx, holder.Key())
		if err := other.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("another client's release: got %v; want ErrNotHeld", err)
		}
		if ok, err := s.DeleteIfEqual(ctx, holder.Key(), []byte("wrong-token")); ok || err != nil {
			t.Fatalf("wrong-token release: got %v, %v; want false, nil", ok, err)
		}
		if got, err := s.Get(ctx, holder.Key()); err != nil || string(got) != string(token) {
			t.Fatalf("lock key after foreign releases: got %q, %v; want %q", got, err, token)
		}
		if ok, err := other.TryAcquire(ctx); ok || err != nil {
			t.Fatalf("TryAcquire of a held lock: got %v, %v; want false, nil", ok, err)
		}
		if err := other.Extend(ctx, time.Minute); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("Extend by a non-holder: got %v; want ErrNotHeld", err)
		}
		if err := holder.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if err := holder.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("second release: got %v; want ErrNotHeld", err)
		}
	})
}

// Ported: the dogpile. Four callers do get → lock → get → compute and set:
// four lock attempts, eight gets and exactly one set.
func TestRedLockDogpile(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		cs := teststores.NewCounting(s)
		c := newCache[string](t, cs, ns)
		var computations, waited atomic.Int64
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, found, err := c.Get(ctx, "key"); err != nil || found {
					t.Errorf("first get: found %v, err %v; want a miss", found, err)
					return
				}
				l := newLock(t, c, "key", 10*time.Second, nil)
				held, err := l.AcquireOrWait(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				v, found, err := c.Get(ctx, "key")
				if err != nil {
					t.Error(err)
				}
				if held {
					defer l.Release(ctx)
					if !found {
						computations.Add(1)
						time.Sleep(200 * time.Millisecond) // the expensive computation
						if err := c.Set(ctx, "key", "value"); err != nil {
							t.Error(err)
						}
					}
					return
				}
				waited.Add(1)
				if !found || v != "value" {
					t.Errorf("waiter read %q, found %v; want the holder's value", v, found)
				}
			}()
		}
		close(start)
		wg.Wait()
		if waited.Load() == 0 {
			t.Fatal("no caller waited for the lock: there was no contention to test")
		}
		if got := computations.Load(); got != 1 {
			t.Errorf("computations = %d; want 1", got)
		}
		if got := cs.AddCalls.Load(); got != 4 {
			t.Errorf("lock attempts = %d; want 4", got)
		}
		if got := cs.GetCalls.Load(); got != 8 {
			t.Errorf("gets = %d; want 8", got)
		}
		if got := cs.SetCalls.Load(); got != 1 {
			t.Errorf("sets = %d; want 1", got)
		}
	})
}

// Ported: with a lease shorter than the work, waiters go on after the
// lease instead of waiting for the work.
func TestRedLockWaitBoundedByLease(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[string](t, s, ns)
		lease := 300 * time.Millisecond
		if b.Name == "memcached" {
			lease = time.Second // whole seconds
		}
		holder := newLock(t, c, "key", lease, nil)
		if err := holder.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		// The holder "works" until the waiter has returned: if the waiter
		// waited for the work rather than the lease, this would deadlock
		// and the test would time out.
		done := make(chan error, 1)
		go func() {
			waiter := newLock(t, c, "key", lease, nil)
			held, err := waiter.AcquireOrWait(ctx)
			if held {
				err = errors.Join(err, errors.New("waiter got a lock that was held"))
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("waiter still waiting 30s after a lease of " + lease.String())
		}
		// The waiter went on when the lease ran out by its clock; the store
		// may keep the key a little longer (Memcached: up to a second more,
		// as its clock ticks in whole seconds and a lease never ends early).
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			ok, err := s.Exists(ctx, holder.Key())
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("lock key of a lease of %v still there 5s after the waiter went on", lease)
			}
		}
		if err := holder.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("release after the lease ran out: got %v; want ErrNotHeld", err)
		}
	})
}

// Ported: an error in the critical section propagates and the lock is
// released.
func TestRedLockDoError(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[string](t, s, ns)
		l := newLock(t, c, "key", 10*time.Second, nil)
		boom := errors.New("boom")
		err := l.Do(ctx, func(ctx context.Context) error {
			if _, err := s.Get(ctx, l.Key()); err != nil {
				t.Errorf("lock key inside Do: %v", err)
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Do: got %v; want boom", err)
		}
		if ok, err := s.Exists(ctx, l.Key()); ok || err != nil {
			t.Fatalf("lock key after Do: exists %v, err %v; want released", ok, err)
		}
		func() {
			defer func() { recover() }()
			l.Do(ctx, func(context.Context) error { panic("boom") })
		}()
		if ok, _ := s.Exists(ctx, l.Key()); ok {
			t.Fatal("lock key after a panic in Do: still held")
		}
	})
}

// Release after the lease expired returns ErrNotHeld and leaves the new
// holder's lock in place.
func TestRedLockReleaseAfterExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[string](t, s, ns)
		lease := 100 * time.Millisecond
		if b.Name == "memcached" {
			lease = time.Second
		}
		first := newLock(t, c, "key", lease, nil)
		if err := first.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		second := newLock(t, c, "key", time.Minute, nil)
		if err := second.Acquire(ctx); err != nil { // waits for the lease to run out
			t.Fatal(err)
		}
		if err := first.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("stale release: got %v; want ErrNotHeld", err)
		}
		if err := first.Extend(ctx, time.Minute); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("stale extend: got %v; want ErrNotHeld", err)
		}
		if ok, _ := s.Exists(ctx, second.Key()); !ok {
			t.Fatal("the new holder's lock is gone after a stale release")
		}
		if err := second.Extend(ctx, 2*time.Minute); err != nil {
			t.Fatalf("holder's extend: %v", err)
		}
		if b.TTLReadable {
			if ttl, err := s.TTL(ctx, second.Key()); err != nil || ttl <= time.Minute {
				t.Fatalf("ttl after Extend: %v, %v; want > 1m", ttl, err)
			}
		}
		if err := second.Release(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// Acquire honours its context: it returns ErrNotObtained joined with the
// context's error, and Release works with a cancelled context.
func TestRedLockContext(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		c := newCache[string](t, s, ns)
		holder := newLock(t, c, "key", time.Minute, nil)
		if err := holder.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		err := newLock(t, c, "key", time.Minute, nil).Acquire(ctx)
		if !errors.Is(err, lock.ErrNotObtained) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Acquire past its deadline: got %v; want ErrNotObtained and DeadlineExceeded", err)
		}
		cancelled, cancel2 := context.WithCancel(context.Background())
		cancel2()
		if err := holder.Release(cancelled); err != nil {
			t.Fatalf("Release with a cancelled context: %v", err)
		}
		if ok, _ := s.Exists(context.Background(), holder.Key()); ok {
			t.Fatal("lock key still there after Release with a cancelled context")
		}
	})
}

// In the process, a release wakes the waiters of that release, and each
// acquisition's wake-up is its own: after a handoff chain through N
// goroutines, every goroutine got the lock exactly once.
func TestRedLockHandoffChain(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := newCache[string](t, s, ns)
		const n = 8
		var inside, maxInside, waited atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				l := newLock(t, c, "key", 30*time.Second, nil)
				if ok, _ := l.TryAcquire(ctx); !ok {
					waited.Add(1)
					if err := l.Acquire(ctx); err != nil {
						t.Error(err)
						return
					}
				}
				cur := inside.Add(1)
				for {
					m := maxInside.Load()
					if cur <= m || maxInside.CompareAndSwap(m, cur) {
						break
					}
				}
				time.Sleep(10 * time.Millisecond)
				inside.Add(-1)
				if err := l.Release(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if waited.Load() == 0 {
			t.Fatal("no goroutine waited: no contention")
		}
		if got := maxInside.Load(); got != 1 {
			t.Fatalf("at most %d goroutines inside at once; want 1", got)
		}
	})
}

// Fencing tokens grow with every acquisition where the store supports
// them.
func TestRedLockFence(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[string](t, s, ns)
		_, fencing := s.(cache.Fencer)
		var last int64
		for i := range 5 {
			l := newLock(t, c, "key", 10*time.Second, &lock.Options{Fencing: true})
			if err := l.Acquire(ctx); err != nil {
				t.Fatal(err)
			}
			f, ok := l.Fence()
			if ok != fencing {
				t.Fatalf("Fence ok = %v; want %v (store is a Fencer: %v)", ok, fencing, fencing)
			}
			if fencing && f <= last {
				t.Fatalf("acquisition %d: fence %d; want > %d", i, f, last)
			}
			last = f
			if err := l.Release(ctx); err != nil {
				t.Fatal(err)
			}
			if _, ok := l.Fence(); ok {
				t.Fatal("Fence after Release: ok; want not held")
			}
		}
	})
}

// Without Options.Fencing a lock takes no fencing token and leaves no
// state behind: a lock per cached item (memo) must not leave a counter per
// item. It never calls AddFenced; with Fencing it calls it once.
func TestRedLockWithoutFencing(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		f, ok := s.(cache.Fencer)
		if !ok {
			t.Skip("the store is no cache.Fencer")
		}
		fs := &fenceCounting{Store: s, f: f}
		c := newCache[string](t, fs, ns)
		l := newLock(t, c, "item", 10*time.Second, nil)
		if err := l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := l.Fence(); ok {
			t.Fatal("Fence without Options.Fencing: ok; want no token")
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if got := fs.calls.Load(); got != 0 {
			t.Fatalf("AddFenced calls without Options.Fencing: got %d; want 0", got)
		}
		fenced := newLock(t, c, "item", 10*time.Second, &lock.Options{Fencing: true})
		if err := fenced.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		defer fenced.Release(ctx)
		if _, ok := fenced.Fence(); !ok {
			t.Fatal("Fence with Options.Fencing: not ok; want a token")
		}
		if got := fs.calls.Load(); got != 1 {
			t.Fatalf("AddFenced calls of one fenced acquisition: got %d; want 1", got)
		}
	})
}

// fenceCounting is a store that counts the calls of AddFenced.
type fenceCounting struct {
	cache.Store
	f     cache.Fencer
	calls atomic.Int64
}

func (s *fenceCounting) AddFenced(ctx context.Context, key string, value []byte, ttl time.Duration) (int64, error) {
	s.calls.Add(1)
	return s.f.AddFenced(ctx, key, value, ttl)
}
