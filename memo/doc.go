// Package memo is read-through loading over a typedcache: the value of a key
// is read from the cache, and computed and stored on a miss, with one
// computation per key across goroutines and processes.
//
// # Leases inside the entry
//
// [GetOrCompute] keeps everything about a key in the key itself: the
// value's entry (see Entries in package cache) carries, besides the value,
// when it was written, a cached "not found", and while a computation runs,
// its lease. On a miss:
//
//  1. callers in a process share one flight;
//  2. the flight writes a lease entry into the key only if the key is
//     absent (or, over a stale or corrupt entry, only if it still holds
//     what was read): one caller of all processes wins it;
//  3. the winner computes on a context detached from its callers, bounded
//     by ComputeTimeout, and replaces its own lease entry with the value by
//     compare-and-swap, which wakes the waiters (on Redis, in the same
//     round trip: the swap's script publishes);
//  4. the other callers, in every process, wait for that wake-up or for
//     the lease's end, then read the value.
//
// It is the lease of Facebook's memcache ("Scaling Memcache at Facebook",
// NSDI 2013), built from the Store contract alone, so it holds on every
// store: a write or a delete of the key revokes the lease, and a fill with
// a revoked lease is dropped.
//
// # No stale sets
//
// After Cache.Set(k, v), Cache.Delete(k) or Memo.Invalidate(k) returns, no
// computation of k that started before it writes k: its compare-and-swap
// finds the key changed and drops the value (its callers still get it). A
// computation that outlives its lease and is taken over by another never
// overwrites the newer value either. This is the cache-aside race that a
// plain "compute, then Set" loses: an invalidation after a database write
// undone by a computation that read the database before it.
//
// # Round trips
//
// A hit is one read of one key, with every option, on every store (one
// node of a Cluster). A miss costs the computing process three round trips
// on Redis: the read, the lease (SET NX in a transaction) and the value (a
// script in a transaction). Memcached, which has no scripts, swaps with a
// gets and a cas: four.
//
// # Options
//
// [Options] add negative caching (a not-found answer, an entry flagged so,
// never confused with any value), refresh-ahead (past a fraction of the
// TTL, the value is served while exactly one caller recomputes it: the
// entry goes "value → value and lease → new value"), fail-open (a store
// that is down does not stop the computation), the lease and a compute
// timeout.
//
// [GetOrComputeMulti] loads many keys with one read and one computation of
// the missing ones (aiocache's multi_cached, with partial hits), taking a
// lease per missing key; [Func] turns a func(ctx, K) (V, error) into its
// memoized form with Invalidate and Refresh (aiocache's @cached and
// @cached_stampede).
//
// # Raw caches
//
// A cache made with cache.Options.Raw stores the codec's bytes only, for
// keys that other programs read: it has no room for a lease, and memo
// refuses it with an error matching cache.ErrRaw. Cache.GetOrCompute
// deduplicates within one process on any cache.
//
// # Statistics
//
// memo counts in the cache's Stats: Hits, Misses, Computations,
// NegativeHits, Refreshes, LeaseWaits (calls that waited for another
// computation), FailOpen, Healed (corrupt values recomputed), and
// BackgroundErrors (values that could not be stored, refreshes that
// failed). One counter set, whatever package did the work.
//
// # Migrating from marker keys
//
// Earlier versions kept negative answers and freshness in marker keys
// beside the value ("<key>\x00memo:none", "<key>\x00memo:fresh") and a
// RedLock per miss ("<key>-lock", later "<key>\x00lock"). This version
// neither reads nor writes them: markers left in a store expire with their
// TTLs (or go with the namespace's Clear), and a value written by an
// earlier version is read as a plain, fresh value until it expires.
//
// # Goroutines
//
// Each miss runs its flight in a goroutine, so that it outlives a caller
// that gives up, and each refresh-ahead and bulk computation runs in one
// too. Every step of them is bounded: the wait for another computation by
// ComputeTimeout plus the lease, the computation by ComputeTimeout, each
// store operation by the cache's Timeout (10s when it has none). Those of
// the package-level functions are stopped by nothing else; those of a
// [Memo] are stopped by [Memo.Close], which cancels them and waits for
// them: use Func where work must stop at shutdown.
package memo
