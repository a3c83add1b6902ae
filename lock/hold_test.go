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

// holdLease is short, so that the watchdog works during the test; whole
// seconds on Memcached, whose expiry ticks in seconds.
func holdLease(b teststores.Backend) time.Duration {
	if b.Name == "memcached" {
		return 2 * time.Second
	}
	return 300 * time.Millisecond
}

// Hold keeps the lock past its lease while fn runs: another holder cannot
// take it, even three leases later, and it is released when fn returns.
func TestHoldOutlivesLease(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		lease := holdLease(b)
		c := newCache[string](t, s, ns)
		holder := newLock(t, c, "job", lease, nil)
		other := newLock(t, c, "job", lease, nil)
		err := holder.Hold(ctx, func(ctx context.Context) error {
			deadline := time.Now().Add(3 * lease)
			for time.Now().Before(deadline) {
				if ok, err := other.TryAcquire(ctx); ok || err != nil {
					t.Errorf("another holder got the lock %v into a Hold with lease %v: %v, %v", 3*lease-time.Until(deadline), lease, ok, err)
					return nil
				}
				select {
				case <-ctx.Done():
					t.Errorf("Hold's context ended while the lock was held: %v", context.Cause(ctx))
					return nil
				case <-time.After(lease / 4):
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Hold: %v", err)
		}
		if ok, err := other.TryAcquire(ctx); !ok || err != nil {
			t.Fatalf("TryAcquire after Hold returned: %v, %v; want the lock released", ok, err)
		}
		other.Release(ctx)
	})
}

// A lock lost while fn runs ends fn's context with the cause ErrLost, and
// Hold reports it: here the lock key is deleted behind the holder's back
// and another holder takes it.
func TestHoldLost(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		lease := holdLease(b)
		c := newCache[string](t, s, ns)
		holder := newLock(t, c, "job", lease, nil)
		thief := newLock(t, c, "job", time.Minute, nil)
		var cause atomic.Value
		err := holder.Hold(ctx, func(hctx context.Context) error {
			if _, err := s.Delete(ctx, holder.Key()); err != nil {
				t.Error(err)
			}
			if ok, err := thief.TryAcquire(ctx); !ok || err != nil {
				t.Errorf("the thief's TryAcquire: %v, %v", ok, err)
			}
			select {
			case <-hctx.Done():
				cause.Store(context.Cause(hctx))
				return hctx.Err()
			case <-time.After(10 * lease):
				return errors.New("Hold's context did not end when the lock was lost")
			}
		})
		if c, _ := cause.Load().(error); !errors.Is(c, lock.ErrLost) {
			t.Fatalf("cause of Hold's context: %v; want ErrLost", c)
		}
		if !errors.Is(err, lock.ErrLost) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Hold: %v; want ErrLost and fn's Canceled", err)
		}
		// The thief's lock was left alone.
		if err := thief.Release(ctx); err != nil {
			t.Fatalf("the thief's Release: %v", err)
		}
	})
}

// noExtend is a store whose every ExtendIfEqual fails, as an unreachable
// one would.
type noExtend struct{ cache.Store }

func (noExtend) ExtendIfEqual(context.Context, string, []byte, time.Duration) (bool, error) {
	return false, errors.New("connection refused")
}

// When the lease cannot be extended, Hold's context ends before the lease
// runs out on the local clock, with the cause ErrLost.
func TestHoldStoreDown(t *testing.T) {
	ctx := context.Background()
	const lease = 600 * time.Millisecond
	l := newLock(t, newCache[string](t, noExtend{memStore(t)}, "n"), "job", lease, nil)
	var left time.Duration
	err := l.Hold(ctx, func(hctx context.Context) error {
		select {
		case <-hctx.Done():
			left = l.Remaining()
			return nil
		case <-time.After(10 * lease):
			return errors.New("Hold's context did not end")
		}
	})
	if !errors.Is(err, lock.ErrLost) {
		t.Fatalf("Hold: %v; want ErrLost", err)
	}
	if left <= 0 {
		t.Fatalf("fn learned of the loss with %v of the lease left; want before it ran out", left)
	}
}
