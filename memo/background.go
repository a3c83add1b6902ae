package memo

import (
	"context"
	"errors"
	"sync"

	"github.com/typedcache/typedcache/cache"
)

// ctxError returns the error of an operation on key stopped by the end of
// ctx: it matches ctx.Err() (context.Canceled or context.DeadlineExceeded)
// and, when it differs, context.Cause(ctx), so that errors.Is finds each.
func ctxError(op, key string, ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		err = errors.Join(err, cause)
	}
	return &cache.OpError{Op: op, Key: key, Err: err}
}

// tracker counts the background goroutines of a Memo so that Close can
// wait for them, and gives them the base context that Close cancels.
// Unlike a sync.WaitGroup, goroutines may be added while Close waits. A nil
// *tracker (the package-level functions) tracks nothing and gives no base:
// their goroutines are bounded by the lease and the timeouts only.
type tracker struct {
	mu     sync.Mutex
	n      int
	idle   *sync.Cond
	base   context.Context
	cancel context.CancelFunc
}

func newTracker() *tracker {
	t := &tracker{}
	t.idle = sync.NewCond(&t.mu)
	t.base, t.cancel = context.WithCancel(context.Background())
	return t
}

// add counts a goroutine about to start and returns the base context its
// work derives from (nil for a nil tracker).
func (t *tracker) add() context.Context {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n++
	return t.base
}

func (t *tracker) done() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.n--
	if t.n == 0 {
		t.idle.Broadcast()
	}
	t.mu.Unlock()
}

// close cancels the base context of the running goroutines, waits until
// none runs, and gives the goroutines started after it a fresh base.
// Goroutines started while it waits get the cancelled base, so that they
// stop at once too.
func (t *tracker) close() {
	t.mu.Lock()
	t.cancel()
	for t.n > 0 {
		t.idle.Wait()
	}
	if t.base.Err() != nil { // not renewed by a concurrent close
		t.base, t.cancel = context.WithCancel(context.Background())
	}
	t.mu.Unlock()
}

// detached returns the context of background work started for a caller's
// ctx: it keeps ctx's values but not its cancellation nor its deadline, and
// it ends when base ends (Memo.Close). Without a base, nothing but the
// bounds each step applies ends it.
func detached(ctx, base context.Context) (context.Context, context.CancelFunc) {
	d := context.WithoutCancel(ctx)
	if base == nil {
		return d, noCancel
	}
	d, cancel := context.WithCancel(d)
	stop := context.AfterFunc(base, cancel)
	if base.Err() != nil {
		// AfterFunc runs cancel in a goroutine of its own: cancel now, so
		// that work started while Close waits stops before it begins.
		cancel()
	}
	return d, func() {
		stop()
		cancel()
	}
}
