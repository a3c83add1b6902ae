// Package redisstore is a cache.Store over a go-redis v9 client
// (redis.UniversalClient): a single server (*redis.Client, also as built
// by redis.NewFailoverClient), a Redis Cluster (*redis.ClusterClient) or a
// client-sharded *redis.Ring.
//
//	rdb := redis.NewClient(&redis.Options{
//		Addr:                  "127.0.0.1:6379",
//		ContextTimeoutEnabled: true, // see Timeouts
//	})
//	defer rdb.Close()
//	store := redisstore.New(rdb, nil)
//	defer store.Close()
//	users := cache.New[int, User](store, &cache.Options[int, User]{
//		Namespace: "users",
//		Timeout:   300 * time.Millisecond,
//	})
//
// Keys and values are binary-safe in Redis and are stored as they are.
// TTLs have millisecond resolution; a positive ttl is rounded up to whole
// milliseconds, so it never becomes "no expiry".
//
// # Timeouts
//
// Create the client with ContextTimeoutEnabled: true (a field of
// redis.Options, redis.ClusterOptions, redis.RingOptions and
// redis.FailoverOptions alike). Only then does go-redis apply a context's
// deadline to its reads and writes, so that the Cache's Timeout
// (cache.Options.Timeout) and the deadlines of your contexts bound each
// call. Without it, go-redis ignores those deadlines on the socket: a call
// to a server that accepts connections but never answers lasts until the
// client's own ReadTimeout, WriteTimeout or DialTimeout ends it, seconds
// with the defaults, whatever the Cache's Timeout (the error still matches
// context.DeadlineExceeded, but late).
//
// A context cancelled without a deadline is seen before each command is
// sent and after it returns, but go-redis does not abandon a command
// already waiting for its reply: such a call still lasts until the reply or
// the client's ReadTimeout (5s by default in go-redis v9). Give contexts a deadline, or
// the Cache a Timeout, to bound every call (the lock and memo packages
// apply the Cache's Timeout to each of their store calls).
//
// Watch and Subscribe wait for their subscription within their context's
// deadline too; but while the store's pub/sub connection is being
// re-established after a failure, they may also wait for that attempt,
// which the client's DialTimeout and ReadTimeout bound.
//
// # Writes and lost replies
//
// go-redis sends a command again when the connection fails before the
// reply came (MaxRetries, 3 by default; a Cluster client also retries, on
// the same node and then another). For a write whose reply was lost after
// the server applied it, that applies it twice: an Increment counts twice,
// an Add reports that its own value exists, a compare-and-swap reports a
// conflict with its own write, a Set lands again after another client's
// later write.
//
// The store therefore sends every write as a transaction, MULTI ... EXEC,
// with go-redis's default options as with any others: go-redis sends a
// transaction again only when writing it failed, and a transaction whose
// EXEC never reached the server is discarded with the connection. A write
// whose reply is lost is applied at most once, and returns an error
// matching cache.ErrUncertain: the server may or may not have applied it.
// Packages built on the Cache read the key back where their value can
// tell (lock recognises its own token). Reads are plain commands, which
// go-redis may send again harmlessly.
//
// A multi-key write (SetMulti, Delete of several keys) is one transaction
// on a single server and one per shard on a Ring. On a Cluster a
// transaction cannot span hash slots, so it is one transaction per master
// running a Lua script (scripts/batch.lua, flagged allow-cross-slot-keys)
// over the master's keys: still one round trip per master. Servers older
// than Redis 7 refuse the flag; the store then sends one transaction per
// hash slot, concurrently.
//
// A transaction costs the server two more commands (MULTI and EXEC) and the
// client about three times the allocations of a plain SET (23 against 8),
// on the same single round trip.
//
// # Atomic operations
//
// Add is SET NX, Increment is INCRBY. CompareAndSwap, SwapIfEqual (which
// also publishes the key's wake-up), DeleteIfEqual, ExtendIfEqual,
// AddFenced and Expire with no TTL (persist.lua, which keeps a key that
// has none) are Lua scripts (embedded .lua files, run with EVALSHA, and
// EVAL when the server does not know them yet), each in a transaction. Redis keeps no
// version of a key, so the token of Gets is the value that was read, and
// CompareAndSwap compares values: a key changed from A to B and back to A
// since Gets is not a conflict.
//
// # Fencing tokens
//
// AddFenced takes its fencing token from a hybrid logical clock: the token
// is the greater of the key's fencing counter plus one and the server's
// time in microseconds (TIME, read in the script), and the counter is set
// to it. Tokens are therefore large numbers (the Unix time in
// microseconds, about 1.8e15), not 1, 2, 3. The counter is stored under a
// name that starts with the key and lies in the same Cluster slot (key +
// ":fence" when the key has a hash tag, key + ":fence:" and five hex
// digits otherwise), without expiry, so on a Cluster it moves with the
// key's slot.
//
// Each token of a key is greater than every token AddFenced returned
// before for that key, under these conditions:
//
//   - While the server keeps the counter, always: the counter only grows,
//     whatever the server's clock does.
//   - When the counter is lost — evicted (maxmemory-policy allkeys-*; the
//     volatile-* policies leave it, it has no ttl), removed by Clear, or
//     lost in a restart without persistence (or with persistence that had
//     not written it yet) — the next token is the server's time, which is
//     greater than every earlier token as long as the server's clock has
//     moved forward past them: it must not have been set back, and tokens
//     run ahead of the clock only while they are taken faster than one per
//     microsecond.
//   - After a failover to a replica that had not received the last tokens
//     (Redis replicates asynchronously), the new master's tokens are
//     greater as long as its clock is not behind the old master's by more
//     than the time the failover took (with Sentinel or Cluster failover,
//     seconds: the time to detect the failure and promote). Keep the
//     servers' clocks synchronised (NTP). The store does not wait for
//     replicas (WAIT) after AddFenced: see docs/operations.md.
//   - On a Ring the counter is on the shard that owns the key at the time:
//     when the Ring's shards change (one is added, removed, goes down or
//     comes back) the key may move to a shard whose counter is behind, and
//     the same holds as after a failover, between the two shards' clocks
//     and the time since the last token of the key.
//
// # Check
//
// [Store.Check] (cache.Checker) reports the server and client settings
// under which the store cannot keep its guarantees: an eviction policy
// that can evict a held lock or lease, a client without
// ContextTimeoutEnabled, a Cluster client that reads from replicas. It
// reads them with CONFIG GET on every server; where CONFIG is refused, it
// says so with an error that is no finding.
//
// # Pub/sub: release notifications and the Bus
//
// [Store] implements cache.Notifier, cache.Bus, cache.Fencer and
// cache.Checker. DeleteIfEqual and SwapIfEqual publish on the pub/sub
// channel of the key, [DefaultChannelPrefix] + key (see
// Options.ChannelPrefix), in the same script that writes the key, and
// [Store.Watch] subscribes to it. [Store.Publish] and [Store.Subscribe]
// carry the local tier's invalidations (cache.Bus): PUBLISH and SUBSCRIBE,
// except on a Cluster, where they are SPUBLISH and SSUBSCRIBE (sharded
// pub/sub, Redis 7): a message then travels within the shard that serves
// the channel's hash slot instead of to every node.
//
// One subscriber per store serves both: one go-redis PubSub, its
// connection, and one goroutine that reads it and dispatches each message
// to the watchers and subscriptions of its channel. A channel is
// subscribed while it has at least one watch or subscription. On a Ring
// there is one subscriber per shard, since a Ring publishes on the shard
// of the key (of the channel name, for Publish). On a Cluster, Watch's
// subscriber is classic and may be connected to any node (a script's
// PUBLISH reaches every node); the Bus has one sharded subscriber per hash
// slot of its channels (usually one channel, so one), which go-redis
// connects to the node serving the slot. Each subscriber dials on its
// first subscription, and Close stops them all.
//
// What guarantees what:
//
//   - In place: Watch and Subscribe return once the reply of the server to
//     the SUBSCRIBE has been read (or, for a channel already subscribed,
//     an earlier one, with the channel subscribed since). Redis answers
//     in order on a connection and delivers a message to the
//     subscriptions in place when it processes the PUBLISH, so a message
//     published after that reply is delivered while the connection lasts.
//     No other round trip is needed. (A reply to an older SUBSCRIBE of the
//     channel, sent before a stop's UNSUBSCRIBE of it, may come first; the
//     reply to that UNSUBSCRIBE, which follows, then counts as an
//     interruption, as below, until the reply to the new SUBSCRIBE.)
//   - Failures: go-redis replaces a connection on which a read or a write
//     failed: it dials again and resubscribes every channel before any
//     other command. The store learns of the failure from the failed read
//     (or from a failed SUBSCRIBE or UNSUBSCRIBE of its own, which it
//     follows with a reconnection of its own, so that a resubscription
//     always follows). It then wakes every watcher and calls state(false)
//     for every subscription; the server's reply to the resubscription of
//     a channel then wakes its watchers again and calls state(true),
//     before any message published since is delivered. Messages published
//     between the two are lost: only state(false) says so, and a local
//     tier must not trust what it cached meanwhile.
//   - Silent connections: go-redis's own health check (that of
//     PubSub.Channel) replaces a connection only when its PING cannot be
//     written, so a connection that stays open and silent (a dead peer, a
//     network that drops everything) would never be noticed. The store
//     reads with deadlines instead: after Options.HealthCheckInterval of
//     silence it sends a PING, and when the next interval brings no
//     reply, the end of the read's deadline makes go-redis replace the
//     connection as after any failure. A silent connection is noticed
//     within two intervals.
//   - Moved slots: a Cluster node that stops serving a slot (resharding,
//     a failover) ends the sharded subscriptions of its channels
//     (SUNSUBSCRIBE). The subscriptions get state(false); a channel that
//     stays unsubscribed for two intervals makes the store reload the
//     slot map and reconnect, which subscribes it on the node that serves
//     it now, with state(true).
//
// Wake-ups may therefore be spurious, and expiries are not reported. On a
// Ring a watch or a subscription listens on the shard of its key or
// channel when it starts: if the Ring moves it to another shard (a shard
// goes down or comes back), releases and messages go there and are missed,
// and only the shard's own failure, if it failed, is reported. The lock
// package re-reads the lock key at least every Options.MaxBackoff while it
// waits, so a missed wake-up costs it that much latency, never a hang.
//
// # Multi-key operations and Clear
//
// On a single server, GetMulti is one MGET, and SetMulti and Delete of
// several keys are one transaction each (the SETs, or one UNLINK, between
// MULTI and EXEC). On a Cluster (detected by the client's type), keys of
// one command must share a slot: GetMulti is a pipeline of GETs, which
// go-redis splits into one pipeline per master, sent concurrently, and
// SetMulti and Delete are one transaction per master running
// scripts/batch.lua (see "Lost replies" above): one round trip per master,
// and no CROSSSLOT error. A Ring is handled per shard.
//
// Clear with a prefix runs SCAN MATCH (the prefix's glob characters
// escaped) and UNLINK in batches, and scans again until a pass finds
// nothing left; on a Cluster on every master, on a Ring on every shard.
// Clear("") runs FLUSHDB (on every master of a Cluster, on every shard of a
// Ring): it empties the database, keys of other programs included.
//
// A client of another type (a UniversalClient of your own, wrapping one of
// go-redis's) is treated like a Cluster by the multi-key operations, which
// is correct for every kind of client; but Clear, with any prefix, returns
// an error matching cache.ErrUnsupported and deletes nothing, since one SCAN
// or FLUSHDB through such a client may reach only one of its servers. Pass
// the *redis.Client, *redis.ClusterClient or *redis.Ring itself to New to
// use Clear.
//
// # Goroutines and closing
//
// The store runs one goroutine per subscriber (see above), started with
// its first subscription. Close stops the subscribers' connections and
// goroutines, wakes every watcher and calls state(false) for every bus
// subscription in place. It never closes the client passed to New, which
// the caller closes when done.
package redisstore
