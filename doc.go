// Package typedcache is a typed read-through cache for Go services, with
// locking built in. This package holds only documentation; the code is in
// its subpackages:
//
//   - cache: Cache[K,V], the typed cache users hold, and Store, the contract
//     backends implement; cache/cachetest is the Store conformance suite.
//   - codec: how values become bytes (MessagePack, JSON, strings, bytes,
//     decimal numbers).
//   - backends/memstore, backends/redisstore, backends/memcachestore: the
//     stores, in-process, Redis (single node and Cluster) and Memcached.
//   - lock: RedLock (a lease lock whose waiters wake on release, in every
//     process) and OptimisticLock (compare-and-swap of a typed value).
//   - memo: GetOrCompute and friends, read-through loading with one
//     computation per key across goroutines and processes.
//
// It is a Go port of the Python library aiocache (its Cache, serializers,
// RedLock, OptimisticLock and cached_stampede), with aiocache's known flaws
// fixed; each package's documentation lists where it differs.
package typedcache
