package cache

import (
	"context"
	"strings"
	"time"
)

// Door is the one way into a Cache's store for the packages built on the
// Cache (lock and memo in this module, and yours): it builds their store
// keys, bounds each store call by the Cache's Timeout, counts in the
// Cache's Stats, and keeps the fallbacks for stores that lack an optional
// capability (Leaser, Fencer, Notifier) in one place (capabilities.go), so
// that no package above the Cache asks which store it runs on. Get one
// with [Cache.Door]; it is a small value, safe for concurrent use.
//
// Users of the Cache do not need it.
type Door[K comparable, V any] struct {
	c *Cache[K, V]
}

// Door returns the door of c, for packages built on the Cache.
func (c *Cache[K, V]) Door() Door[K, V] { return Door[K, V]{c: c} }

// Key returns the store key of k, or an error matching ErrInvalidKey when
// the key function gives an empty key or one that holds the reserved NUL
// byte.
func (d Door[K, V]) Key(k K) (string, error) { return d.c.buildKey(k) }

// Record returns the record of k named suffix: a key of the store kept
// beside k's value, k's store key followed by the reserved NUL byte and
// suffix, which no key of any Cache can be (lock keeps a lock's token in
// the record "lock" of the protected key). It fails with an error matching
// ErrInvalidKey where Key does, and for an empty suffix.
func (d Door[K, V]) Record(k K, suffix string) (*Record, error) {
	key, err := d.c.buildKey(k)
	if err != nil {
		return nil, err
	}
	if suffix == "" || strings.IndexByte(suffix, ReservedKeyByte) >= 0 {
		return nil, ErrInvalidKey
	}
	return &Record{s: d.c.shared.base(), key: key + string(ReservedKeyByte) + suffix}, nil
}

// Count adds n to the counter st of the Cache's Stats.
func (d Door[K, V]) Count(st Stat, n int64) {
	if c := d.c.stats.of(st); c != nil {
		c.Add(n)
	}
}

// Raw reports whether the cache was made with Options.Raw: it stores no
// entries, and the Door's entry operations fail with ErrRaw.
func (d Door[K, V]) Raw() bool { return d.c.raw }

// Timeout returns the bound of each store call (Options.Timeout; 0 =
// none), for a package that must tell its callers.
func (d Door[K, V]) Timeout() time.Duration { return d.c.timeout }

// bounded is the part of a Cache's shared state that does not depend on
// its types: what a Record needs.
type bounded struct {
	store   Store
	timeout time.Duration
	stats   *counters
	wakes   *wakeRegistry
}

// bound applies the Timeout to ctx.
func (b *bounded) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if b.timeout <= 0 {
		return ctx, noCancel
	}
	return context.WithTimeout(ctx, b.timeout)
}

// failed counts a store error.
func (b *bounded) failed(err error) error {
	if err != nil {
		b.stats.errors.Add(1)
	}
	return err
}

// Report counts ev in the Cache's Stats (the counter its op and result
// name: a hit of the local or the store layer, a miss, a negative hit, a
// computation, a lease wait, a refresh, a stale value served, a write, a
// background failure, an error) and reports it to the Observer, so that
// the two always agree. Packages built on the Cache report what they do
// with it.
func (d Door[K, V]) Report(ctx context.Context, ev Event) {
	st := &d.c.stats
	switch {
	case ev.Op == OpGet && ev.Result == ResultHit && ev.Layer == LayerLocal:
		st.localHits.Add(1)
	case ev.Op == OpGet && ev.Result == ResultHit:
		st.hits.Add(1)
	case ev.Op == OpGet && ev.Result == ResultMiss:
		st.misses.Add(1)
	case ev.Op == OpGet && ev.Result == ResultNegative:
		st.negativeHits.Add(1)
	case ev.Op == OpCompute:
		st.computations.Add(1)
		if ev.Result == ResultError {
			st.errors.Add(1)
		}
	case ev.Op == OpLeaseWait:
		st.leaseWaits.Add(1)
	case ev.Op == OpRefresh:
		st.refreshes.Add(1)
	case ev.Op == OpStaleServed:
		st.staleServed.Add(1)
	case ev.Op == OpSet && ev.Result == ResultOK:
		st.sets.Add(1)
	case ev.Op == OpBackground:
		st.backgroundErrors.Add(1)
		if d.c.obs.log != nil {
			d.c.obs.background(ctx, ev.Op.String(), ev.Key, ev.Err)
			return // background reported the event too
		}
	case ev.Result == ResultError:
		st.errors.Add(1)
	}
	d.c.obs.emit(ctx, ev)
}

// Background records a failure of work no caller waits for (what names
// it: "refresh", "write", "lease renewal"): counted in
// Stats.BackgroundErrors, reported to the Observer, and logged by the
// Cache's Logger, once per cause a minute, with the key.
func (d Door[K, V]) Background(ctx context.Context, what, key string, err error) {
	d.c.stats.backgroundErrors.Add(1)
	d.c.obs.background(ctx, what, key, err)
}

// Observed reports whether the Cache has an Observer: callers measure
// durations only then.
func (d Door[K, V]) Observed() bool { return d.c.obs.obs != nil }

// Start begins a traced operation where the Observer is a Tracer: it
// returns the context the operation goes on with and the function to call
// when it ends (nil without a Tracer).
func (d Door[K, V]) Start(ctx context.Context, op Op, key string) (context.Context, func(error)) {
	return d.c.obs.start(ctx, op, key)
}

// Observe reports ev to the Observer only: for what the caller counted
// itself, or what Stats does not count.
func (d Door[K, V]) Observe(ctx context.Context, ev Event) { d.c.obs.emit(ctx, ev) }

// KeyOf returns the store key of k without checking it (Cache.Key), for
// naming it in events.
func (d Door[K, V]) KeyOf(k K) string { return d.c.Key(k) }
