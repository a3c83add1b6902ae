package lock_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/teststores"
	"github.com/typedcache/typedcache/lock"
)

func memStore(t *testing.T) cache.Store { return teststores.Get(t, "memory").New(t) }

// A context that has ended makes Acquire fail with ErrNotObtained, even
// when the store call is what noticed it.
func TestAcquireCancelledContext(t *testing.T) {
	c := newCache[string](t, memStore(t), "n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := lock.NewRedLock(c, "k", time.Minute, nil).Acquire(ctx)
	if !errors.Is(err, lock.ErrNotObtained) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with a cancelled context: %v; want ErrNotObtained and Canceled", err)
	}
}

// flakyRelease fails the first DeleteIfEqual.
type flakyRelease struct {
	cache.Store
	failed atomic.Bool
}

func (f *flakyRelease) DeleteIfEqual(ctx context.Context, key string, value []byte) (bool, error) {
	if f.failed.CompareAndSwap(false, true) {
		return false, errors.New("connection reset")
	}
	return f.Store.DeleteIfEqual(ctx, key, value)
}

// A release that fails in the store can be retried.
func TestReleaseRetryAfterStoreError(t *testing.T) {
	ctx := context.Background()
	s := &flakyRelease{Store: memStore(t)}
	l := lock.NewRedLock(newCache[string](t, s, "n"), "k", time.Minute, nil)
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
	holder := lock.NewRedLock(c, "k", 5*time.Second, nil)
	if err := holder.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	returned := make(chan bool, 1)
	go func() {
		held, err := lock.NewRedLock(c, "k", 5*time.Second, nil).AcquireOrWait(ctx)
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
	holder := lock.NewRedLock(c, "k", 5*time.Second, nil)
	if err := holder.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- lock.NewRedLock(c, "k", 5*time.Second, nil).Acquire(ctx) }()
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
