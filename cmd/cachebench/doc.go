// Command cachebench shows what typedcache is for, in one command: several
// instances of a service read a slow "database" through a cache while
// writers update it, and the same workload runs once per way of caching,
// side by side.
//
//	go run ./cmd/cachebench
//
// needs no server: it starts an embedded Redis (miniredis), runs each mode
// for -duration (5s by default; about 25 seconds in all), shows a progress
// bar on standard error and prints a table on standard output.
//
// # The workload
//
// -instances simulated service instances (3), each with its own store
// client (its own go-redis client to the one Redis, or its own memcached
// client), run -goroutines goroutines (8) each. A goroutine picks a key
// from a zipf distribution over -keys keys (1000, exponent -zipf 1.1) and
// reads it through its instance; a fraction -writes of the operations (1%)
// are writes instead: the goroutine updates the key in the database (its
// version goes up by one), then invalidates it through its instance
// (Cache.Delete, Memo.Invalidate) — the cache-aside pattern. The database
// answers a read after -loader-latency (2ms), taking its snapshot halfway,
// and counts the calls per key.
//
// Before the timed phase, the modes with a cache read every key once (a
// warm-up, so that the timed phase measures the steady state), then comes
// a stampede: every goroutine of every instance reads the same cold key at
// the same instant, once for each of 8 keys that nothing else reads.
//
// # The modes
//
//	none        no cache: every read calls the loader
//	cache       Cache.GetOrCompute: one computation per key per process (singleflight)
//	memo        memo.Func (GetOrCompute): one computation per key across all
//	            instances, a lease in the key's entry, no stale sets
//	memo+local  memo over a Cache with Options.Local: a local tier in each
//	            instance, kept coherent by the store's invalidation bus
//
// # Reading the table
//
//	ops/s            operations (reads and writes) per second, all instances together
//	p50, p99         latency of reads
//	loader calls     calls of the database during the timed phase: what the cache saves
//	                 (after the warm-up: the reloads that writes cause)
//	calls/cold key   the most database calls one cold key got in the stampede, when all
//	                 callers asked for it at once: none makes one per caller, cache one
//	                 per instance at most, memo exactly one
//	local, store     hit ratio of each layer, from cache.Stats: local = LocalHits / reads,
//	                 store = hits in the store / reads that reached the store
//	stale reads      reads that returned a version older than one whose write and
//	                 invalidation had been acknowledged before the read started
//	worst            how long after that acknowledgment the stalest of them started
//	bound            how long a mode allows; "-": it claims no bound
//	stale sets       values found in the store older than an acknowledged invalidation
//
// A stale set is the cache-aside race: a computation that read the
// database before a write stores its value after the write's Delete, and
// the old value stays until the next write or its TTL. The cache mode
// (Cache.GetOrCompute) loses that race now and then, and claims no bound;
// memo's leases close it: it promises no stale sets. An audit finds them:
// while the workload runs, a client of its own reads the store (through a
// Cache without a local tier) and checks each value against the
// acknowledged writes. Its check involves no allowance of time: after an
// invalidation removed the key, only a stale set can put an older value
// back.
//
// memo does not promise that reads are never stale: a computation that is
// running when Invalidate returns still hands its value to the reads
// waiting for it, in every instance, and a read that starts meanwhile
// joins them (one flight per key per process), so such reads are stale by
// about a computation's length. memo's reads are held to -max-staleness
// (500ms), far more than that, to catch what would be stale for good. For
// memo+local it is also the local tier's LocalOptions.MaxStaleness, the
// allowance for the bus to deliver an invalidation to the other instances.
// none reads the database, and is held to 0.
//
// # Exit status
//
// cachebench exits 1 when it sees a correctness violation, and says which:
// a memo mode computing a cold key more than once in the stampede, or
// leaving a stale set in the store; a stale read past the bound in a mode
// that claims one (none, memo, memo+local); a read answered with another
// key's record. It exits 2 when it cannot run (bad flags, a server that
// does not answer).
//
// # Servers and output
//
// -redis ADDR, -cluster ADDR,ADDR,... and -memcached ADDR,... run the
// workload on real servers instead. memcached has no invalidation bus: with
// -redis besides -memcached, the local tier of memo+local uses the Redis
// store's bus; without it, memo+local is skipped. A store without a bus at
// all runs memo+local with its local tier off, and says so. -out DIR writes
// summary.md (the table and its notes) and SVG charts of throughput,
// latency and loader calls. -modes runs only some of the modes. -quiet
// drops the progress bar.
package main
