package memo

import (
	"context"
	"sync"
	"time"
)

// Call lets a computation decide about the value it returns, and read the
// value it replaces. The context memo gives a computation of one key
// (GetOrCompute, Memo.Get, Memo.Refresh) carries one: get it with
// CallFrom. A bulk computation's (GetOrComputeMulti, Memo.GetMulti) does
// not.
//
//	load := func(ctx context.Context) (Page, error) {
//		old, _, ok := memo.Stale[Page](ctx)
//		p, changed, err := fetch(ctx, old.ETag) // a conditional request
//		if err == nil && !changed && ok {
//			return old, nil // the same value, fresh for another TTL
//		}
//		if p.Private {
//			memo.CallFrom(ctx).DontCache()
//		} else if p.MaxAge > 0 {
//			memo.CallFrom(ctx).SetTTL(p.MaxAge)
//		}
//		return p, err
//	}
//
// To answer "not found", a computation returns ErrNotFound.
type Call struct {
	mu      sync.Mutex
	ttl     time.Duration
	skip    bool
	stale   any
	written time.Time
	has     bool
}

type callKey struct{}

// withoutCall returns ctx carrying a Call that decides nothing, for the
// computations whose values are not stored under one key's lease (bulk,
// fail-open): CallFrom and Stale there must not reach the Call of a
// computation ctx was made from.
func withoutCall(ctx context.Context) context.Context {
	return context.WithValue(ctx, callKey{}, &Call{})
}

// CallFrom returns the Call of the computation whose context is ctx, or a
// Call that decides nothing outside of one (its methods are then no-ops).
func CallFrom(ctx context.Context) *Call {
	if c, ok := ctx.Value(callKey{}).(*Call); ok {
		return c
	}
	return &Call{}
}

// SetTTL sets the TTL of this value, instead of Options.TTL (and without
// Jitter); a TTL that is not positive is ignored.
func (c *Call) SetTTL(ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	c.ttl = ttl
	c.mu.Unlock()
}

// DontCache returns this value to its callers without storing it: the key
// is left as it was before the computation (its lease is given up).
func (c *Call) DontCache() {
	c.mu.Lock()
	c.skip = true
	c.mu.Unlock()
}

// decisions returns what the computation decided.
func (c *Call) decisions() (ttl time.Duration, skip bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ttl, c.skip
}

// Stale returns the value the computation whose context is ctx replaces,
// when there is one: the value a refresh-ahead refreshes, or a value past
// its TTL that fail-safe keeps (see Options.FailSafeMax), with the time it
// was written. ok is false for a key that held no value.
func Stale[V any](ctx context.Context) (v V, written time.Time, ok bool) {
	c, found := ctx.Value(callKey{}).(*Call)
	if !found || !c.has {
		return v, time.Time{}, false
	}
	v, ok = c.stale.(V)
	return v, c.written, ok
}
