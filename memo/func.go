package memo

import (
	"context"
	"errors"
	"sync"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/lock"
)

// Memo is a function memoized in a cache: Go's answer to aiocache's
// @cached and @cached_stampede decorators. Get is the memoized function;
// Invalidate and Refresh manage what it cached. Make one with Func.
type Memo[K comparable, V any] struct {
	r     *runner[K, V]
	fn    func(ctx context.Context, k K) (V, error)
	stats Stats
	bg    *tracker
}

// Func memoizes fn in c with GetOrCompute's protection: one computation per
// key across goroutines and processes, with the options' lease, TTL,
// negative caching, refresh-ahead and fail-open. opts.Stats is ignored:
// the Memo counts in its own Stats. Call Close to stop its background
// goroutines before the cache's store is closed.
func Func[K comparable, V any](c *cache.Cache[K, V], fn func(ctx context.Context, k K) (V, error), opts *Options) *Memo[K, V] {
	m := &Memo[K, V]{fn: fn, bg: newTracker()}
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Stats = &m.stats
	r := newRunner(c, &o, m.bg)
	m.r = &r
	return m
}

// Get returns fn(ctx, k), from the cache when it can.
func (m *Memo[K, V]) Get(ctx context.Context, k K) (V, error) {
	return m.r.get(ctx, k, func(ctx context.Context) (V, error) { return m.fn(ctx, k) })
}

// GetMulti returns fn for every key, computing the missing ones
// concurrently (one call of fn per missing key) after one read of them
// all. A key for which fn returns ErrNotFound is reported (and, with
// NegativeTTL, cached) as not found; a key fn fails or panics on is
// reported with its error and not cached. Both are in a KeyErrors error.
func (m *Memo[K, V]) GetMulti(ctx context.Context, keys []K) (map[K]V, error) {
	return m.r.getMulti(ctx, keys, func(ctx context.Context, missing []K) (map[K]V, error) {
		var mu sync.Mutex
		out := make(map[K]V, len(missing))
		failed := KeyErrors[K]{}
		var wg sync.WaitGroup
		for _, k := range missing {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := cache.Recover(func() (V, error) { return m.fn(ctx, k) })
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, ErrNotFound):
					// not returned: not found
				case err != nil:
					failed[k] = err
				default:
					out[k] = v
				}
			}()
		}
		wg.Wait()
		if len(failed) > 0 {
			return out, failed
		}
		return out, nil
	})
}

// Invalidate removes what Get cached for keys: values and not-found
// answers.
func (m *Memo[K, V]) Invalidate(ctx context.Context, keys ...K) error {
	names := make([]string, 0, 3*len(keys))
	for _, k := range keys {
		key, err := m.r.c.Door().Key(k)
		if err != nil {
			return &cache.OpError{Op: "memo invalidate", Key: key, Err: err}
		}
		names = append(names, key, key+negativeSuffix, key+freshSuffix)
	}
	if len(names) == 0 {
		return nil
	}
	octx, cancel := m.r.opContext(ctx)
	defer cancel()
	if _, err := m.r.c.Store().Delete(octx, names...); err != nil {
		return &cache.OpError{Op: "memo invalidate", Err: err}
	}
	return nil
}

// Refresh computes fn(ctx, k) now, under the key's lock, stores the result
// and returns it, whatever the cache held.
func (m *Memo[K, V]) Refresh(ctx context.Context, k K) (V, error) {
	var zero V
	ks, err := m.r.keysOf(k)
	if err != nil {
		return zero, err
	}
	l, err := lock.NewRedLock(m.r.c, k, m.r.o.Lease, m.r.o.Lock)
	if err != nil {
		return zero, err
	}
	if err := l.Acquire(ctx); err != nil {
		return zero, err
	}
	defer l.Release(ctx)
	m.stats.Refreshes.Add(1)
	return m.r.computeAndWrite(ctx, ks, func(ctx context.Context) (V, error) { return m.fn(ctx, k) }, false)
}

// Stats returns the Memo's counters.
func (m *Memo[K, V]) Stats() StatsSnapshot { return m.stats.Snapshot() }

// Close stops the goroutines that the Memo's calls started (the flights of
// misses, background refreshes, bulk computations) and waits for them, so
// that the cache's store can be closed after it. It cancels their contexts
// first: a computation sees its ctx end, and what it returns then is not
// stored; callers still waiting for it get its error. A computation that
// ignores its ctx delays Close until it returns. Calls made while Close
// waits are stopped and waited for too. The Memo stays usable after Close.
func (m *Memo[K, V]) Close() { m.bg.close() }
