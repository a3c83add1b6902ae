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
	// starting their own. It should exceed the time a computation takes;
	// a computation that outlives it may have its lease taken over, and
	// its value is then dropped rather than written over the newer one.
	// Default: 10s. On Memcached, whose expiry has whole seconds, at least
	// a second.
	Lease time.Duration

	// TTL is the expiry of computed values; zero means the cache's TTL (to
	// store without expiry, pass a cache view c.WithTTL(0)).
	TTL time.Duration

	// NegativeTTL, when positive, caches a computation's ErrNotFound answer
	// for that long, in the key's own entry (flagged "not found", so that
	// it is never confused with a value); a plain Cache.Get sees a miss.
	NegativeTTL time.Duration

	// RefreshAhead, in (0, 1), turns on refresh-ahead: once that fraction
	// of the TTL has passed since a value was written, callers still get
	// the cached value at once, and exactly one caller across all processes
	// recomputes it in the background: it writes a lease into the entry
	// beside the value (readers keep getting the value), computes, and
	// replaces the entry with the new value. That goroutine outlives the
	// call that started it (bounded by ComputeTimeout and the store's
	// Timeout); with Func, Memo.Close stops it. It needs a TTL; with no
	// expiry it is off.
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
}

// Defaults of Options.
const (
	DefaultLease          = 10 * time.Second
	DefaultComputeTimeout = time.Minute
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
	return r
}
