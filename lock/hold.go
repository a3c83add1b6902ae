package lock

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Hold acquires the lock (waiting as Acquire does), then runs fn with a
// context that ends when the lock is lost, and releases the lock when fn
// returns (or panics). While fn runs, a watchdog extends the lease every
// third of it (Redisson's watchdog), so that fn may run longer than the
// lease; when an extension finds the lock taken (ErrNotHeld), or the store
// fails until less than a sixth of the lease is left on the local clock,
// the watchdog cancels fn's context with the cause ErrLost (joined with the
// store's error): fn must stop writing to the protected resource when
// ctx.Done() is closed. fn's context also ends with ctx.
//
// Hold returns fn's error, joined with ErrLost if the lock was lost while
// it ran, and with the error of the release if that failed.
func (l *RedLock) Hold(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if err := l.Acquire(ctx); err != nil {
		return err
	}
	hctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		l.watchdog(hctx, cancel, done)
	}()
	defer func() {
		close(done)
		<-stopped
		lost := errors.Is(context.Cause(hctx), ErrLost)
		cancel(nil)
		if lost {
			err = errors.Join(err, l.fail("hold", context.Cause(hctx)))
			_ = l.Release(ctx) // whatever is left of it: ErrNotHeld is expected
			return
		}
		if rerr := l.Release(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	return fn(hctx)
}

// watchdog extends the lease every third of it until done is closed, and
// cancels with ErrLost when the lock is lost.
func (l *RedLock) watchdog(ctx context.Context, cancel context.CancelCauseFunc, done <-chan struct{}) {
	every := max(l.lease/3, time.Millisecond)
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := l.Extend(context.WithoutCancel(ctx), l.lease)
		switch {
		case err == nil:
			t.Reset(every)
		case errors.Is(err, ErrNotHeld):
			cancel(fmt.Errorf("%w: %w", ErrLost, err))
			return
		default:
			// The store failed: try again soon, while enough of the lease
			// is left for the holder to notice in time.
			if l.Remaining() < l.lease/6 {
				cancel(fmt.Errorf("%w: the lease could not be extended: %w", ErrLost, err))
				return
			}
			t.Reset(min(every, max(l.Remaining()/4, time.Millisecond)))
		}
	}
}
