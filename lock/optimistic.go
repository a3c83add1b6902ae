package lock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// OptimisticLock holds a typed value as it was read, with the store's token
// for it, so that it can be written back only if nobody changed the key
// meanwhile. It takes no lock: a conflicting write makes CAS fail instead.
//
// Unlike aiocache, a key that was absent when read is written only if it is
// still absent: a value created meanwhile by someone else is a conflict, not
// something to overwrite (aiocache's OptimisticLock loses that update).
type OptimisticLock[K comparable, V any] struct {
	c     *cache.Cache[K, V]
	key   K
	value V
	found bool
	token cache.Token
	used  bool
}

// NewOptimisticLock reads key from c with its token. A missing key is not an
// error: Value reports found == false, and CAS then writes only if the key is
// still absent. Writes through the lock use c's TTL; to write with another,
// pass a view such as c.WithTTL(time.Minute).
func NewOptimisticLock[K comparable, V any](ctx context.Context, c *cache.Cache[K, V], key K) (*OptimisticLock[K, V], error) {
	v, found, token, err := c.Gets(ctx, key)
	if err != nil {
		return nil, err
	}
	return &OptimisticLock[K, V]{c: c, key: key, value: v, found: found, token: token}, nil
}

// Value returns the value read and whether the key was present.
func (l *OptimisticLock[K, V]) Value() (V, bool) { return l.value, l.found }

// CAS writes v if the key is unchanged since it was read (for a key that was
// absent: if it is still absent), with the cache's TTL. Otherwise it returns
// an error matching ErrConflict and writes nothing. A lock serves one
// successful CAS: after it, the token is spent and a second CAS returns
// ErrConflict; read again with NewOptimisticLock.
func (l *OptimisticLock[K, V]) CAS(ctx context.Context, v V) error {
	if l.used {
		return &cache.OpError{Op: "cas", Key: l.c.Key(l.key), Err: fmt.Errorf("%w: token already used", ErrConflict)}
	}
	if err := l.c.CompareAndSwap(ctx, l.key, v, l.token); err != nil {
		return err
	}
	l.used = true
	l.value, l.found = v, true
	return nil
}

// UpdateOptions configure Update. A nil *UpdateOptions, and every zero
// field, means the default.
type UpdateOptions struct {
	// MaxAttempts bounds the read-modify-write attempts; default 50.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the jittered exponential backoff
	// between attempts; defaults 1ms and 50ms.
	MinBackoff, MaxBackoff time.Duration
}

// Update applies fn to the value of key and writes the result back with
// compare-and-swap, retrying with jittered backoff when another writer got
// there first, until the write succeeds, fn returns an error, ctx ends (an
// error matching ctx.Err() and, when it differs, context.Cause(ctx)) or
// MaxAttempts conflicts happen (an error matching ErrConflict). fn receives
// the current value and whether the key exists; it may run several times and
// must not have side effects. Update returns the value written.
func Update[K comparable, V any](ctx context.Context, c *cache.Cache[K, V], key K, fn func(old V, found bool) (V, error), opts *UpdateOptions) (V, error) {
	var o UpdateOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 50
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(50*time.Millisecond, o.MinBackoff)
	}
	b := newBackoff(o.MinBackoff, o.MaxBackoff)
	var zero V
	var lastErr error
	for attempt := 0; attempt < o.MaxAttempts; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(b.delay(0))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return zero, fmt.Errorf("lock: update %s: stopped after %d attempts: %w", c.Key(key), attempt, ctxErr(ctx))
			}
		}
		l, err := NewOptimisticLock(ctx, c, key)
		if err != nil {
			return zero, withCause(ctx, err)
		}
		old, found := l.Value()
		v, err := fn(old, found)
		if err != nil {
			return zero, err
		}
		err = l.CAS(ctx, v)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, ErrConflict) {
			return zero, withCause(ctx, err)
		}
		lastErr = err
	}
	return zero, fmt.Errorf("lock: update %s: %d attempts conflicted: %w", c.Key(key), o.MaxAttempts, lastErr)
}

// withCause joins err, a store error, with context.Cause(ctx) when ctx has
// ended with a cause of its own (context.WithCancelCause) that err does not
// carry already: the store reports only ctx.Err().
func withCause(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	if cause := context.Cause(ctx); cause != ctx.Err() && !errors.Is(err, cause) {
		return errors.Join(err, cause)
	}
	return err
}
