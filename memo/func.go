package memo

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// Memo is a function memoized in a cache: Go's answer to aiocache's
// @cached and @cached_stampede decorators. Get is the memoized function;
// Invalidate and Refresh manage what it cached. Make one with Func. What it
// does is counted in the cache's Stats.
type Memo[K comparable, V any] struct {
	r     *runner[K, V]
	fn    func(ctx context.Context, k K) (V, error)
	batch func(ctx context.Context, keys []K) (map[K]V, error) // FuncBatch's; nil for Func
	bg    *tracker
}

// Func memoizes fn in c with GetOrCompute's protection: one computation per
// key across goroutines and processes, with the options' lease, TTL,
// negative caching, refresh-ahead and fail-open. Call Close to stop its
// background goroutines before the cache's store is closed.
func Func[K comparable, V any](c *cache.Cache[K, V], fn func(ctx context.Context, k K) (V, error), opts *Options) *Memo[K, V] {
	m := &Memo[K, V]{fn: fn, bg: newTracker()}
	r := newRunner(c, opts, m.bg)
	m.r = &r
	return m
}

// FuncBatch memoizes a batch loader in c: Memo.GetMulti calls batch once
// for all the keys it misses (each still computed once across goroutines
// and processes: a lease per key, as GetOrComputeMulti), and Memo.Get calls
// it with one key. batch returns the values it found; a key it does not
// return does not exist (ErrNotFound, cached with NegativeTTL); to fail on
// some keys only, it returns a KeyErrors naming them beside the values.
func FuncBatch[K comparable, V any](c *cache.Cache[K, V], batch func(ctx context.Context, keys []K) (map[K]V, error), opts *Options) *Memo[K, V] {
	m := &Memo[K, V]{batch: batch, bg: newTracker()}
	m.fn = func(ctx context.Context, k K) (V, error) {
		vals, err := batch(ctx, []K{k})
		var failed KeyErrors[K]
		if errors.As(err, &failed) {
			if ferr := failed[k]; ferr != nil {
				var zero V
				return zero, ferr
			}
			err = nil
		}
		if err != nil {
			var zero V
			return zero, err
		}
		v, ok := vals[k]
		if !ok {
			return v, ErrNotFound
		}
		return v, nil
	}
	r := newRunner(c, opts, m.bg)
	m.r = &r
	return m
}

// Get returns fn(ctx, k), from the cache when it can.
func (m *Memo[K, V]) Get(ctx context.Context, k K) (V, error) {
	return m.r.get(ctx, k, func(ctx context.Context) (V, error) { return m.fn(ctx, k) })
}

// GetMulti returns fn for every key, computing the missing ones
// concurrently (one call of fn per missing key; one call of the batch
// loader for them all, for a Memo made with FuncBatch) after one read of
// them all. A key for which fn returns ErrNotFound is reported (and, with
// NegativeTTL, cached) as not found; a key fn fails or panics on is
// reported with its error and not cached. Both are in a KeyErrors error.
func (m *Memo[K, V]) GetMulti(ctx context.Context, keys []K) (map[K]V, error) {
	if m.batch != nil {
		return m.r.getMulti(ctx, keys, m.batch)
	}
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
				case err == ErrNotFound:
					// not returned: not found
				case err != nil:
					// A not-found that wraps a cause of its own
					// (sql.ErrNoRows) keeps it, and is cached as not
					// found all the same.
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
// answers, and the leases of computations running for them, whose values
// are then dropped instead of written (no stale sets).
func (m *Memo[K, V]) Invalidate(ctx context.Context, keys ...K) error {
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		key, err := m.r.d.Key(k)
		if err != nil {
			return fail("invalidate", key, err)
		}
		names = append(names, key)
	}
	if _, err := m.r.d.Delete(ctx, names...); err != nil {
		key := ""
		if len(names) == 1 {
			key = names[0]
		}
		return fail("invalidate", key, err)
	}
	return nil
}

// Refresh computes fn(ctx, k) now, under the key's lease, stores the result
// and returns it, whatever the cache held. A value the key held stays
// readable while it runs. If another computation holds the key's lease, it
// waits for it first. It runs on ctx: when ctx ends, the computation's
// result is not stored.
func (m *Memo[K, V]) Refresh(ctx context.Context, k K) (V, error) {
	var zero V
	key, err := m.r.d.Key(k)
	if err != nil {
		return zero, fail("refresh", key, err)
	}
	if m.r.d.Raw() {
		return zero, fail("refresh", key, cache.ErrRaw)
	}
	compute := func(ctx context.Context) (V, error) { return m.fn(ctx, k) }
	wctx, cancel := context.WithTimeout(ctx, m.r.o.ComputeTimeout+m.r.o.Lease)
	defer cancel()
	for {
		e, err := m.r.load(ctx, key)
		if err != nil {
			return zero, fail("refresh", key, withCause(ctx, err))
		}
		now := time.Now()
		if classify(&e, now) == stateLeased {
			if _, err := m.r.awaitLease(wctx, key, e); err != nil {
				return zero, fail("refresh", key, withCause(ctx, err))
			}
			continue
		}
		var keep cache.Entry[V]
		if e.HasValue && e.Fresh(now) {
			keep = e
		}
		lease, won, err := m.r.takeLease(ctx, key, &e, keep)
		if err != nil {
			return zero, fail("refresh", key, withCause(ctx, err))
		}
		if !won {
			continue
		}
		m.r.d.Count(cache.StatRefresh, 1)
		v, err := m.r.computeUnderLease(ctx, key, lease, e.Corrupt != nil, compute)
		return v, m.r.served(ctx, key, err)
	}
}

// Close stops the goroutines that the Memo's calls started (the flights of
// misses, background refreshes, bulk computations) and waits for them, so
// that the cache's store can be closed after it. It cancels their contexts
// first: a computation sees its ctx end, and what it returns then is not
// stored; callers still waiting for it get its error. A computation that
// ignores its ctx delays Close until it returns. Calls made while Close
// waits are stopped and waited for too. The Memo stays usable after Close.
func (m *Memo[K, V]) Close() { m.bg.close() }
