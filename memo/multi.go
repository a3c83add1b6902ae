package memo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// KeyErrors reports the keys of GetOrComputeMulti that got no value, each
// with its reason: ErrNotFound for a key the computation did not return,
// else the computation's (or the store's) error. errors.Is sees through it
// to every reason.
type KeyErrors[K comparable] map[K]error

func (e KeyErrors[K]) Error() string {
	parts := make([]string, 0, len(e))
	for k, err := range e {
		parts = append(parts, fmt.Sprintf("%v: %v", k, err))
	}
	sort.Strings(parts)
	return fmt.Sprintf("memo: no value for %d of the keys: %s", len(e), strings.Join(parts, "; "))
}

// Unwrap returns every reason, for errors.Is and errors.As.
func (e KeyErrors[K]) Unwrap() []error {
	errs := make([]error, 0, len(e))
	for _, err := range e {
		errs = append(errs, err)
	}
	return errs
}

// GetOrComputeMulti returns the values of keys, reading them all in one
// store call and computing only the missing ones, all in one call of
// computeMissing (aiocache's multi_cached, with partial hits). It takes a
// lease in the entry of every missing key, as GetOrCompute does, so that
// across goroutines and processes each key is computed once: keys whose
// lease another caller holds are waited for, not computed again; keys of
// this call are computed together, and each value is written over its own
// lease only (no stale sets).
//
// computeMissing returns the values it found. A key it does not return does
// not exist: it is reported as ErrNotFound and, with NegativeTTL, cached as
// such. To fail on some keys only, it returns the values it has together
// with a KeyErrors naming the failed keys; any other error fails every key
// it was asked for. Failed keys are never cached.
//
// Keys without a value are absent from the map and reported in a KeyErrors
// error; the map still holds every other value.
//
// With Options.FailSafeMax, a key past its TTL whose computation fails (the
// whole call, or the key in a KeyErrors) gets its stale value and no error,
// and the stale value is stored fresh again for FailSafeThrottle, as
// GetOrCompute does.
//
// The leases are taken concurrently (one store call each, at most 32 at
// once), then the values written likewise. As GetOrCompute's flights, the
// computation runs in a goroutine that outlives a caller that gives up,
// bounded by ComputeTimeout and the store timeouts; Memo.GetMulti's is
// stopped by Memo.Close.
func GetOrComputeMulti[K comparable, V any](ctx context.Context, c *cache.Cache[K, V], keys []K, computeMissing func(ctx context.Context, missing []K) (map[K]V, error), opts *Options) (map[K]V, error) {
	r := newRunner(c, opts, nil)
	return r.getMulti(ctx, keys, computeMissing)
}

// multiConcurrency bounds the store calls GetOrComputeMulti makes at once.
const multiConcurrency = 32

func (r *runner[K, V]) getMulti(ctx context.Context, keys []K, computeMissing func(ctx context.Context, missing []K) (map[K]V, error)) (map[K]V, error) {
	out := make(map[K]V, len(keys))
	errs := KeyErrors[K]{}
	// Unique keys, with their store keys.
	skeys := make(map[K]string, len(keys))
	var order []K
	var names []string
	for _, k := range keys {
		if _, dup := skeys[k]; dup {
			continue
		}
		key, err := r.d.Key(k)
		if err != nil {
			return nil, fail("get-or-compute-multi", key, err)
		}
		skeys[k] = key
		order = append(order, k)
		names = append(names, key)
	}
	if r.d.Raw() {
		return nil, fail("get-or-compute-multi", "", cache.ErrRaw)
	}
	octx, cancel := r.opContext(ctx)
	entries, err := r.d.LoadMulti(octx, order, names)
	cancel()
	if err != nil {
		if !r.o.FailOpen || ctx.Err() != nil {
			return nil, fail("get-or-compute-multi", "", withCause(ctx, err))
		}
		r.d.Count(cache.StatFailOpen, 1)
		return r.computeMultiOpen(ctx, order, skeys, computeMissing)
	}

	// Sort the keys: answered, led by this call, or followed.
	now := time.Now()
	var mine []K
	first := map[K]cache.Entry[V]{}
	led := map[K]*cache.Flight{}
	followed := map[K]*cache.Flight{}
	for i, k := range order {
		e := entries[i]
		switch classify(&e, now) {
		case stateHit:
			// Refresh-ahead of bulk loads is left to single-key calls: a
			// value past its refresh point is served as it is.
			if !e.Local() { // the Door counted a local hit
				r.d.Count(cache.StatHit, 1)
			}
			out[k] = e.Value
			continue
		case stateNegative:
			r.d.Count(cache.StatNegativeHit, 1)
			errs[k] = notFound(skeys[k], nil)
			continue
		}
		r.d.Count(cache.StatMiss, 1)
		f, leader := r.d.JoinFlight(cache.ComputeFlight, skeys[k])
		if leader {
			led[k] = f
			first[k] = e
			mine = append(mine, k)
		} else {
			followed[k] = f
		}
	}

	if len(mine) > 0 {
		// Run the computation detached, so that the followers of these
		// keys get their values even if this caller goes away.
		done := make(chan struct{})
		base := r.bg.add()
		rr := r.detach()
		go func() {
			defer rr.bg.done()
			defer close(done)
			fctx, cancel := detached(ctx, base)
			defer cancel()
			vals, kerrs := rr.fillMulti(fctx, mine, skeys, first, computeMissing)
			for _, k := range mine {
				// A value, or an error, or a stale value with
				// errServedStale, which goes with it to the callers.
				led[k].Finish(vals[k], kerrs[k])
			}
		}()
		select {
		case <-done:
		case <-ctx.Done():
		}
		for _, k := range mine {
			followed[k] = led[k]
		}
	}

	for k, f := range followed {
		v, err := r.wait(ctx, f, skeys[k])
		if err != nil {
			errs[k] = err
			continue
		}
		out[k] = v
	}
	if len(errs) > 0 {
		return out, errs
	}
	return out, nil
}

// computeMultiOpen computes keys without the store (FailOpen after the
// store failed): the values are returned, not stored.
func (r *runner[K, V]) computeMultiOpen(ctx context.Context, keys []K, skeys map[K]string, computeMissing func(ctx context.Context, missing []K) (map[K]V, error)) (map[K]V, error) {
	vals, kerrs := r.computeMissing(ctx, keys, skeys, computeMissing)
	out := make(map[K]V, len(vals))
	errs := KeyErrors[K]{}
	for _, k := range keys {
		if err := kerrs[k]; err != nil {
			errs[k] = err
			continue
		}
		out[k] = vals[k]
	}
	if len(errs) > 0 {
		return out, errs
	}
	return out, nil
}

// computeMissing runs the computation of keys once and sorts its answer:
// the values, and an error for every key without one (not found, failed).
func (r *runner[K, V]) computeMissing(ctx context.Context, keys []K, skeys map[K]string, computeMissing func(ctx context.Context, missing []K) (map[K]V, error)) (map[K]V, map[K]error) {
	kerrs := make(map[K]error)
	var start time.Time
	if r.d.Observed() {
		start = time.Now()
	}
	cctx, cancel := context.WithTimeout(ctx, r.o.ComputeTimeout)
	// A bulk computation carries no Call: not even the Call of a
	// computation that this bulk load was made from (ctx keeps its values).
	cctx = withoutCall(cctx)
	vals, err := cache.Recover(func() (map[K]V, error) { return computeMissing(cctx, keys) })
	cancel()
	var failed KeyErrors[K]
	ev := cache.Event{Op: cache.OpCompute}
	if !start.IsZero() {
		ev.Duration = time.Since(start)
	}
	if err != nil && !errors.As(err, &failed) {
		ev.Result, ev.Err = cache.ResultError, err
	}
	r.d.Report(ctx, ev)
	if ev.Result == cache.ResultError {
		for _, k := range keys {
			kerrs[k] = fail("compute-multi", skeys[k], err)
		}
		return nil, kerrs
	}
	for _, k := range keys {
		if ferr := failed[k]; ferr != nil {
			kerrs[k] = fail("compute-multi", skeys[k], ferr)
			continue
		}
		if _, ok := vals[k]; !ok {
			kerrs[k] = notFound(skeys[k], nil)
		}
	}
	return vals, kerrs
}

// fillMulti fills the keys this call leads: it takes their leases, computes
// the keys it won in one call, writes each value over its lease, and fills
// the keys whose lease another caller holds as GetOrCompute does (waiting
// for that computation, and computing the key alone if it gives up).
func (r *runner[K, V]) fillMulti(ctx context.Context, keys []K, skeys map[K]string, first map[K]cache.Entry[V], computeMissing func(ctx context.Context, missing []K) (map[K]V, error)) (map[K]V, map[K]error) {
	vals := make(map[K]V, len(keys))
	kerrs := make(map[K]error)
	if ctx.Err() != nil {
		// Stopped (Memo.Close): no computation.
		for _, k := range keys {
			kerrs[k] = ctxError("compute-multi", skeys[k], ctx)
		}
		return nil, kerrs
	}
	var (
		mu     sync.Mutex
		leases = map[K]cache.Entry[V]{}
		won    []K // this call holds their lease
		others []K // another caller holds theirs, or took it first
		open   []K // the store failed, FailOpen: computed, not stored
	)
	each(keys, func(k K) {
		e := first[k]
		if classify(&e, time.Now()) == stateLeased {
			mu.Lock()
			others = append(others, k)
			mu.Unlock()
			return
		}
		var keep cache.Entry[V]
		if _, ok := r.staleOf(&e); ok {
			keep = e // fail-safe: the stale value stays under the lease
		}
		lease, ok, err := r.takeLease(ctx, skeys[k], &e, keep)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil && r.o.FailOpen:
			open = append(open, k)
		case err != nil:
			kerrs[k] = fail("get-or-compute-multi", skeys[k], withCause(ctx, err))
		case ok:
			won = append(won, k)
			leases[k] = lease
		default:
			others = append(others, k)
		}
	})
	if len(open) > 0 {
		r.d.Count(cache.StatFailOpen, int64(len(open)))
	}

	// The leases were taken concurrently: the computation gets the keys in
	// the callers' order all the same.
	computing := make(map[K]bool, len(won)+len(open))
	for _, k := range won {
		computing[k] = true
	}
	for _, k := range open {
		computing[k] = true
	}
	computed := make([]K, 0, len(computing))
	for _, k := range keys {
		if computing[k] {
			computed = append(computed, k)
		}
	}
	if len(computed) > 0 {
		// The leases are renewed while the batch computes, as a single
		// key's; one that is lost drops its key's value, not the batch.
		watchdogs := make(map[K]*renewal[V], len(won))
		for _, k := range won {
			watchdogs[k] = r.renew(ctx, skeys[k], leases[k])
		}
		got, errsOf := r.computeMissing(ctx, computed, skeys, computeMissing)
		lost := make(map[K]bool)
		for k, w := range watchdogs {
			leases[k] = w.stop()
			lost[k] = w.lost()
		}
		for _, k := range open {
			if err := errsOf[k]; err != nil {
				if e := first[k]; !errors.Is(err, ErrNotFound) && r.o.FailOpen {
					if stale, ok := r.staleOf(&e); ok {
						// Fail-safe, as storeFailedStale.
						vals[k], kerrs[k] = stale, errServedStale
						continue
					}
				}
				kerrs[k] = err
			} else {
				vals[k] = got[k]
			}
		}
		each(won, func(k K) {
			lease := leases[k]
			key := skeys[k]
			err := errsOf[k]
			if err != nil && lost[k] {
				err = errors.Join(err, ErrLeaseLost)
			}
			if err != nil && !errors.Is(err, ErrNotFound) && lease.HasValue && r.o.FailSafeMax > 0 {
				// Fail-safe: the stale value is served, and stored fresh
				// again for the throttle.
				r.serveStale(ctx, key, &lease, err)
				mu.Lock()
				vals[k], kerrs[k] = lease.Value, errServedStale
				mu.Unlock()
				return
			}
			if err != nil {
				r.endLease(ctx, key, &lease, err)
				mu.Lock()
				kerrs[k] = err
				mu.Unlock()
				return
			}
			v := got[k]
			if ctx.Err() != nil || lost[k] {
				// Stopped, or the lease was lost (another write of the
				// key): the value is good, but not stored.
				r.release(ctx, key, &lease)
			} else if r.writeValue(ctx, key, &lease, v, 0) && first[k].Corrupt != nil {
				r.d.Count(cache.StatHealed, 1)
			}
			mu.Lock()
			vals[k] = v
			mu.Unlock()
		})
	}

	// Keys another caller computes: wait for it, as GetOrCompute would.
	each(others, func(k K) {
		key := skeys[k]
		one := func(ctx context.Context) (V, error) {
			// A bulk computation carries no Call, here too (not the one
			// fill gives a computation).
			got, err := computeMissing(withoutCall(ctx), []K{k})
			var failed KeyErrors[K]
			if errors.As(err, &failed) {
				if ferr := failed[k]; ferr != nil {
					return got[k], ferr
				}
				err = nil
			}
			if err != nil {
				return got[k], err
			}
			v, ok := got[k]
			if !ok {
				return v, ErrNotFound
			}
			return v, nil
		}
		e, err := r.load(ctx, key)
		if err == nil {
			var v V
			v, err = r.fill(ctx, key, e, one)
			if err == nil || err == errServedStale {
				mu.Lock()
				vals[k] = v
				if err != nil {
					kerrs[k] = err // a stale value, counted where it reaches a caller
				}
				mu.Unlock()
				return
			}
		} else {
			err = fail("get-or-compute-multi", key, withCause(ctx, err))
		}
		mu.Lock()
		kerrs[k] = err
		mu.Unlock()
	})
	return vals, kerrs
}

// each runs f for every key, at most multiConcurrency at once, and waits.
func each[K comparable](keys []K, f func(k K)) {
	if len(keys) == 1 {
		f(keys[0])
		return
	}
	sem := make(chan struct{}, multiConcurrency)
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() {
				<-sem
				wg.Done()
			}()
			f(k)
		}()
	}
	wg.Wait()
}
