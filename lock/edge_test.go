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

func memStore(t *testing.T) cache.Store { return teststores.Get(t, "memory").New(t) }

// A context that has ended makes Acquire fail with ErrNotObtained, even
// when the store call is what noticed it.
func TestAcquireCancelledContext(t *testing.T) {
	c := newCache[string](t, memStore(t), "n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := newLock(t, c, "k", time.Minute, nil).Acquire(ctx)
	if !errors.Is(err, lock.ErrNotObtained) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with a cancelled context: %v; want ErrNotObtained and Canceled", err)
	}
}

// flakyRelease fails the first DeleteIfEqual, and the Get after it (the
// store is down for a moment), without deleting anything.
type flakyRelease struct {
	cache.Store
	failed, getFailed atomic.Bool
}

func (f *flakyRelease) DeleteIfEqual(ctx context.Context, key string, value []byte) (bool, error) {
	if f.failed.CompareAndSwap(false, true) {
		return false, errors.New("connection reset")
	}
	return f.Store.DeleteIfEqual(ctx, key, value)
}

func (f *flakyRelease) Get(ctx context.Context, key string) ([]byte, error) {
	if f.failed.Load() && f.getFailed.CompareAndSwap(false, true) {
		return nil, errors.New("connection refused")
	}
	return f.Store.Get(ctx, key)
}

// A release that fails in the store, and cannot be settled by reading the
// lock key back, can be retried.
func TestReleaseRetryAfterStoreError(t *testing.T) {
	ctx := context.Background()
	s := &flakyRelease{Store: memStore(t)}
	l := newLock(t, newCache[string](t, s, "n"), "k", time.Minute, nil)
	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx); err == nil || errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("first Release: %v; want the store's error", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("second Release: %v; want the lock released", err)
	}
	if ok, _ := s.Exists(ctx, l.Key()); ok {
		t.Fatal("lock key still there")
	}
}

// pokeable is a store whose watches can be woken by the test, as a
// spurious wake-up would.
type pokeable struct {
	cache.Store
	poke chan struct{}
}

func (p *pokeable) Watch(ctx context.Context, key string) (<-chan struct{}, func(), error) {
	return p.poke, func() {}, nil
}

// A wake-up while the holder still holds the lock does not end
// AcquireOrWait's wait.
func TestAcquireOrWaitIgnoresSpuriousWakeups(t *testing.T) {
	ctx := context.Background()
	s := &pokeable{Store: memStore(t), poke: make(chan struct{}, 1)}
	c := newCache[string](t, s, "n")
	holder := newLock(t, c, "k", 5*time.Second, nil)
	if err := holder.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	returned := make(chan bool, 1)
	go func() {
		held, err := newLock(t, c, "k", 5*time.Second, nil).AcquireOrWait(ctx)
		if err != nil {
			t.Error(err)
		}
		returned <- held
	}()
	for range 3 {
		s.poke <- struct{}{}
		select {
		case <-returned:
			t.Fatal("AcquireOrWait returned on a spurious wake-up while the lock was held")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := holder.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case held := <-returned:
		if held {
			t.Fatal("AcquireOrWait reported holding a lock it only waited for")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("AcquireOrWait did not return after the release")
	}
}

// unhashable is a store value that cannot be a map key.
type unhashable struct {
	cache.Store
	tags []string
}

// A store that cannot be a map key still works: waiters poll or watch.
func TestUnhashableStore(t *testing.T) {
	ctx := context.Background()
	c := newCache[string](t, unhashable{Store: memStore(t), tags: []string{"x"}}, "n")
	holder := newLock(t, c, "k", 5*time.Second, nil)
	if err := holder.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- newLock(t, c, "k", 5*time.Second, nil).Acquire(ctx) }()
	time.Sleep(20 * time.Millisecond)
	if err := holder.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A cancelled Update reports the cancellation, not a conflict.
func TestUpdateCancelled(t *testing.T) {
	c := newCache[counter](t, memStore(t), "n")
	ctx, cancel := context.WithCancel(context.Background())
	_, err := lock.Update(ctx, c, "k", func(old counter, _ bool) (counter, error) {
		c.Set(context.Background(), "k", counter{N: old.N + 100}) // always conflict
		cancel()
		return old, nil
	}, &lock.UpdateOptions{MaxAttempts: 100})
	if !errors.Is(err, context.Canceled) || errors.Is(err, lock.ErrConflict) {
		t.Fatalf("cancelled Update: %v; want Canceled, not ErrConflict", err)
	}
}

// watchCounting counts the watches a memory store starts, and runs
// beforeWatch, if set, at the start of each.
type watchCounting struct {
	cache.Store
	watches     atomic.Int64
	beforeWatch func()
}

func (w *watchCounting) Watch(ctx context.Context, key string) (<-chan struct{}, func(), error) {
	w.watches.Add(1)
	if w.beforeWatch != nil {
		w.beforeWatch()
	}
	return w.Store.(cache.Notifier).Watch(ctx, key)
}

// An uncontended Acquire or AcquireOrWait starts no watch (on Redis a
// SUBSCRIBE, a PING and an UNSUBSCRIBE): one store call takes the lock.
// A contended one does.
func TestUncontendedAcquireStartsNoWatch(t *testing.T) {
	ctx := context.Background()
	s := &watchCounting{Store: memStore(t)}
	c := newCache[string](t, s, "n")
	l := newLock(t, c, "k", time.Minute, nil)
	for range 3 {
		if err := l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if held, err := l.AcquireOrWait(ctx); !held || err != nil {
			t.Fatalf("AcquireOrWait of a free lock: %v, %v; want true, nil", held, err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.watches.Load(); got != 0 {
		t.Fatalf("watches of uncontended acquisitions: %d; want 0", got)
	}

	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	// Release only once the waiter found the lock busy and starts its watch:
	// released earlier, it would take the lock uncontended.
	watching := make(chan struct{})
	var once sync.Once
	s.beforeWatch = func() { once.Do(func() { close(watching) }) }
	done := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		done <- newLock(t, c, "k", time.Minute, nil).Acquire(wctx)
	}()
	select {
	case <-watching:
	case err := <-done:
		t.Fatalf("contended Acquire returned (err %v) without starting a watch", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := s.watches.Load(); got != 1 {
		t.Fatalf("watches of a contended Acquire: %d; want 1", got)
	}
}

// A release between the first attempt and the start of the watch is not
// missed: the waiters never poll (hour-long backoff and lease), and the
// release happens just before the watch starts, where it cannot wake them.
func TestReleaseBeforeWatchNotMissed(t *testing.T) {
	for _, mode := range []string{"Acquire", "AcquireOrWait"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			s := &watchCounting{Store: memStore(t)}
			c := newCache[string](t, s, "n")
			opts := &lock.Options{MinBackoff: time.Hour, MaxBackoff: time.Hour}
			holder := newLock(t, c, "k", time.Hour, opts)
			if err := holder.Acquire(ctx); err != nil {
				t.Fatal(err)
			}
			s.beforeWatch = func() {
				if err := holder.Release(ctx); err != nil {
					t.Error(err)
				}
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			waiter := newLock(t, c, "k", time.Hour, opts)
			var err error
			if mode == "Acquire" {
				err = waiter.Acquire(wctx)
			} else {
				_, err = waiter.AcquireOrWait(wctx)
			}
			if err != nil {
				t.Fatalf("%s with a release just before its watch: %v; want it not missed", mode, err)
			}
			if s.watches.Load() != 1 {
				t.Fatalf("watches: %d; want 1 (the lock was busy at the first attempt)", s.watches.Load())
			}
		})
	}
}

// A context cancelled with a cause of its own: the error matches
// ErrNotObtained, context.Canceled and the cause, whether the context ended
// before the call, while waiting, or during the store call.
func TestContextCause(t *testing.T) {
	cause := errors.New("shutting down")
	check := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, lock.ErrNotObtained) || !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
			t.Errorf("%s: %v; want ErrNotObtained, context.Canceled and the cause", what, err)
		}
	}
	ctx := context.Background()
	c := newCache[string](t, memStore(t), "n")
	holder := newLock(t, c, "busy", time.Minute, nil)
	if err := holder.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	defer holder.Release(ctx)

	ended, cancel := context.WithCancelCause(ctx)
	cancel(cause)
	_, err := newLock(t, c, "free", time.Minute, nil).TryAcquire(ended)
	check(t, "TryAcquire, ended before", err)
	check(t, "Acquire, ended before", newLock(t, c, "busy", time.Minute, nil).Acquire(ended))

	waiting := func() context.Context {
		ctx, cancel := context.WithCancelCause(ctx)
		time.AfterFunc(50*time.Millisecond, func() { cancel(cause) })
		return ctx
	}
	check(t, "Acquire, ended while waiting", newLock(t, c, "busy", time.Minute, nil).Acquire(waiting()))
	_, err = newLock(t, c, "busy", time.Minute, nil).AcquireOrWait(waiting())
	check(t, "AcquireOrWait, ended while waiting", err)

	// Ended during the store call (the store reports only ctx.Err()).
	sctx, scancel := context.WithCancelCause(ctx)
	s := &addThenCancel{Store: memStore(t), cancel: func() { scancel(cause) }}
	_, err = newLock(t, newCache[string](t, s, "n"), "k", time.Minute, nil).TryAcquire(sctx)
	check(t, "TryAcquire, ended in the store call", err)

	// Update: ended in its backoff, and in a store call.
	ints := newCache[counter](t, memStore(t), "n")
	conflicting := func(old counter, _ bool) (counter, error) {
		ints.Set(ctx, "k", counter{N: old.N + 1}) // always conflict
		return old, nil
	}
	_, err = lock.Update(waiting(), ints, "k", conflicting, &lock.UpdateOptions{MaxAttempts: 1000, MinBackoff: time.Second})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) || errors.Is(err, lock.ErrConflict) {
		t.Errorf("Update ended in its backoff: %v; want context.Canceled and the cause, not ErrConflict", err)
	}
	uctx, ucancel := context.WithCancelCause(ctx)
	_, err = lock.Update(uctx, ints, "k", func(old counter, found bool) (counter, error) {
		ucancel(cause)
		return old, nil
	}, nil)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		t.Errorf("Update ended in a store call: %v; want context.Canceled and the cause", err)
	}
}

// addThenCancel is a store whose Add stores the value and then finds the
// caller's context ended: the deadline hit after the store applied it.
type addThenCancel struct {
	cache.Store
	cancel func() // ends the caller's context
}

func (s *addThenCancel) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.Store.Add(context.WithoutCancel(ctx), key, value, ttl); err != nil {
		return err
	}
	s.cancel()
	return ctx.Err()
}

// An acquisition whose context ended after the store took the lock does
// not leave it held by nobody for a whole lease: its token is deleted.
func TestAcquireEndedAfterAddLeavesNoLock(t *testing.T) {
	ctx := context.Background()
	s := &addThenCancel{Store: memStore(t)}
	c := newCache[string](t, s, "n")
	for _, mode := range []string{"TryAcquire", "Acquire"} {
		actx, cancel := context.WithTimeout(ctx, time.Minute)
		s.cancel = cancel
		l := newLock(t, c, "k-"+mode, time.Hour, nil)
		var err error
		if mode == "TryAcquire" {
			_, err = l.TryAcquire(actx)
		} else {
			err = l.Acquire(actx)
		}
		cancel()
		if !errors.Is(err, lock.ErrNotObtained) || !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: %v; want ErrNotObtained and context.Canceled", mode, err)
		}
		if l.Held() {
			t.Fatalf("%s: Held() after a failed acquisition", mode)
		}
		if ok, err := s.Exists(ctx, l.Key()); ok || err != nil {
			t.Fatalf("%s: lock key after an acquisition that failed: exists %v (err %v); want deleted", mode, ok, err)
		}
	}
}
