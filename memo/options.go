package memo

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/typedcache/typedcache/lock"
)

// ErrNotFound is what a computation returns to say that the value does not
// exist. With Options.NegativeTTL set, that answer is cached too, and later
// calls return an error matching ErrNotFound without computing.
var ErrNotFound = errors.New("memo: not found")

// Options configure GetOrCompute, GetOrComputeMulti and Func. A nil
// *Options, and every zero field, means the default.
type Options struct {
	// Lease is the lease of the lock that makes one computation serve every
	// process, and the longest a caller waits for another process's
	// computation before computing itself. It should exceed the time a
	// computation takes. Default: 10s.
	Lease time.Duration

	// TTL is the expiry of computed values; zero means the cache's TTL (to
	// store without expiry, pass a cache view c.WithTTL(0)).
	TTL time.Duration

	// NegativeTTL, when positive, caches a computation's ErrNotFound answer
	// for that long, under a marker key of its own next to the value's (the
	// value's store key plus "\x00memo:none"). No cache key can name it
	// (keys cannot hold a NUL byte), so it is never confused with a real
	// value under any key or codec, and a plain Cache.Get sees a miss.
	NegativeTTL time.Duration

	// RefreshAhead, in (0, 1), turns on refresh-ahead: once that fraction
	// of the TTL has passed since a value was computed, callers still get
	// the cached value at once, and exactly one caller across all
	// processes recomputes it in the background (one goroutine, bounded by
	// the lease, ComputeTimeout and the store timeouts). That goroutine
	// outlives the call that started it: with GetOrCompute nothing else
	// stops it; with Func, Memo.Close does. It needs a TTL; with no expiry
	// it is off. The age is kept in a marker key (the value's store key
	// plus "\x00memo:fresh", which no cache key can name).
	//
	// The refresh point is moved earlier, to a second before the expiry,
	// when that is still at least half of TTL*RefreshAhead (TTL 2s with
	// 0.9 refreshes after 1s, not 1.8s; TTL 10s with 0.9 after 9s), so
	// that on a store that rounds TTLs up to whole seconds (memcached) the
	// marker expires before the value. A shorter TTL keeps its refresh
	// point (TTL 1.05s with 0.9 refreshes after 945ms), and such a store
	// expires marker and value in the same second: values are not
	// refreshed ahead, they expire and the next call computes them as a
	// miss. On a store with whole-second expiry, refresh-ahead needs a TTL
	// of a few seconds to trigger.
	RefreshAhead float64

	// FailOpen makes a failing store (down, slow, erroring) not stop the
	// computation: when reading the cache or taking the lock fails, callers
	// get a freshly computed value, and the failure is counted in
	// Stats.FailOpen. Without it, such an error is returned. (A failure to
	// store a computed value never loses it: the value is returned and the
	// failure counted in Stats.WriteErrors.)
	FailOpen bool

	// ComputeTimeout bounds each computation, which runs on a context
	// detached from its callers'. Default: one minute.
	ComputeTimeout time.Duration

	// Lock configures the lock (its backoff and release timeout).
	Lock *lock.Options

	// Stats, when set, receives the counters of the calls made with these
	// options; otherwise they go to the package's DefaultStats. Func keeps
	// its own.
	Stats *Stats
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Lease <= 0 {
		r.Lease = 10 * time.Second
	}
	if r.ComputeTimeout <= 0 {
		r.ComputeTimeout = time.Minute
	}
	if r.RefreshAhead < 0 || r.RefreshAhead >= 1 {
		r.RefreshAhead = 0
	}
	if r.Stats == nil {
		r.Stats = &defaultStats
	}
	return r
}

// defaultStats counts the calls whose options have no Stats.
var defaultStats Stats

// DefaultStats returns the counts of the calls made without Options.Stats
// (Func's calls count in the Memo instead).
func DefaultStats() StatsSnapshot { return defaultStats.Snapshot() }

// Stats counts what memo did. Its fields are safe to read while calls run;
// Snapshot reads them all.
type Stats struct {
	Hits         atomic.Int64 // calls answered from the cache
	NegativeHits atomic.Int64 // calls answered by a cached ErrNotFound
	Misses       atomic.Int64 // calls (or keys) that found nothing usable
	Computations atomic.Int64 // computations run (refreshes included)
	Refreshes    atomic.Int64 // refresh-ahead recomputations
	Healed       atomic.Int64 // cached values that failed to decode, recomputed and overwritten
	FailOpen     atomic.Int64 // store failures that FailOpen computed through
	LockWaits    atomic.Int64 // times a caller waited for another's computation
	WriteErrors  atomic.Int64 // computed values that could not be stored (still returned)
}

// StatsSnapshot is a copy of Stats at one moment.
type StatsSnapshot struct {
	Hits, NegativeHits, Misses, Computations, Refreshes, Healed, FailOpen, LockWaits, WriteErrors int64
}

// Snapshot returns the current counts.
func (s *Stats) Snapshot() StatsSnapshot {
	return StatsSnapshot{
		Hits:         s.Hits.Load(),
		NegativeHits: s.NegativeHits.Load(),
		Misses:       s.Misses.Load(),
		Computations: s.Computations.Load(),
		Refreshes:    s.Refreshes.Load(),
		Healed:       s.Healed.Load(),
		FailOpen:     s.FailOpen.Load(),
		LockWaits:    s.LockWaits.Load(),
		WriteErrors:  s.WriteErrors.Load(),
	}
}
