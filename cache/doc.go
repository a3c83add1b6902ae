// Package cache is the typed cache of typedcache: [Cache] over a [Store].
//
// A [Cache] is what users hold. It builds keys (an optional namespace, then
// a key function), encodes and decodes values with a codec.Codec, applies
// the default TTL and the per-operation timeout, validates input, wraps
// errors with the operation and the key, and counts statistics:
//
//	store, _ := memstore.New(nil)
//	users := cache.New[int, User](store, &cache.Options[int, User]{
//		Namespace: "users",
//		TTL:       10 * time.Minute,
//	})
//	users.Set(ctx, 42, User{Name: "Ada"})        // key "users:42", msgpack
//	u, found, err := users.Get(ctx, 42)
//
// A [Store] is what a backend implements: bytes in, bytes out, keys already
// built, every operation that needs atomicity a primitive of the store (as
// database/sql/driver is to database/sql). The stores of this module are
// backends/memstore (in-process), backends/redisstore (Redis, single node
// or Cluster) and backends/memcachestore (Memcached); package cachetest is
// the conformance suite any Store, ours or yours, runs.
//
// # Reads and misses
//
// Get returns (value, found, err): a miss is found == false with a nil
// error; err is set only for failures. A cached zero value (0, "", nil) is
// a hit. A stored value that does not decode is an error wrapping
// codec.ErrDecode, and the bytes stay in the store.
//
// # Writes and TTLs
//
// Writes (Set, SetMulti, Add, CompareAndSwap, GetOrCompute) expire after the
// cache's TTL (Options.TTL, 0 = never). A view made with [Cache.WithTTL]
// writes with another TTL, or none: c.WithTTL(0).Set(...) never expires.
// Increment is the exception: a counter it creates has no expiry and one it
// changes keeps its own, as Redis's INCRBY does, so that a counter's window
// is set once (with Expire) and not pushed back by every increment.
//
// # Namespaces
//
// Namespace "users" stores key 42 as "users:42", and Clear deletes exactly
// the keys that start with "users:". Namespaces must not nest: the keys of
// a cache with namespace "app:users" start with "app:", so they are keys of
// a cache with namespace "app" too, which reads them and whose Clear
// deletes them. Give sibling caches sibling namespaces ("app-users",
// "app-orders", or "app:users" and "app:orders" with no cache on "app").
//
// # Errors
//
// Every error is an [*OpError] ("cache: get users:42: <cause>"), or, from
// GetMulti when several values fail to decode, the [errors.Join] of one
// *OpError per key; either is matched with errors.Is against the sentinels [ErrNotFound],
// [ErrExists], [ErrConflict], [ErrNotInteger], [ErrUnsupported],
// [ErrInvalidKey], [ErrInvalidTTL], [ErrClosed], [ErrUncertain],
// [ErrTooLarge], [ErrRaw], codec.ErrDecode, or the context's errors.
//
// # Entries
//
// A value that carries metadata is stored as an entry: a 28-byte versioned
// header (36 with a lease), then the codec's bytes. The header starts with
// the byte 0xC1 ([EntryMagic]), which no MessagePack output, UTF-8 text or
// decimal number starts with, then holds a version, flags (value, not
// found, lease, compressed), the time of writing, a logical expiry, a
// random id (or a lease's token) and, with a lease, its end. Package memo
// keeps everything it needs about a key in its entry: its lease while a
// computation runs, a cached "not found", the time of writing for
// refresh-ahead. No second key, so a hit is one read on every store.
//
// Plain writes stay plain: Set, SetMulti and Add store the codec's bytes as
// they are, so that Increment, redis-cli and programs in other languages
// read them. Only bytes that themselves start with 0xC1 (a []byte value)
// are written as an entry. CompareAndSwap writes an entry with a fresh id,
// so that a write whose reply was lost can be recognised. Every read
// understands both: bytes that do not start with 0xC1 are a plain, fresh
// value; an entry with only a lease, a "not found", or a value past its
// logical expiry is a miss to Get, GetMulti and Gets. [Options].Raw turns
// entries off for caches whose keys other programs must always read as
// plain codec bytes; memo then refuses the cache ([ErrRaw]).
//
// # Computing on a miss
//
// [Cache.GetOrCompute] computes a missing value once per key in the
// process (singleflight) on a context detached from its callers. Package
// memo does the same across processes, with a lease in the key's entry.
//
// # The local tier
//
// [Options].Local keeps a bounded tier of decoded values in the process,
// in front of the store (see [LocalOptions]): a hit there is a map lookup,
// with no round trip and no decoding. What it guarantees:
//
//   - A write through a Cache with a local tier (Set, SetMulti, Add,
//     Delete, Expire, Increment, CompareAndSwap and so lock.Update, Clear,
//     and memo's writes through the Door) drops the key from every other
//     Cache's local tier within the bus's delivery: it publishes an
//     invalidation on the store's [Bus] (Redis pub/sub, sharded on a
//     Cluster; in-process for memory) or on [LocalOptions].Bus (a Redis
//     store's for Memcached). On Redis over loopback, a Get in another
//     process returns the new value about half a millisecond after the
//     write starts (p50 under 1ms, p99 a few ms on loopback: BenchmarkInvalidationLatency). The
//     writer keeps its own copy of what it wrote. Views made with WithTTL
//     share their parent's tier.
//   - A read that raced with an invalidation of its key may return the
//     value it read to its caller, but does not keep it: the next read
//     goes to the store. The same holds for the writer's own copy when
//     another write of the key was invalidated during its write.
//   - While the bus is disconnected, local values are served at most
//     MaxStaleness after the tier learns of it (a Redis store learns of a
//     broken or silent connection within two health check intervals; see
//     redisstore.Options.HealthCheckInterval), then every read goes to
//     the store until the bus is back. When it is, the tier starts empty:
//     nothing read before the outage is served after it. A tier serves
//     nothing until its subscription is in place.
//   - A write whose invalidation could not be published (the bus is
//     down) returns an error matching [ErrNotInvalidated] (the Timeout
//     bounds the publication as it bounds store calls): other Caches may
//     serve the old value until their local TTL.
//   - Without a bus (a store without one, and no LocalOptions.Bus), the
//     local TTL is the only bound on how long another process's write
//     goes unseen.
//   - Values in the tier are shared between the callers that read them:
//     treat them as read-only, or set LocalOptions.Clone to give each
//     caller a copy. An entry holding only a lease (a computation under
//     way) or a cached "not found" is never kept locally, and a value is
//     not kept past its logical expiry (memo's fail-safe).
//
// What it does not guarantee:
//
//   - Writes by programs that do not publish (redis-cli, programs in
//     other languages, and Caches without a local tier, which publish
//     nothing) are not seen by a local tier until its TTL
//     (LocalOptions.TTL, one minute by default, never longer than
//     Options.TTL when it is set). Give every Cache that writes keys
//     others keep locally a local tier of its own.
//   - The store's expiry of a key is not seen either: a copy read by
//     another process is kept for the local TTL, even if the key expires
//     in the store before (a shorter TTL set by Expire or a WithTTL view
//     than Options.TTL).
//   - Invalidations go to the Caches of one namespace only (the channel
//     is "typedcache:inv:" and the namespace, or LocalOptions.Channel):
//     Caches that share keys must share the channel.
//
// The tier's goroutines (its subscription, retried with backoff until it
// is in place; otter's maintenance; a millisecond clock) are stopped by
// [Cache.Close].
//
// # The Door
//
// Packages built on the Cache (lock, memo, and yours) reach the store
// through [Cache.Door]: store keys checked as every operation checks them,
// records beside a value's key that no user key can name (a lock's token),
// entries (Load, Add, Swap, Remove, Watch), every store call bounded by the
// Cache's Timeout, counts in the Cache's Stats, and the fallbacks for
// stores without an optional capability ([Leaser], [Fencer], [Notifier],
// [Swapper]) in one place.
//
// # Lost replies
//
// A write whose reply was lost (the connection failed after the command
// was sent) returns an error matching [ErrUncertain]: it may or may not
// have been applied, and no store applies it twice. CompareAndSwap reads
// the key back and recognises its own entry; lock recognises its own
// token.
//
// # Where this differs from aiocache
//
//   - A cached nil or zero value is a hit (aiocache: a cached None reads as
//     a miss).
//   - Clear on a namespaced cache deletes the namespace's keys and never any
//     other key.
//   - Increment then Get of one key works: integers are stored as decimal
//     text by both (aiocache #482).
package cache
