// Package lock provides locks kept in a typedcache store, so that they work
// across goroutines and across processes that share the store: a lease lock,
// [RedLock], and compare-and-swap of a typed value, [OptimisticLock] with its
// retry loop [Update].
//
// Both are written against *cache.Cache[K,V], whatever its store: memory,
// Redis (single node or Cluster) or Memcached. They reach the store through
// the Cache's Door: every store call is bounded by the Cache's Timeout, and
// errors have one shape, "lock: <op> <key>: <cause>".
//
// # RedLock
//
// A [RedLock] sets the lock key (the cache key of the protected key, the
// reserved NUL byte, then "lock": no key of any Cache can read, write or
// delete it) only if it is absent, to a fresh random token, with a lease;
// only the holder of the token releases or extends it, atomically, on every
// store. [RedLock.Acquire] waits until the lock is held or its context ends;
// [RedLock.TryAcquire] does not wait; [RedLock.AcquireOrWait] is the bounded
// wait that memo uses: if the lock is busy, wait at most the lease for the
// holder to finish, then go on without the lock.
//
// Waiters wake when the holder releases: in the process at once, in other
// processes through the store's notification (Redis pub/sub, see
// cache.Notifier), and on stores without one (Memcached) by polling with
// jittered backoff, capped by the holder's remaining lease where the store
// reports it and otherwise (Memcached) by the waiter's own lease. An
// uncontended acquisition is one store call: the watch for a release starts
// only when the lock is busy.
//
// A lock on a bare name needs no value type: keep one
// cache.Cache[string, struct{}] for a service's locks (its namespace, its
// Timeout) and make each lock from it.
//
// # Lost replies
//
// A store call whose reply is lost (cache.ErrUncertain: the connection
// failed after the command was sent) may have been applied. RedLock reads
// the lock key back and recognises its own token: an acquisition that
// landed holds the lock, a release that landed released it, an extension
// that landed extended it; an acquisition it cannot settle deletes its
// token. Redis writes are never applied twice by the client (see
// redisstore). A lost reply is therefore never a lost lock, nor a false
// report of an overlap.
//
// RedLock is an efficiency lock: it stops duplicate work. It is not a
// correctness lock: a holder can stall past its lease, and a Redis failover
// can lose the lock key and grant the lock twice. When correctness depends
// on mutual exclusion, make the lock with [Options].Fencing, pass the
// fencing token of [RedLock.Fence] (a number greater than that of every
// earlier acquisition, on Redis and memory stores, under the conditions
// their documentation states) to the protected resource and have it
// reject a token smaller than one it has seen.
//
// [Update] applies its function's result at most once. When the reply of
// its compare-and-swap is lost, the Cache reads the key back: the entry it
// wrote carries a random id, so a write that landed is recognised and
// Update returns nil; one it cannot settle (the read fails too) is
// returned as an error matching cache.ErrUncertain rather than applying
// the function again.
//
// # OptimisticLock and Update
//
// [NewOptimisticLock] reads a typed value with the store's CAS token;
// [OptimisticLock.CAS] writes a new value only if nobody changed the key
// since, else it fails with [ErrConflict]. [Update] is the read-modify-write
// loop over it, with bounded attempts and jittered backoff.
//
// # Where this differs from aiocache
//
//   - RedLock waiters in other processes really wait and wake on release
//     (aiocache: only waiters in the same process wait; others proceed at
//     once).
//   - A wake-up belongs to one release: a previous holder cannot consume the
//     wake-up meant for the waiters of the next (aiocache #979).
//   - Release and CAS are atomic on every store, Memcached included (aiocache's
//     Memcached release deletes any holder's lock).
//   - An OptimisticLock on a key that was absent does not overwrite a value
//     created meanwhile: that is a conflict (aiocache: a lost update).
package lock
