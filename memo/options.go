package memo

import (
	"errors"
	"time"
)

// ErrNotFound is what a computation returns to say that the value does not
// exist. With Options.NegativeTTL set, that answer is cached too, and later
// calls return an error matching ErrNotFound without computing. A
// computation may wrap it (fmt.Errorf("%w: %w", memo.ErrNotFound,
// sql.ErrNoRows)): the caller's error then matches both.
var ErrNotFound = errors.New("memo: not found")

// Options configure GetOrCompute, GetOrComputeMulti and Func. A nil
// *Options, and every zero field, means the default.
type Options struct {
	// Lease is how long a computation holds the key before another caller
	// may take it over: a miss writes a lease into the key's entry, and
	// callers in every process wait for its computation instead of
	// starting their own. While the computation runs, a watchdog renews
	// the lease every third of it, so a computation may run longer (up to
	// ComputeTimeout); a lease it cannot renew ends the computation's
	// context with the cause ErrLeaseLost, and its value is then dropped
	// rather than written over a newer one. (A bulk computation's leases,
	// of GetOrComputeMulti and Memo.GetMulti, are not renewed.) The lease
	// bounds how long the key stays held after its holder died. Default:
	// 10s. On Memcached, whose expiry has whole seconds, at least two
	// seconds.
	Lease time.Duration

	// TTL is the expiry of computed values; zero means the cache's TTL (to
	// store without expiry, pass a cache view c.WithTTL(0)).
	TTL time.Duration

	// NegativeTTL, when positive, caches a computation's ErrNotFound answer
	// for that long, in the key's own entry (flagged "not found", so that
	// it is never confused with a value); a plain Cache.Get sees a miss.
	NegativeTTL time.Duration

	// RefreshAhead, in (0, 1), turns on refresh-ahead: once that fraction
	// of the value's TTL (the TTL with Jitter taken off, or the one its
	// computation chose with Call.SetTTL) has passed since the value was
	// written, callers still get the cached value at once, and exactly one
	// caller across all processes recomputes it in the background: it
	// writes a lease into the entry beside the value (readers keep getting
	// the value until its TTL ends), computes, and replaces the entry with
	// the new value. That goroutine outlives the call that started it
	// (bounded by ComputeTimeout and the store's Timeout); with Func,
	// Memo.Close stops it. It needs a TTL; with no expiry it is off.
	RefreshAhead float64

	// FailOpen makes a failing store (down, slow, erroring) not stop the
	// computation: when reading the cache or taking the lease fails,
	// callers get a freshly computed value (not stored), and the failure is
	// counted in the cache's Stats.FailOpen. Without it, such an error is
	// returned. (A failure to store a computed value never loses it: the
	// value is returned and the failure counted in Stats.BackgroundErrors.)
	FailOpen bool

	// ComputeTimeout bounds each computation, which runs on a context
	// detached from its callers'. Default: one minute.
	ComputeTimeout time.Duration

	// FailSafeMax turns on fail-safe: a value stays in the store for
	// FailSafeMax past its TTL (its logical expiry), and when a computation
	// that would replace it fails (an error, a panic, ComputeTimeout, or
	// the store failing with FailOpen), callers get that stale value with
	// a nil error instead of the failure (counted in the cache's
	// Stats.StaleServed), and the stale value is stored again as fresh for
	// FailSafeThrottle, so that a failing source is not asked again on
	// every call. An ErrNotFound answer is not a failure: it is cached (or
	// not) as usual. Reads past the TTL are misses to a plain Cache.Get.
	FailSafeMax time.Duration

	// FailSafeThrottle is how long a stale value served by fail-safe is
	// fresh again; default DefaultFailSafeThrottle, at most FailSafeMax.
	FailSafeThrottle time.Duration

	// SoftTimeout, with fail-safe, bounds how long a caller that has a
	// stale value waits for its recomputation: past it, the caller gets the
	// stale value at once (counted in Stats.StaleServed), and the
	// computation goes on in the background and stores its value under its
	// lease. Callers without a stale value wait on. Single-key calls only:
	// the callers of GetOrComputeMulti and Memo.GetMulti wait for the
	// computation.
	SoftTimeout time.Duration

	// HardTimeout bounds how long any caller waits for a computation: past
	// it, the caller gets an error matching context.DeadlineExceeded (with
	// a stale value, past SoftTimeout it had that already). The
	// computation goes on in the background, bounded by ComputeTimeout,
	// and stores its value for the next callers. Single-key calls only, as
	// SoftTimeout.
	HardTimeout time.Duration

	// Jitter, in [0, 1), takes a random part of up to that fraction off the
	// TTL of every value memo writes, so that values computed together do
	// not all expire together (0.1: between 90% and 100% of the TTL).
	Jitter float64
}

// ErrLeaseLost is the cause (context.Cause) of a computation's context
// when its lease could not be renewed: another caller took the key over
// (the lease ran out, or a Set, Delete or Invalidate replaced it), or the
// store failed until the lease was about to end. Whatever the computation
// returns then is not stored.
var ErrLeaseLost = errors.New("memo: lease lost")

// Defaults of Options.
const (
	DefaultLease            = 10 * time.Second
	DefaultComputeTimeout   = time.Minute
	DefaultFailSafeThrottle = 30 * time.Second
)

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Lease <= 0 {
		r.Lease = DefaultLease
	}
	if r.ComputeTimeout <= 0 {
		r.ComputeTimeout = DefaultComputeTimeout
	}
	if r.RefreshAhead < 0 || r.RefreshAhead >= 1 {
		r.RefreshAhead = 0
	}
	if r.FailSafeMax < 0 {
		r.FailSafeMax = 0
	}
	if r.FailSafeThrottle <= 0 {
		r.FailSafeThrottle = DefaultFailSafeThrottle
	}
	if r.FailSafeMax > 0 {
		r.FailSafeThrottle = min(r.FailSafeThrottle, r.FailSafeMax)
	}
	if r.Jitter < 0 || r.Jitter >= 1 {
		r.Jitter = 0
	}
	return r
}
