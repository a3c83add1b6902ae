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
// undone by a computation that read the database before it. Calls through
// the Cache (or its views) that deleted, invalidated or cleared the key
// after it returns start a computation of their own rather than join the
// one that started before it; in other processes, a call that joins a
// computation already running there still gets its value (stale by at
// most that computation's length).
//
// # Round trips
//
// A hit is one read of one key on every store (one node of a Cluster),
// with negative caching, refresh-ahead, fail-safe, the timeouts and jitter
// on. A miss costs the computing process three round trips on Redis: the
// read, the lease (SET NX in a transaction) and the value (a script in a
// transaction). Memcached, which has no scripts, swaps the lease for the
// value with a gets and a cas.
//
// # Options
//
// [Options] add negative caching (a not-found answer, an entry flagged so,
// never confused with any value), refresh-ahead (past a fraction of the
// TTL, the value is served while exactly one caller recomputes it: the
// entry goes "value → value and lease → new value"), fail-open (a store
// that is down does not stop the computation), the lease and a compute
// timeout, and what the next section describes: fail-safe, soft and hard
// timeouts, and TTL jitter.
//
// [GetOrComputeMulti] loads many keys with one read and one computation of
// the missing ones (aiocache's multi_cached, with partial hits), taking a
// lease per missing key; [Func] turns a func(ctx, K) (V, error) into its
// memoized form with Invalidate and Refresh (aiocache's @cached and
// @cached_stampede).
//
// # Resilience
//
// Fail-safe: with [Options].FailSafeMax, a value stays in the store for
// FailSafeMax past its TTL. Its entry records its logical expiry (in
// milliseconds, on every store), and the store keeps it for the TTL plus
// FailSafeMax. Past the TTL a plain Cache.Get sees a miss, and memo
// recomputes the value; when that computation fails (an error, a panic,
// ComputeTimeout, or with FailOpen the store and then the computation),
// its callers get the stale value and a nil error (Stats.StaleServed
// counts one per caller answered so; a recomputation that fails after its
// callers went away, past SoftTimeout, serves nobody), and the stale value is stored fresh again for
// FailSafeThrottle, so that a failing source is asked once per throttle,
// not on every call. A refresh of a value still fresh (refresh-ahead,
// Memo.Refresh) that fails serves nothing stale: the value is left as
// fresh as it was, and the failure is the refresh's (counted in
// Stats.BackgroundErrors, or Memo.Refresh's error). ErrNotFound is an
// answer, not a failure: it is returned (and cached with NegativeTTL), and
// the value it answers for, stale or refreshed, is dropped. Bulk loads do
// the same, key by key.
//
// Timeouts: SoftTimeout bounds how long a caller that has a stale value
// waits for its recomputation (past it, the stale value); HardTimeout, how
// long any caller waits (past it, an error matching
// context.DeadlineExceeded). Either way the computation goes on in the
// background, bounded by ComputeTimeout, and stores its value under its
// lease for the next callers. They bound single-key calls (GetOrCompute,
// Memo.Get); the callers of a bulk load wait for its computation until
// their own contexts end.
//
// Lease renewal: while a computation runs, a watchdog writes its lease
// again every third of Options.Lease (a swap from the lease entry it
// wrote, so that nothing else is overwritten): a computation may run
// longer than its lease and keep the key. When the lease is gone (the key
// was Set, deleted or invalidated, or another caller took it over after
// the lease ran out) or the store fails until less than a sixth of the
// lease is left, the watchdog ends the computation's context with the
// cause [ErrLeaseLost]: a computation that watches its context can stop,
// and what it returns is not stored. A bulk computation's leases are
// renewed the same way, each on its own: a key whose lease is lost is not
// written, and the batch goes on for the others (its context does not
// end: one computation serves all its keys).
//
// The computation decides: [CallFrom] returns the [Call] of the
// computation whose context it is given. [Call.SetTTL] chooses the value's
// TTL (instead of Options.TTL, and without Jitter); [Call.DontCache]
// returns the value to its callers without storing it (the lease is given
// up, so the next call computes again). [Stale] returns the value the
// computation replaces, in a refresh-ahead or a fail-safe recomputation,
// for a conditional refresh: a computation that returns it unchanged
// stores it fresh again. To answer "not found", a computation returns
// [ErrNotFound]. The computations of GetOrCompute, Memo.Get and
// Memo.Refresh carry a Call; a bulk computation's context carries none,
// and the Call CallFrom returns there decides nothing.
//
// Jitter: Options.Jitter takes a random part, up to that fraction, off the
// TTL of every value memo writes (by single-key and bulk loads alike), so
// that values computed together do not expire together. A TTL chosen with
// SetTTL, NegativeTTL and FailSafeThrottle are kept as they are.
//
// Batch loaders: [FuncBatch] memoizes a func(ctx, []K) (map[K]V, error).
// Memo.GetMulti calls it once for all the keys it misses, with a lease per
// key, so that each key is computed once across goroutines and processes
// (a key whose lease another caller holds is waited for, not asked for
// again); Memo.Get calls it with one key. A key it does not return does not
// exist; a [KeyErrors] fails some keys only.
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
// computation), FailOpen, Healed (corrupt values recomputed), StaleServed
// (stale values served by fail-safe or past SoftTimeout), and
// BackgroundErrors (values that could not be stored, refreshes that
// failed, leases that could not be renewed). One counter set, whatever
// package did the work.
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
// that gives up (or one that SoftTimeout or HardTimeout let go), and each
// refresh-ahead and bulk computation runs in one too; a single-key
// computation has its lease's watchdog beside it, which ends with it.
// Every step of them is bounded: the wait for another computation by
// ComputeTimeout plus the lease, the computation by ComputeTimeout, each
// store operation by the cache's Timeout (10s when it has none). Those of
// the package-level functions are stopped by nothing else; those of a
// [Memo] are stopped by [Memo.Close], which cancels them and waits for
// them: use Func where work must stop at shutdown.
package memo
