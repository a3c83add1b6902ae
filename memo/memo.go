package memo

import (
	"context"
	"errors"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/lock"
)

// Suffixes of the marker keys memo keeps beside a value's key. They start
// with cache.ReservedKeyByte (NUL), which the Cache rejects in any key
// (and New in a namespace): no key of any cache can be a marker key, so a
// marker is never read, written or deleted as a value, nor the reverse.
// They follow the value's key, so the namespace's Clear removes them with
// the values.
const (
	negativeSuffix = string(cache.ReservedKeyByte) + "memo:none"
	freshSuffix    = string(cache.ReservedKeyByte) + "memo:fresh"
)

// GetOrCompute returns the value of key in c, computing it on a miss so that
// one computation serves every caller, in this process and in others:
//
//  1. a hit returns at once (with RefreshAhead, a value near its expiry is
//     returned too, and one caller refreshes it in the background);
//  2. on a miss, callers in this process share one flight;
//  3. the flight takes the key's RedLock with the bounded wait: if another
//     process holds it, the flight waits (at most the lease) for it to
//     release, then reads the value it stored;
//  4. holding the lock, it reads the cache again, computes on a context
//     detached from every caller and bounded by ComputeTimeout, writes the
//     value with the TTL, and releases the lock, which wakes the waiters in
//     every process.
//
// If the lease runs out before the holder releases, waiters compute
// themselves (aiocache's semantics): nobody waits forever. Each caller stops
// waiting when its own context ends; the computation goes on for the
// others. An error or a panic of the computation reaches every waiter of
// the flight, releases the lock, and is not cached — except ErrNotFound with
// NegativeTTL set. A cached value that fails to decode is treated as a miss,
// recomputed and overwritten (counted in Stats.Healed).
//
// The flight of a miss, and a refresh-ahead, run in goroutines that outlive
// the call: a caller that gives up does not stop them. Each is bounded (the
// wait for the lock by the lease, the computation by ComputeTimeout, each
// store operation by the cache's Timeout, or 10s), but nothing else stops
// them: to stop such work, at shutdown before closing the store, use a
// memoized function made with Func, whose Close cancels it and waits for
// it.
func GetOrCompute[K comparable, V any](ctx context.Context, c *cache.Cache[K, V], key K, compute func(ctx context.Context) (V, error), opts *Options) (V, error) {
	r := newRunner(c, opts, nil)
	return r.get(ctx, key, compute)
}

// detach returns a copy of r for a goroutine, so that r itself, on the
// caller's stack, does not escape to the heap on the hit path.
func (r *runner[K, V]) detach() *runner[K, V] {
	c := *r
	c.detached = true
	return &c
}

// runner carries one configuration of memo over one cache.
type runner[K comparable, V any] struct {
	c   *cache.Cache[K, V]
	o   Options
	ttl time.Duration
	bg  *tracker // background goroutines, when Close stops them (Func); or nil

	detached bool // runs in a background goroutine, on a detached context
}

func newRunner[K comparable, V any](c *cache.Cache[K, V], opts *Options, bg *tracker) runner[K, V] {
	o := opts.withDefaults()
	ttl := o.TTL
	if ttl <= 0 {
		ttl = c.TTLDefault()
	}
	if ttl <= 0 {
		o.RefreshAhead = 0 // nothing expires: nothing to refresh ahead of
	}
	return runner[K, V]{c: c, o: o, ttl: ttl, bg: bg}
}

// storeKeys are the store keys of one cache key.
type storeKeys struct {
	value, negative, fresh string
}

func (r *runner[K, V]) keysOf(k K) (storeKeys, error) {
	v, err := r.c.Door().Key(k)
	if err != nil {
		return storeKeys{}, &cache.OpError{Op: "memo", Key: v, Err: err}
	}
	ks := storeKeys{value: v}
	// Marker keys only when an option reads them: the hit path of the
	// default options builds no string but the key.
	if r.o.NegativeTTL > 0 {
		ks.negative = v + negativeSuffix
	}
	if r.o.RefreshAhead > 0 {
		ks.fresh = v + freshSuffix
	}
	return ks, nil
}

// state is what a read found.
type state int

const (
	miss     state = iota // nothing usable
	hit                   // a value
	stale                 // a value whose refresh-ahead point has passed
	negative              // a cached ErrNotFound
)

type entry[V any] struct {
	state   state
	val     V
	corrupt bool // a value was there but did not decode
}

// noCancel is the cancel function of a context without a timeout, shared so
// that the hot path allocates no closure.
var noCancel context.CancelFunc = func() {}

func (r *runner[K, V]) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if t := r.c.Timeout(); t > 0 {
		return context.WithTimeout(ctx, t)
	}
	if r.detached {
		// A flight's or a refresh's context has no end: bound it anyway.
		return context.WithTimeout(ctx, detachedOpTimeout)
	}
	return ctx, noCancel
}

// detachedOpTimeout bounds a store operation of a flight or a refresh, which
// run on contexts detached from their callers, when the cache sets no
// Timeout.
const detachedOpTimeout = 10 * time.Second

// read reads the value of ks and, in the same store call, the markers the
// options need.
func (r *runner[K, V]) read(ctx context.Context, ks storeKeys) (entry[V], error) {
	ctx, cancel := r.opContext(ctx)
	defer cancel()
	store := r.c.Store()
	var e entry[V]
	if r.o.NegativeTTL <= 0 && r.o.RefreshAhead <= 0 {
		data, err := store.Get(ctx, ks.value)
		if errors.Is(err, cache.ErrNotFound) {
			return e, nil
		}
		if err != nil {
			return e, &cache.OpError{Op: "memo get", Key: ks.value, Err: err}
		}
		return r.decode(data, true), nil
	}
	names := make([]string, 1, 3)
	names[0] = ks.value
	if r.o.NegativeTTL > 0 {
		names = append(names, ks.negative)
	}
	if r.o.RefreshAhead > 0 {
		names = append(names, ks.fresh)
	}
	vals, err := store.GetMulti(ctx, names)
	if err != nil {
		return e, &cache.OpError{Op: "memo get", Key: ks.value, Err: err}
	}
	if vals[0] != nil {
		return r.decode(vals[0], r.o.RefreshAhead <= 0 || vals[len(vals)-1] != nil), nil
	}
	if r.o.NegativeTTL > 0 && vals[1] != nil {
		e.state = negative
	}
	return e, nil
}

func (r *runner[K, V]) decode(data []byte, fresh bool) entry[V] {
	v, err := r.c.Codec().Decode(data)
	if err != nil {
		return entry[V]{corrupt: true}
	}
	if !fresh {
		return entry[V]{state: stale, val: v}
	}
	return entry[V]{state: hit, val: v}
}

// write stores v (and its freshness marker) with the TTL.
func (r *runner[K, V]) write(ctx context.Context, ks storeKeys, v V) error {
	data, err := r.c.Codec().Encode(v)
	if err != nil {
		return &cache.OpError{Op: "memo set", Key: ks.value, Err: err}
	}
	ctx, cancel := r.opContext(ctx)
	defer cancel()
	if r.o.RefreshAhead > 0 {
		// The marker first, and alone (a SetMulti may write its items in
		// any order, or at once): on a store that rounds TTLs to whole
		// seconds, a value written in a later second than its marker only
		// expires later, never earlier.
		err = r.c.Store().Set(ctx, ks.fresh, freshMarker, freshTTL(r.ttl, r.o.RefreshAhead))
	}
	if err == nil {
		err = r.c.Store().Set(ctx, ks.value, data, r.ttl)
	}
	if err != nil {
		return &cache.OpError{Op: "memo set", Key: ks.value, Err: err}
	}
	if r.o.NegativeTTL > 0 {
		// A not-found answer cached before must not outlive the value.
		if _, err := r.c.Store().Delete(ctx, ks.negative); err != nil {
			return &cache.OpError{Op: "memo delete", Key: ks.negative, Err: err}
		}
	}
	return nil
}

// freshMarker is the value of a freshness marker: only its presence counts.
var freshMarker = []byte{'1'}

// freshTTL is the TTL of the freshness marker of a value written with ttl:
// the refresh point ttl*refreshAhead, at least 1ms. It is moved earlier, to
// a second before the value expires, when that is at least half of the
// refresh point: on a store that rounds TTLs up to whole seconds
// (memcached), the marker then still expires strictly before the value and
// the refresh happens. A shorter TTL keeps its refresh point (moving it
// would refresh on nearly every hit), and on such a store is not refreshed
// ahead: marker and value expire in the same second.
func freshTTL(ttl time.Duration, refreshAhead float64) time.Duration {
	fresh := time.Duration(float64(ttl) * refreshAhead)
	if early := ttl - time.Second; early < fresh && early >= fresh/2 {
		fresh = early
	}
	return max(fresh, time.Millisecond)
}

// writeNegative caches a not-found answer.
func (r *runner[K, V]) writeNegative(ctx context.Context, ks storeKeys) error {
	ctx, cancel := r.opContext(ctx)
	defer cancel()
	if err := r.c.Store().Set(ctx, ks.negative, []byte{'1'}, r.o.NegativeTTL); err != nil {
		return &cache.OpError{Op: "memo set", Key: ks.negative, Err: err}
	}
	// A value still there (corrupt bytes, or a value written meanwhile that
	// the computation no longer finds) would hide the answer.
	if _, err := r.c.Store().Delete(ctx, ks.value); err != nil {
		return &cache.OpError{Op: "memo delete", Key: ks.value, Err: err}
	}
	return nil
}

func notFound(key string) error {
	return &cache.OpError{Op: "get-or-compute", Key: key, Err: ErrNotFound}
}

func (r *runner[K, V]) get(ctx context.Context, k K, compute func(ctx context.Context) (V, error)) (V, error) {
	var zero V
	ks, err := r.keysOf(k)
	if err != nil {
		return zero, err
	}
	e, err := r.read(ctx, ks)
	if err != nil {
		if !r.o.FailOpen || ctx.Err() != nil {
			return zero, err
		}
		r.o.Stats.FailOpen.Add(1)
	}
	switch e.state {
	case hit:
		r.o.Stats.Hits.Add(1)
		return e.val, nil
	case stale:
		r.o.Stats.Hits.Add(1)
		r.refresh(ctx, k, ks, compute)
		return e.val, nil
	case negative:
		r.o.Stats.NegativeHits.Add(1)
		return zero, notFound(ks.value)
	}
	r.o.Stats.Misses.Add(1)
	f, leader := join[V](r.c.Store(), computeFlight, ks.value)
	if leader {
		// The flight runs detached from this caller, so that its end does
		// not end the computation the others wait for.
		base := r.bg.add()
		go r.detach().runFlight(ctx, base, k, ks, compute, e.corrupt, f)
	}
	return wait[V](ctx, f, ks.value)
}

// runFlight is the goroutine of a flight, on a copy of the runner: it runs
// detached from the leader's context and finishes the flight for its
// followers. Each of its phases is bounded: the wait for another process's
// lock by the lease, each store operation by the cache's Timeout (or
// detachedOpTimeout), the computation by ComputeTimeout; and all end when
// base does (Memo.Close).
func (r *runner[K, V]) runFlight(ctx, base context.Context, k K, ks storeKeys, compute func(ctx context.Context) (V, error), corrupt bool, f *flight) {
	defer r.bg.done()
	fctx, cancel := detached(ctx, base)
	v, err := r.flight(fctx, k, ks, compute, corrupt)
	cancel()
	f.finish(v, err)
}

// flight is one process's attempt to fill ks: lock, re-check, compute,
// write, release — or wait for another process's computation, at most the
// lease, and then compute.
func (r *runner[K, V]) flight(ctx context.Context, k K, ks storeKeys, compute func(ctx context.Context) (V, error), corrupt bool) (V, error) {
	var zero V
	l, err := lock.NewRedLock(r.c, k, r.o.Lease, r.o.Lock)
	if err != nil {
		return zero, err
	}
	wctx, cancel := context.WithTimeout(ctx, r.o.Lease)
	defer cancel()
	for {
		held, err := l.AcquireOrWait(wctx)
		switch {
		case ctx.Err() != nil:
			// Stopped (Memo.Close): no computation.
			if held {
				l.Release(ctx)
			}
			return zero, ctxError("memo", ks.value, ctx)
		case err != nil && wctx.Err() != nil:
			// The lease passed while waiting: the holder outlived it.
			r.o.Stats.LockWaits.Add(1)
			return r.computeAndWrite(ctx, ks, compute, corrupt)
		case err != nil && !r.o.FailOpen:
			return zero, err
		case err != nil:
			r.o.Stats.FailOpen.Add(1)
			return r.computeAndWrite(ctx, ks, compute, corrupt)
		case held:
			defer l.Release(ctx)
		default:
			r.o.Stats.LockWaits.Add(1)
		}
		e, err := r.read(ctx, ks)
		switch {
		case err != nil && !r.o.FailOpen:
			return zero, err
		case err != nil:
			r.o.Stats.FailOpen.Add(1)
		case e.state == hit || e.state == stale:
			return e.val, nil
		case e.state == negative:
			return zero, notFound(ks.value)
		}
		corrupt = corrupt || e.corrupt
		if held || err != nil || wctx.Err() != nil {
			// Holding the lock; or the store fails and we fail open; or the
			// holder outlived its lease: compute.
			return r.computeAndWrite(ctx, ks, compute, corrupt)
		}
	}
}

// computeAndWrite runs the computation and stores its answer.
func (r *runner[K, V]) computeAndWrite(ctx context.Context, ks storeKeys, compute func(ctx context.Context) (V, error), corrupt bool) (V, error) {
	var zero V
	if ctx.Err() != nil {
		// Stopped (Memo.Close, or Refresh's caller gave up): no computation.
		return zero, ctxError("memo compute", ks.value, ctx)
	}
	r.o.Stats.Computations.Add(1)
	cctx, cancel := context.WithTimeout(ctx, r.o.ComputeTimeout)
	v, err := cache.Recover(func() (V, error) { return compute(cctx) })
	cancel()
	if errors.Is(err, ErrNotFound) {
		if r.o.NegativeTTL > 0 {
			if werr := r.writeNegative(ctx, ks); werr != nil {
				r.o.Stats.WriteErrors.Add(1)
			}
		}
		return zero, notFound(ks.value)
	}
	if err != nil {
		return zero, &cache.OpError{Op: "memo compute", Key: ks.value, Err: err}
	}
	if ctx.Err() != nil {
		return v, nil // stopped meanwhile: the value is good, but not stored
	}
	if werr := r.write(ctx, ks, v); werr != nil {
		r.o.Stats.WriteErrors.Add(1) // the value is still good: return it
	} else if corrupt {
		r.o.Stats.Healed.Add(1)
	}
	return v, nil
}

// refresh recomputes a stale value in the background: at most one refresh
// per key in the process (a flight), and across processes only the caller
// that takes the key's lock and still finds the value stale.
func (r *runner[K, V]) refresh(ctx context.Context, k K, ks storeKeys, compute func(ctx context.Context) (V, error)) {
	f, leader := join[V](r.c.Store(), refreshFlight, ks.value)
	if !leader {
		return
	}
	base := r.bg.add()
	go r.detach().backgroundRefresh(ctx, base, k, ks, compute, f)
}

// backgroundRefresh is the goroutine of refresh, on a copy of the runner.
func (r *runner[K, V]) backgroundRefresh(ctx, base context.Context, k K, ks storeKeys, compute func(ctx context.Context) (V, error), f *flight) {
	// Each step below is bounded, and all end when base does.
	rctx, stop := detached(ctx, base)
	defer func() {
		stop()
		f.finish(nil, nil)
		r.bg.done()
	}()
	l, err := lock.NewRedLock(r.c, k, r.o.Lease, r.o.Lock)
	if err != nil {
		return
	}
	tctx, cancel := r.opContext(rctx)
	ok, err := l.TryAcquire(tctx)
	cancel()
	if !ok || err != nil {
		return // another caller refreshes (or computes) it
	}
	defer l.Release(rctx)
	if e, err := r.read(rctx, ks); err != nil || e.state != stale {
		return // refreshed meanwhile, or gone: a miss computes it
	}
	r.o.Stats.Refreshes.Add(1)
	_, _ = r.computeAndWrite(rctx, ks, compute, false)
}
