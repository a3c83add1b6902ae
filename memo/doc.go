// Package memo is read-through loading over a typedcache: the value of a key
// is read from the cache, and computed and stored on a miss, with one
// computation per key across goroutines and processes.
//
// [GetOrCompute] combines the cache with a lock.RedLock: on a miss, callers
// in a process share one flight; the flight takes the key's lock with the
// bounded wait, re-reads the cache under the lock, computes on a context
// detached from its callers, stores the value and releases the lock, which
// wakes the waiters of every process to read it. It is aiocache's
// cached_stampede done right: waiters in other processes really wait, one
// panic does not crash anyone, and a computation outliving its lease
// delays its waiters by at most the lease.
//
// [Options] add negative caching (a not-found answer kept apart from any
// value), refresh-ahead (serve the value while exactly one caller
// recomputes it before it expires), fail-open (a store that is down does
// not stop the computation), a lease and a compute timeout.
//
// [GetOrComputeMulti] loads many keys with one read and one computation of
// the missing ones (aiocache's multi_cached, with partial hits), and [Func]
// turns a func(ctx, K) (V, error) into its memoized form with Invalidate
// and Refresh (aiocache's @cached and @cached_stampede).
//
// Marker keys: with NegativeTTL, a not-found answer is the key
// "<key>\x00memo:none"; with RefreshAhead, the age of a value is the key
// "<key>\x00memo:fresh" (<key> is the value's store key, namespace
// included). Cache keys cannot hold a NUL byte, so no key of any cache is a
// marker key: markers and values never read, overwrite or delete each
// other. The lock is "<key>-lock" (see lock.NewRedLock). All share the
// cache's namespace, so Cache.Clear removes them with the values.
//
// Background goroutines: each miss runs its flight in a goroutine, so that
// it outlives a caller that gives up, and each refresh-ahead and bulk
// computation runs in one too. Every step of them is bounded: the wait for
// another process's lock by the lease, the computation by ComputeTimeout,
// each store operation by the cache's Timeout (10s when it has none).
// Those of the package-level functions are stopped by nothing else; those
// of a [Memo] are stopped by [Memo.Close], which cancels them and waits for
// them: use Func where work must stop at shutdown.
package memo
