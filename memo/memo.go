package memo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// GetOrCompute returns the value of key in c, computing it on a miss so that
// one computation serves every caller, in this process and in others:
//
//  1. a hit returns at once (with RefreshAhead, a value past its refresh
//     point is returned too, and one caller refreshes it in the
//     background);
//  2. on a miss, callers in this process share one flight;
//  3. the flight writes a lease into the key's entry (an Add, which one
//     caller of all processes wins); the others wait for the lease's end
//     (woken by the store where it notifies, else polling, never past the
//     lease's end) and read what it left;
//  4. the winner computes on a context detached from every caller and
//     bounded by ComputeTimeout, and replaces its own lease entry with the
//     value by compare-and-swap, which wakes the waiters in the same round
//     trip on Redis.
//
// No stale sets: the value is written only over the computation's own
// lease. A Set, Delete or Memo.Invalidate of the key after the computation
// started replaces or removes that lease, so the value is dropped (the
// callers still get it); so is the value of a computation whose lease ran
// out and was taken over by another.
//
// Each caller stops waiting when its own context ends; the computation goes
// on for the others. An error or a panic of the computation reaches every
// waiter of the flight, gives the lease up (waking the waiters of other
// processes, which then compute themselves), and is not cached — except
// ErrNotFound with NegativeTTL. A cached value that fails to decode is
// treated as a miss, recomputed and overwritten (counted in the cache's
// Stats.Healed).
//
// On a Redis store a miss costs the computing process three round trips
// (the read, the lease, the value); a hit, one read of one key.
//
// The flight of a miss, and a refresh-ahead, run in goroutines that outlive
// the call: a caller that gives up does not stop them. Each is bounded (the
// wait for another process's computation by ComputeTimeout and the lease,
// the computation by ComputeTimeout, each store operation by the cache's
// Timeout, or 10s without one), but nothing else stops them: to stop such
// work, at shutdown before closing the store, use a memoized function made
// with Func, whose Close cancels it and waits for it.
//
// A cache made with cache.Options.Raw stores no entries, and so no leases:
// GetOrCompute fails on it with an error matching cache.ErrRaw (use
// Cache.GetOrCompute, which deduplicates within the process only).
func GetOrCompute[K comparable, V any](ctx context.Context, c *cache.Cache[K, V], key K, compute func(ctx context.Context) (V, error), opts *Options) (V, error) {
	r := newRunner(c, opts, nil)
	return r.get(ctx, key, compute)
}

// runner carries one configuration of memo over one cache.
type runner[K comparable, V any] struct {
	d   cache.Door[K, V]
	o   Options
	ttl time.Duration
	bg  *tracker // background goroutines, when Close stops them (Func); or nil

	detached bool // runs in a background goroutine, on a detached context
}

func newRunner[K comparable, V any](c *cache.Cache[K, V], opts *Options, bg *tracker) runner[K, V] {
	r := runner[K, V]{d: c.Door(), o: opts.withDefaults(), bg: bg}
	r.ttl = r.o.TTL
	if r.ttl <= 0 {
		r.ttl = c.WriteTTL()
	}
	if r.ttl <= 0 {
		r.o.RefreshAhead = 0 // nothing expires: nothing to refresh ahead of
	}
	return r
}

// detach returns a copy of r for a goroutine, so that r itself, on the
// caller's stack, does not escape to the heap on the hit path.
func (r *runner[K, V]) detach() *runner[K, V] {
	c := *r
	c.detached = true
	return &c
}

// detachedOpTimeout bounds each store operation of a flight or a refresh,
// which run on contexts detached from their callers, when the cache sets no
// Timeout (the Door applies the cache's own).
const detachedOpTimeout = 10 * time.Second

func (r *runner[K, V]) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.detached && r.d.Timeout() <= 0 {
		return context.WithTimeout(ctx, detachedOpTimeout)
	}
	return ctx, noCancel
}

// noCancel is the cancel function of a context without a timeout, shared so
// that the hot path allocates no closure.
var noCancel context.CancelFunc = func() {}

// fail wraps err as memo's error for op on key.
func fail(op, key string, err error) error {
	return &cache.OpError{Pkg: "memo", Op: op, Key: key, Err: err}
}

// notFound is the error of a key the computation (or a cached answer) says
// does not exist. cause, when not nil, is the computation's own error, kept
// for errors.Is (sql.ErrNoRows).
func notFound(key string, cause error) error {
	if cause == nil || cause == ErrNotFound {
		return fail("get-or-compute", key, ErrNotFound)
	}
	return fail("get-or-compute", key, cause)
}

// load reads key's entry from the store (never the local tier: the entry
// carries the store's bytes, for a swap).
func (r *runner[K, V]) load(ctx context.Context, key string) (cache.Entry[V], error) {
	ctx, cancel := r.opContext(ctx)
	defer cancel()
	return r.d.LoadFresh(ctx, key)
}

// state is what an entry means to a reader at one instant.
type state uint8

const (
	stateMiss     state = iota // nothing usable: absent, corrupt, stale, an ended lease
	stateHit                   // a fresh value (with or without a refresh's lease)
	stateNegative              // a fresh "not found"
	stateLeased                // another computation's lease, and no fresh value
)

func classify[V any](e *cache.Entry[V], now time.Time) state {
	switch {
	case !e.Exists() || e.Corrupt != nil:
		return stateMiss
	case e.HasValue && e.Fresh(now):
		return stateHit
	case e.NotFound && e.Fresh(now):
		return stateNegative
	case e.Held(now):
		return stateLeased
	}
	return stateMiss
}

func (r *runner[K, V]) get(ctx context.Context, k K, compute func(ctx context.Context) (V, error)) (v V, err error) {
	if r.d.Observed() {
		var end func(error)
		if ctx, end = r.d.Start(ctx, cache.OpGetOrCompute, r.d.KeyOf(k)); end != nil {
			defer func() { end(err) }()
		}
	}
	var zero V
	key, err := r.d.Key(k)
	if err != nil {
		return zero, fail("get-or-compute", key, err)
	}
	if r.d.Raw() {
		return zero, fail("get-or-compute", key, cache.ErrRaw)
	}
	octx, cancel := r.opContext(ctx)
	e, err := r.d.Load(octx, k, key) // the local tier first, where there is one
	cancel()
	if err != nil {
		if !r.o.FailOpen || ctx.Err() != nil {
			return zero, fail("get-or-compute", key, withCause(ctx, err))
		}
		r.d.Count(cache.StatFailOpen, 1)
		return r.failOpen(ctx, key, compute)
	}
	var now time.Time // read only where the entry or the options need it
	if e.Lease || !e.FreshUntil.IsZero() || r.o.RefreshAhead > 0 {
		now = time.Now()
	}
	switch classify(&e, now) {
	case stateHit:
		if !e.Local() { // the Door counted a local hit
			r.d.Count(cache.StatHit, 1)
		}
		r.observeRead(ctx, key, &e, cache.ResultHit)
		if r.refreshDue(&e, now) {
			r.refresh(ctx, key, e, compute)
		}
		return e.Value, nil
	case stateNegative:
		r.d.Count(cache.StatNegativeHit, 1)
		r.observeRead(ctx, key, &e, cache.ResultNegative)
		return zero, notFound(key, nil)
	}
	r.d.Count(cache.StatMiss, 1)
	r.observeRead(ctx, key, &e, cache.ResultMiss)
	f, leader := r.d.JoinFlight(cache.ComputeFlight, key)
	if leader {
		// The flight runs detached from this caller, so that its end does
		// not end the computation the others wait for.
		base := r.bg.add()
		go r.detach().runFlight(ctx, base, key, e, compute, f)
	}
	stale, hasStale := r.staleOf(&e)
	return r.waitFlight(ctx, f, key, stale, hasStale)
}

// observeRead reports memo's read of key to the cache's Observer (the
// counters were counted by the caller, or by the Door for a local hit).
func (r *runner[K, V]) observeRead(ctx context.Context, key string, e *cache.Entry[V], res cache.Result) {
	if !r.d.Observed() {
		return
	}
	layer := cache.LayerStore
	if e.Local() {
		layer = cache.LayerLocal
	}
	r.d.Observe(ctx, cache.Event{Op: cache.OpGet, Layer: layer, Result: res, Key: key})
}

// staleOf returns the value in e that fail-safe may serve: a value past
// its logical expiry (with FailSafeMax), or a fresh one.
func (r *runner[K, V]) staleOf(e *cache.Entry[V]) (V, bool) {
	if r.o.FailSafeMax <= 0 || !e.HasValue || e.Corrupt != nil {
		var zero V
		return zero, false
	}
	return e.Value, true
}

// waitFlight waits for f, the flight of key, as a caller: until it ends,
// or ctx does; past SoftTimeout, a caller with a stale value gets it; past
// HardTimeout, an error matching context.DeadlineExceeded. The flight goes
// on in the background either way.
func (r *runner[K, V]) waitFlight(ctx context.Context, f *cache.Flight, key string, stale V, hasStale bool) (V, error) {
	var soft, hard <-chan time.Time
	if hasStale && r.o.SoftTimeout > 0 {
		t := time.NewTimer(r.o.SoftTimeout)
		defer t.Stop()
		soft = t.C
	}
	if r.o.HardTimeout > 0 {
		t := time.NewTimer(r.o.HardTimeout)
		defer t.Stop()
		hard = t.C
	}
	if soft == nil && hard == nil {
		return r.wait(ctx, f, key)
	}
	select {
	case <-f.Done():
		return r.wait(ctx, f, key)
	case <-soft:
		r.d.Report(ctx, cache.Event{Op: cache.OpStaleServed, Result: cache.ResultStale, Key: key})
		return stale, nil
	case <-hard:
		var zero V
		return zero, fail("get-or-compute", key, fmt.Errorf("no value within the hard timeout %v: %w", r.o.HardTimeout, context.DeadlineExceeded))
	case <-ctx.Done():
		var zero V
		return zero, ctxError("get-or-compute", key, ctx)
	}
}

// wait waits for f, the flight of key, or for ctx to end. A stale value
// the flight served (fail-safe) is one stale value served to this caller.
func (r *runner[K, V]) wait(ctx context.Context, f *cache.Flight, key string) (V, error) {
	val, err := f.Wait(ctx)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		var zero V
		return zero, ctxError("get-or-compute", key, ctx)
	}
	v, _ := val.(V) // the flight's type is V: only a nil value fails
	return v, r.served(ctx, key, err)
}

// errServedStale is the error of a computation, flight or bulk key whose
// result is a stale value that fail-safe serves: it travels with the value
// to each caller, which counts one stale value served (served) and gets
// the value with a nil error. It never reaches a caller of the package.
var errServedStale = errors.New("memo: a stale value served")

// served turns errServedStale into a stale value served to one caller:
// reported (Stats.StaleServed, the Observer) and a nil error.
func (r *runner[K, V]) served(ctx context.Context, key string, err error) error {
	if err != errServedStale {
		return err
	}
	r.d.Report(ctx, cache.Event{Op: cache.OpStaleServed, Result: cache.ResultStale, Key: key})
	return nil
}

// failOpen computes without the store, for callers whose read of it
// failed: the value is returned and not stored (the store is failing, and
// a write without a lease could land over a newer value).
func (r *runner[K, V]) failOpen(ctx context.Context, key string, compute func(ctx context.Context) (V, error)) (V, error) {
	cctx, cancel := context.WithTimeout(ctx, r.o.ComputeTimeout)
	defer cancel()
	cctx = withoutCall(cctx)
	v, err := r.timedCompute(cctx, key, compute)
	if errors.Is(err, ErrNotFound) {
		return v, notFound(key, err)
	}
	if err != nil {
		return v, fail("compute", key, err)
	}
	return v, nil
}

// timedCompute runs compute, turning a panic into an error, and reports
// it (a computation, with its duration and error, in Stats and to the
// Observer; a span where the Observer traces).
func (r *runner[K, V]) timedCompute(ctx context.Context, key string, compute func(ctx context.Context) (V, error)) (v V, err error) {
	var start time.Time
	if r.d.Observed() {
		start = time.Now()
		var end func(error)
		if ctx, end = r.d.Start(ctx, cache.OpCompute, key); end != nil {
			defer func() { end(err) }()
		}
	}
	v, err = cache.Recover(func() (V, error) { return compute(ctx) })
	res := cache.ResultOK
	if err != nil && !errors.Is(err, ErrNotFound) {
		res = cache.ResultError
	}
	var d time.Duration
	if !start.IsZero() {
		d = time.Since(start)
	}
	r.d.Report(ctx, cache.Event{Op: cache.OpCompute, Result: res, Key: key, Duration: d, Err: err})
	return v, err
}

// runFlight is the goroutine of a flight, on a copy of the runner: it runs
// detached from the leader's context and finishes the flight for its
// followers. It ends when base does (Memo.Close).
func (r *runner[K, V]) runFlight(ctx, base context.Context, key string, e cache.Entry[V], compute func(ctx context.Context) (V, error), f *cache.Flight) {
	defer r.bg.done()
	fctx, cancel := detached(ctx, base)
	v, err := r.fill(fctx, key, e, compute) // errServedStale goes to the callers
	cancel()
	f.Finish(v, err)
}

// fill is one process's attempt to fill key, starting from the entry e a
// caller read: take the lease and compute, or wait for the computation
// that holds it and read what it left. The wait for other computations is
// bounded by ComputeTimeout plus the lease.
func (r *runner[K, V]) fill(ctx context.Context, key string, e cache.Entry[V], compute func(ctx context.Context) (V, error)) (V, error) {
	var zero V
	wctx, cancel := context.WithTimeout(ctx, r.o.ComputeTimeout+r.o.Lease)
	defer cancel()
	for {
		if err := ctx.Err(); err != nil {
			return zero, ctxError("get-or-compute", key, ctx) // stopped (Memo.Close)
		}
		switch classify(&e, time.Now()) {
		case stateHit:
			return e.Value, nil // filled meanwhile, by another process
		case stateNegative:
			return zero, notFound(key, nil)
		case stateLeased:
			next, err := r.timedAwait(wctx, key, e)
			if err != nil {
				if ctx.Err() == nil && wctx.Err() != nil {
					return zero, fail("get-or-compute", key, fmt.Errorf("waited %v for another computation: %w", r.o.ComputeTimeout+r.o.Lease, context.DeadlineExceeded))
				}
				return r.storeFailed(ctx, key, err, compute)
			}
			e = next
			continue
		}
		var keep cache.Entry[V]
		if _, ok := r.staleOf(&e); ok {
			keep = e // fail-safe: the stale value stays under the lease
		}
		lease, won, err := r.takeLease(ctx, key, &e, keep)
		if err != nil {
			return r.storeFailedStale(ctx, key, err, compute, keep)
		}
		if !won {
			// Another caller was first: read what it left.
			if e, err = r.load(ctx, key); err != nil {
				return r.storeFailedStale(ctx, key, err, compute, keep)
			}
			continue
		}
		return r.computeUnderLease(ctx, key, lease, e.Corrupt != nil, compute)
	}
}

// timedAwait is awaitLease, through every renewal of the lease, as one
// lease wait: counted in Stats when it starts (so that Stats shows a call
// waiting), and reported to the Observer with its duration when it ends
// (with a span where the Observer traces).
func (r *runner[K, V]) timedAwait(ctx context.Context, key string, e cache.Entry[V]) (next cache.Entry[V], err error) {
	r.d.Count(cache.StatLeaseWait, 1)
	var start time.Time
	if r.d.Observed() {
		start = time.Now()
		var end func(error)
		if ctx, end = r.d.Start(ctx, cache.OpLeaseWait, key); end != nil {
			defer func() { end(err) }()
		}
	}
	for {
		next, err = r.awaitLease(ctx, key, e)
		if err != nil || classify(&next, time.Now()) != stateLeased || next.ID != e.ID {
			break
		}
		e = next // the same lease, renewed: its computation goes on
	}
	var d time.Duration
	if !start.IsZero() {
		d = time.Since(start)
	}
	r.d.Observe(ctx, cache.Event{Op: cache.OpLeaseWait, Key: key, Duration: d})
	return next, err
}

// storeFailedStale is storeFailed for a flight that holds a stale value
// (fail-safe): when the computation through FailOpen fails too, callers
// get the stale value.
func (r *runner[K, V]) storeFailedStale(ctx context.Context, key string, err error, compute func(ctx context.Context) (V, error), keep cache.Entry[V]) (V, error) {
	v, err := r.storeFailed(ctx, key, err, compute)
	if err != nil && keep.HasValue && !errors.Is(err, ErrNotFound) && r.o.FailOpen {
		return keep.Value, errServedStale
	}
	return v, err
}

// storeFailed handles a store error of a flight: with FailOpen the value is
// computed all the same (and not stored); otherwise the error is returned.
// The Door already counted the error.
func (r *runner[K, V]) storeFailed(ctx context.Context, key string, err error, compute func(ctx context.Context) (V, error)) (V, error) {
	if !r.o.FailOpen || ctx.Err() != nil {
		var zero V
		return zero, fail("get-or-compute", key, withCause(ctx, err))
	}
	r.d.Count(cache.StatFailOpen, 1)
	return r.failOpen(ctx, key, compute)
}

// leaseTTL is the store's expiry of a lease entry: the lease.
func (r *runner[K, V]) leaseTTL() time.Duration { return r.o.Lease }

// keptTTL is how long the store should still keep the value of e, written
// by memo, from now: until its TTL ends, plus FailSafeMax past its logical
// expiry; at least a millisecond.
func (r *runner[K, V]) keptTTL(e *cache.Entry[V], now time.Time) time.Duration {
	var end time.Time
	switch {
	case !e.FreshUntil.IsZero():
		end = e.FreshUntil.Add(r.o.FailSafeMax)
	case !e.Written.IsZero() && r.ttl > 0:
		end = e.Written.Add(r.ttl)
	default:
		return r.ttl // no expiry known: as a new value
	}
	return max(end.Sub(now), time.Millisecond)
}

// valueTTL returns the TTL of a value memo writes now (the computation's
// choice, else the TTL with Jitter taken off), and the entry's logical
// expiry and physical ttl: with fail-safe, the value is fresh for the TTL
// and kept FailSafeMax longer. The logical expiry is recorded where a
// reader needs the value's own TTL: with fail-safe, with refresh-ahead
// (whose refresh point is a fraction of it), and for a TTL the computation
// chose; otherwise the store's expiry is the only one, and a hit needs no
// clock.
func (r *runner[K, V]) valueTTL(now time.Time, chosen time.Duration) (freshUntil time.Time, physical time.Duration) {
	ttl := chosen
	if ttl <= 0 {
		ttl = r.ttl
		if r.o.Jitter > 0 && ttl > 0 {
			ttl -= time.Duration(rand.Float64() * r.o.Jitter * float64(ttl))
		}
	}
	if ttl <= 0 || (r.o.FailSafeMax <= 0 && r.o.RefreshAhead <= 0 && chosen <= 0) {
		return time.Time{}, ttl
	}
	return now.Add(ttl), ttl + r.o.FailSafeMax
}

// takeLease writes a lease into key over the entry e read from it (an Add
// when e does not exist, a swap otherwise), keeping keep's value beside
// the lease when keep.HasValue (a refresh). won reports that the lease is
// the caller's; false means the key changed since e was read.
func (r *runner[K, V]) takeLease(ctx context.Context, key string, e *cache.Entry[V], keep cache.Entry[V]) (lease cache.Entry[V], won bool, err error) {
	now := time.Now()
	lease = cache.Entry[V]{Lease: true, LeaseEnd: now.Add(r.o.Lease)}
	ttl := r.leaseTTL()
	if keep.HasValue {
		lease.Value, lease.HasValue = keep.Value, true
		lease.Written, lease.FreshUntil = keep.Written, keep.FreshUntil
		// The value stays readable (or fail-safe) as long as it would have.
		ttl = max(ttl, r.keptTTL(&keep, now))
	}
	octx, cancel := r.opContext(ctx)
	defer cancel()
	if !e.Exists() {
		err = r.d.Add(octx, key, &lease, ttl)
		if errors.Is(err, cache.ErrExists) {
			return lease, false, nil
		}
		return lease, err == nil, err
	}
	won, err = r.d.Swap(octx, key, e, &lease, ttl)
	return lease, won, err
}

// awaitLease waits until the lease in e (another computation's) may have
// ended: the store's wake-up of a swap or a delete of the key, or the
// lease's end, polling with backoff where the store does not notify. It
// returns the entry read after the wait.
func (r *runner[K, V]) awaitLease(ctx context.Context, key string, e cache.Entry[V]) (cache.Entry[V], error) {
	w := r.d.Watch(ctx, key)
	defer w.Stop()
	// Read again now that the watch is in place: an end in between is
	// seen here, not missed.
	cur, err := r.load(ctx, key)
	if err != nil || classify(&cur, time.Now()) != stateLeased || cur.ID != e.ID {
		return cur, err
	}
	poll := minPoll
	for {
		left := time.Until(cur.LeaseEnd) + time.Millisecond
		d := left
		if !w.Notified() {
			d = min(jitter(poll), left)
			poll = min(2*poll, maxPoll)
		}
		if _, err := w.Wait(ctx, d); err != nil {
			return cur, err
		}
		next, err := r.load(ctx, key)
		if err != nil || classify(&next, time.Now()) != stateLeased || next.ID != cur.ID || !next.LeaseEnd.Equal(cur.LeaseEnd) {
			return next, err // ended, renewed or replaced: the caller looks again
		}
	}
}

// Polls of a waiter on a store that does not notify (Memcached): jittered,
// from minPoll doubling to maxPoll, never past the lease's end.
const (
	minPoll = 2 * time.Millisecond
	maxPoll = 100 * time.Millisecond
)

func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// computeUnderLease runs the computation while the caller holds lease on
// key, and replaces the lease with the outcome: the value, a cached "not
// found", or nothing (an error gives the lease up).
func (r *runner[K, V]) computeUnderLease(ctx context.Context, key string, lease cache.Entry[V], corrupt bool, compute func(ctx context.Context) (V, error)) (V, error) {
	var zero V
	call := &Call{}
	if lease.HasValue {
		call.stale, call.written, call.has = lease.Value, lease.Written, true
	}
	cctx, cancel := context.WithTimeout(context.WithValue(ctx, callKey{}, call), r.o.ComputeTimeout)
	w := r.renew(cctx, key, lease)
	v, err := r.timedCompute(w.ctx, key, compute)
	lease = w.stop()
	cancel()
	if err != nil {
		if w.lost() {
			err = errors.Join(err, ErrLeaseLost)
		}
		if !errors.Is(err, ErrNotFound) && lease.HasValue && r.o.FailSafeMax > 0 && !lease.Fresh(time.Now()) {
			// Fail-safe: the stale value is served, and stored fresh
			// again for the throttle. (A value still fresh, that a
			// refresh failed to replace, is put back as it was.)
			r.serveStale(ctx, key, &lease, err)
			return lease.Value, errServedStale
		}
		r.endLease(ctx, key, &lease, err)
		if errors.Is(err, ErrNotFound) {
			return zero, notFound(key, err)
		}
		return zero, fail("compute", key, err)
	}
	ttl, skip := call.decisions()
	if skip || ctx.Err() != nil || w.lost() {
		// The computation chose not to cache its value, or was stopped
		// meanwhile, or lost its lease: the value is good, but not stored.
		r.release(ctx, key, &lease)
		return v, nil
	}
	if r.writeValue(ctx, key, &lease, v, ttl) && corrupt {
		r.d.Count(cache.StatHealed, 1)
	}
	return v, nil
}

// serveStale ends a lease whose computation failed with err by storing the
// stale value it kept as fresh again for FailSafeThrottle. The stale value
// is counted where it reaches a caller (errServedStale): a background
// computation that no caller waits for any longer serves nobody.
func (r *runner[K, V]) serveStale(ctx context.Context, key string, lease *cache.Entry[V], err error) {
	now := time.Now()
	back := cache.Entry[V]{Value: lease.Value, HasValue: true, FreshUntil: now.Add(r.o.FailSafeThrottle)}
	octx, cancel := r.opContext(context.WithoutCancel(ctx))
	defer cancel()
	if _, err := r.d.Swap(octx, key, lease, &back, r.o.FailSafeThrottle+r.o.FailSafeMax); err != nil {
		r.d.Background(ctx, "fail-safe write", key, err)
		r.release(ctx, key, lease)
	}
}

// renewal is a running lease watchdog: see renew.
type renewal[V any] struct {
	ctx    context.Context // the computation's: ends (ErrLeaseLost) when the lease is lost
	cancel context.CancelCauseFunc
	mu     sync.Mutex
	lease  cache.Entry[V] // the current lease entry
	done   chan struct{}
	exited chan struct{}
	gone   atomic.Bool
}

// renew starts the watchdog of lease on key: every third of the lease it
// writes the lease again with a new end (a swap from the current lease
// entry, so that nothing else is overwritten), until stop. When the lease
// is gone (replaced or expired), or the store fails until less than a
// sixth of it is left, it cancels the returned context with ErrLeaseLost.
func (r *runner[K, V]) renew(ctx context.Context, key string, lease cache.Entry[V]) *renewal[V] {
	w := &renewal[V]{lease: lease, done: make(chan struct{}), exited: make(chan struct{})}
	w.ctx, w.cancel = context.WithCancelCause(ctx)
	go func() {
		defer close(w.exited)
		every := max(r.o.Lease/3, time.Millisecond)
		t := time.NewTimer(every)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-w.ctx.Done():
				return
			case <-t.C:
			}
			w.mu.Lock()
			cur := w.lease
			w.mu.Unlock()
			now := time.Now()
			next := cur
			next.LeaseEnd = now.Add(r.o.Lease)
			ttl := r.leaseTTL()
			if next.HasValue {
				ttl = max(ttl, r.keptTTL(&next, now))
			}
			octx, cancel := r.opContext(context.WithoutCancel(w.ctx))
			ok, err := r.d.Swap(octx, key, &cur, &next, ttl)
			cancel()
			switch {
			case ok:
				w.mu.Lock()
				w.lease = next
				w.mu.Unlock()
				t.Reset(every)
			case err == nil:
				w.gone.Store(true)
				w.cancel(ErrLeaseLost)
				return
			case time.Until(cur.LeaseEnd) < r.o.Lease/6:
				r.d.Background(w.ctx, "lease renewal", key, err)
				w.gone.Store(true)
				w.cancel(fmt.Errorf("%w: %w", ErrLeaseLost, err))
				return
			default:
				r.d.Background(w.ctx, "lease renewal", key, err)
				t.Reset(max(time.Until(cur.LeaseEnd)/4, time.Millisecond))
			}
		}
	}()
	return w
}

// stop ends the watchdog and returns the current lease entry.
func (w *renewal[V]) stop() cache.Entry[V] {
	close(w.done)
	<-w.exited
	w.cancel(nil)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lease
}

// lost reports whether the watchdog found the lease lost.
func (w *renewal[V]) lost() bool { return w.gone.Load() }

// writeValue replaces the lease on key with the value v, and reports
// whether it was written. A lease that is gone (a Set, Delete or
// Invalidate since the computation started, or a takeover) drops the value:
// no stale set. A failure (of the store, or of the codec) is counted, the
// lease given up, and the value is still good.
func (r *runner[K, V]) writeValue(ctx context.Context, key string, lease *cache.Entry[V], v V, chosen time.Duration) bool {
	now := time.Now()
	freshUntil, ttl := r.valueTTL(now, chosen)
	val := cache.Entry[V]{Value: v, HasValue: true, Written: now, FreshUntil: freshUntil}
	var start time.Time
	if r.d.Observed() {
		start = time.Now()
	}
	octx, cancel := r.opContext(context.WithoutCancel(ctx))
	defer cancel()
	ok, err := r.d.Swap(octx, key, lease, &val, ttl)
	if err != nil && !errors.Is(err, cache.ErrNotInvalidated) {
		// The store failed: nobody waits for this error. (A value written
		// whose invalidation could not be sent was counted by the Cache.)
		r.d.Background(ctx, "write", key, err)
		if !ok {
			r.release(ctx, key, lease)
			return false
		}
	}
	if ok {
		var d time.Duration
		if !start.IsZero() {
			d = time.Since(start)
		}
		r.d.Report(ctx, cache.Event{Op: cache.OpSet, Key: key, Duration: d})
	}
	return ok
}

// endLease replaces the lease on key after a computation that failed with
// err: a cached "not found" for ErrNotFound with NegativeTTL, else nothing
// (the lease is given up, waking the waiters, which then compute
// themselves).
func (r *runner[K, V]) endLease(ctx context.Context, key string, lease *cache.Entry[V], err error) {
	if errors.Is(err, ErrNotFound) && r.o.NegativeTTL > 0 {
		neg := cache.Entry[V]{NotFound: true, FreshUntil: time.Now().Add(r.o.NegativeTTL)}
		octx, cancel := r.opContext(context.WithoutCancel(ctx))
		defer cancel()
		if _, err := r.d.Swap(octx, key, lease, &neg, r.o.NegativeTTL); err != nil {
			r.d.Background(ctx, "write", key, err)
			r.release(ctx, key, lease)
		}
		return
	}
	if errors.Is(err, ErrNotFound) && lease.HasValue {
		// An answer: the value kept beside the lease (refreshed, or
		// fail-safe's stale one) no longer exists, and goes with it.
		octx, cancel := r.opContext(context.WithoutCancel(ctx))
		defer cancel()
		if _, err := r.d.Remove(octx, key, lease); err != nil {
			r.d.Background(ctx, "release", key, err)
		}
		return
	}
	r.release(ctx, key, lease)
}

// release gives the lease on key up, if it is still there, waking its
// waiters.
func (r *runner[K, V]) release(ctx context.Context, key string, lease *cache.Entry[V]) {
	octx, cancel := r.opContext(context.WithoutCancel(ctx))
	defer cancel()
	if lease.HasValue {
		// A lease beside a value (a refresh's, or a fail-safe stale
		// value's): put the value back without it, so that the next
		// reader tries again.
		back := cache.Entry[V]{Value: lease.Value, HasValue: true, Written: lease.Written, FreshUntil: lease.FreshUntil}
		if _, err := r.d.Swap(octx, key, lease, &back, r.keptTTL(lease, time.Now())); err != nil {
			r.d.Background(ctx, "release", key, err)
		}
		return
	}
	if _, err := r.d.Remove(octx, key, lease); err != nil {
		r.d.Background(ctx, "release", key, err)
	}
}

// refreshDue reports whether the value in e, a hit, is past its refresh
// point and nobody refreshes it yet. The refresh point is RefreshAhead of
// the value's own TTL (chosen by its computation, or jittered), where its
// entry records it, else of the TTL.
func (r *runner[K, V]) refreshDue(e *cache.Entry[V], now time.Time) bool {
	if r.o.RefreshAhead <= 0 || e.Plain || e.Lease || e.Written.IsZero() {
		return false
	}
	ttl := r.ttl
	if e.FreshUntil.After(e.Written) {
		ttl = e.FreshUntil.Sub(e.Written)
	}
	return !now.Before(e.Written.Add(time.Duration(float64(ttl) * r.o.RefreshAhead)))
}

// refresh recomputes the value in e in the background: at most one refresh
// per key in the process (a flight), and across processes only the caller
// whose lease lands beside the value.
func (r *runner[K, V]) refresh(ctx context.Context, key string, e cache.Entry[V], compute func(ctx context.Context) (V, error)) {
	f, leader := r.d.JoinFlight(cache.RefreshFlight, key)
	if !leader {
		return
	}
	base := r.bg.add()
	go r.detach().backgroundRefresh(ctx, base, key, e, compute, f)
}

// backgroundRefresh is the goroutine of refresh, on a copy of the runner.
func (r *runner[K, V]) backgroundRefresh(ctx, base context.Context, key string, e cache.Entry[V], compute func(ctx context.Context) (V, error), f *cache.Flight) {
	rctx, stop := detached(ctx, base)
	defer func() {
		stop()
		f.Finish(nil, nil)
		r.bg.done()
	}()
	if e.Local() {
		// Read from the local tier: the swap needs the store's bytes.
		fresh, err := r.load(rctx, key)
		if err != nil || classify(&fresh, time.Now()) != stateHit || !r.refreshDue(&fresh, time.Now()) {
			return
		}
		e = fresh
	}
	lease, won, err := r.takeLease(rctx, key, &e, e)
	if err != nil {
		r.d.Background(rctx, "refresh", key, err)
		return
	}
	if !won {
		return // refreshed meanwhile, or gone: a miss computes it
	}
	r.d.Report(rctx, cache.Event{Op: cache.OpRefresh, Key: key})
	if _, err := r.computeUnderLease(rctx, key, lease, false, compute); err != nil && err != errServedStale && !errors.Is(err, ErrNotFound) {
		r.d.Background(rctx, "refresh", key, err)
	}
}

// withCause joins err, a store error, with context.Cause(ctx) when ctx has
// ended with a cause of its own that err does not carry already.
func withCause(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() && !errors.Is(err, cause) {
		return errors.Join(err, cause)
	}
	return err
}
