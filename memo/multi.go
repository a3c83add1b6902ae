package memo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

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
// computeMissing (aiocache's multi_cached, with partial hits). A key that a
// concurrent GetOrCompute or GetOrComputeMulti of this process is already
// computing is not computed again: this call waits for it.
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
// Unlike GetOrCompute, it takes no cross-process lock (one lock per key
// would cost a round trip per key): across processes a missing key may be
// computed once per process.
//
// As GetOrCompute's flights, the computation runs in a goroutine that
// outlives a caller that gives up, bounded by ComputeTimeout and the store
// timeouts; Memo.GetMulti's is stopped by Memo.Close.
func GetOrComputeMulti[K comparable, V any](ctx context.Context, c *cache.Cache[K, V], keys []K, computeMissing func(ctx context.Context, missing []K) (map[K]V, error), opts *Options) (map[K]V, error) {
	r := newRunner(c, opts, nil)
	return r.getMulti(ctx, keys, computeMissing)
}

func (r *runner[K, V]) getMulti(ctx context.Context, keys []K, computeMissing func(ctx context.Context, missing []K) (map[K]V, error)) (map[K]V, error) {
	out := make(map[K]V, len(keys))
	errs := KeyErrors[K]{}
	// Unique keys, with their store keys.
	kss := make(map[K]storeKeys, len(keys))
	var order []K
	for _, k := range keys {
		if _, dup := kss[k]; dup {
			continue
		}
		ks, err := r.keysOf(k)
		if err != nil {
			return nil, err
		}
		kss[k] = ks
		order = append(order, k)
	}
	entries, err := r.readMulti(ctx, order, kss)
	if err != nil {
		if !r.o.FailOpen || ctx.Err() != nil {
			return nil, err
		}
		r.o.Stats.FailOpen.Add(1)
		entries = make([]entry[V], len(order))
	}

	// Sort the keys: answered, led by this call, or followed.
	var mine []K
	corrupt := map[K]bool{}
	led := map[K]*flight{}
	followed := map[K]*flight{}
	for i, k := range order {
		e := entries[i]
		switch e.state {
		case hit, stale:
			r.o.Stats.Hits.Add(1)
			out[k] = e.val
			continue
		case negative:
			r.o.Stats.NegativeHits.Add(1)
			errs[k] = notFound(kss[k].value)
			continue
		}
		r.o.Stats.Misses.Add(1)
		if e.corrupt {
			corrupt[k] = true
		}
		f, leader := join[V](r.c.Store(), computeFlight, kss[k].value)
		if leader {
			led[k] = f
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
			vals, kerrs := rr.computeMulti(fctx, mine, kss, corrupt, computeMissing)
			for _, k := range mine {
				if err := kerrs[k]; err != nil {
					led[k].finish(nil, err)
				} else {
					led[k].finish(vals[k], nil)
				}
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
		v, err := wait[V](ctx, f, kss[k].value)
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

// readMulti reads the values of keys, and the markers the options need, in
// one store call.
func (r *runner[K, V]) readMulti(ctx context.Context, order []K, kss map[K]storeKeys) ([]entry[V], error) {
	per := 1
	if r.o.NegativeTTL > 0 {
		per++
	}
	if r.o.RefreshAhead > 0 {
		per++
	}
	names := make([]string, 0, per*len(order))
	for _, k := range order {
		ks := kss[k]
		names = append(names, ks.value)
		if r.o.NegativeTTL > 0 {
			names = append(names, ks.negative)
		}
		if r.o.RefreshAhead > 0 {
			names = append(names, ks.fresh)
		}
	}
	entries := make([]entry[V], len(order))
	if len(names) == 0 {
		return entries, nil
	}
	octx, cancel := r.opContext(ctx)
	vals, err := r.c.Store().GetMulti(octx, names)
	cancel()
	if err != nil {
		return nil, &cache.OpError{Op: "memo get-multi", Err: err}
	}
	for i := range order {
		row := vals[i*per : (i+1)*per]
		switch {
		case row[0] != nil:
			// Refresh-ahead of bulk loads is left to single-key calls: a
			// stale value is served as it is.
			entries[i] = r.decode(row[0], true)
		case r.o.NegativeTTL > 0 && row[1] != nil:
			entries[i].state = negative
		}
	}
	return entries, nil
}

// computeMulti computes the missing keys, writes what it got, and returns
// the values with an error for every key that has none.
func (r *runner[K, V]) computeMulti(ctx context.Context, missing []K, kss map[K]storeKeys, corrupt map[K]bool, computeMissing func(ctx context.Context, missing []K) (map[K]V, error)) (map[K]V, map[K]error) {
	kerrs := make(map[K]error)
	if ctx.Err() != nil {
		// Stopped (Memo.Close): no computation.
		for _, k := range missing {
			kerrs[k] = ctxError("memo compute-multi", kss[k].value, ctx)
		}
		return nil, kerrs
	}
	r.o.Stats.Computations.Add(1)
	cctx, cancel := context.WithTimeout(ctx, r.o.ComputeTimeout)
	vals, err := cache.Recover(func() (map[K]V, error) { return computeMissing(cctx, missing) })
	cancel()
	var failed KeyErrors[K]
	if err != nil && !errors.As(err, &failed) {
		for _, k := range missing {
			kerrs[k] = &cache.OpError{Op: "memo compute-multi", Key: kss[k].value, Err: err}
		}
		return nil, kerrs
	}
	var items, markers []cache.Item
	var drop []string // negative markers of values, values of not-found keys
	var healed int64
	for _, k := range missing {
		ks := kss[k]
		if ferr := failed[k]; ferr != nil {
			kerrs[k] = &cache.OpError{Op: "memo compute-multi", Key: ks.value, Err: ferr}
			continue
		}
		v, ok := vals[k]
		if !ok {
			kerrs[k] = notFound(ks.value)
			if r.o.NegativeTTL > 0 {
				// As writeNegative: a value still there (corrupt bytes, or
				// one written meanwhile) would hide the answer.
				items = append(items, cache.Item{Key: ks.negative, Value: []byte{'1'}, TTL: r.o.NegativeTTL})
				drop = append(drop, ks.value)
			}
			continue
		}
		data, err := r.c.Codec().Encode(v)
		if err != nil {
			// This key's value cannot be stored; the others still are.
			r.o.Stats.WriteErrors.Add(1)
			continue
		}
		items = append(items, cache.Item{Key: ks.value, Value: data, TTL: r.ttl})
		if r.o.RefreshAhead > 0 {
			// As write: the freshness marker, or the next single-key read
			// finds the value stale and refreshes it at once.
			markers = append(markers, cache.Item{Key: ks.fresh, Value: freshMarker, TTL: freshTTL(r.ttl, r.o.RefreshAhead)})
		}
		if r.o.NegativeTTL > 0 {
			drop = append(drop, ks.negative)
		}
		if corrupt[k] {
			healed++
		}
	}
	if len(items) > 0 && ctx.Err() == nil { // not once stopped (Memo.Close)
		octx, cancel := r.opContext(ctx)
		var werr error
		if len(markers) > 0 {
			// As write: the markers first, in a call of their own.
			werr = r.c.Store().SetMulti(octx, markers)
		}
		if werr == nil {
			werr = r.c.Store().SetMulti(octx, items)
		}
		if werr == nil && len(drop) > 0 {
			_, werr = r.c.Store().Delete(octx, drop...)
		}
		cancel()
		if werr != nil {
			r.o.Stats.WriteErrors.Add(1) // the values are still good: return them
		} else {
			r.o.Stats.Healed.Add(healed)
		}
	}
	return vals, kerrs
}
