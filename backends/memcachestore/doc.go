// Package memcachestore is the [cache.Store] over memcached, through the
// client [github.com/bradfitz/gomemcache/memcache]. One client may spread
// keys over several servers; the store works the same over one or many.
//
//	addrs := []string{"10.0.0.1:11211", "10.0.0.2:11211"}
//	client := memcache.New(addrs...)
//	client.MaxIdleConns = 64 // see "Batches and connections" below
//	store := memcachestore.New(client, &memcachestore.Options{Servers: addrs})
//	users := cache.New[int, User](store, &cache.Options[int, User]{Namespace: "users"})
//	if err := users.Check(ctx); err != nil {
//		log.Printf("memcached: %v", err) // see "Checking the servers" below
//	}
//
// The client stays the caller's: [Store.Close] only marks the store closed
// (later operations return [cache.ErrClosed]) and never closes the client.
// The store starts no goroutine of its own that outlives a call, except as
// described under "Contexts".
//
// # Keys
//
// memcached takes keys of at most 250 bytes without spaces or control
// characters; cache keys are any strings. A key that is 1 to 250 bytes long,
// has no byte below 0x21 and no 0x7f, and does not contain "~#" is sent as
// it is. Any other key is sent as
//
//	readable + "~#" + base64url(SHA-256(key))
//
// where readable is the start of the key, every forbidden byte replaced by
// '_', cut (at a UTF-8 boundary) so that the whole fits in 250 bytes. No
// encoded key equals a key sent as it is (only encoded keys contain "~#"),
// and two encoded keys are equal only if the SHA-256 of the original keys
// are. So every key string works and no key can inject a protocol command.
//
// # Expiry
//
// memcached expires items at whole seconds. A ttl is rounded up to whole
// seconds, so that a ttl of 1ms never becomes 0, which memcached reads as
// "never expires", and one second is added: memcached's clock ticks once a
// second, so an item stored for n seconds lives between n-1 and n, and one
// stored for n+1 lives at least the n asked. A key never expires before its
// ttl has passed (a lock's lease relies on it) and is gone within two
// seconds after, give or take the write's network delay
// (TestRewriteExpiryBound checks both on a real server). A
// ttl of more than 30 days is sent as an absolute Unix time (now + ttl), as
// memcached reads any larger number as one; memcached cannot express a time
// past January 2038, and a later expiry is cut to it. A ttl of 0 is no
// expiry.
//
// One exception to "never early" lies in memcached itself: its clock is a
// timer re-armed for one second after each tick, so its ticks drift later
// (by about a millisecond a tick on a busy host) and, each time the drift
// crosses a second, the clock advances two seconds at once. A key whose life
// spans that step is dropped up to a second early. No relative exptime
// avoids it while keeping the two-second bound above.
//
// memcached cannot report the remaining ttl of a key: [Store.TTL] returns
// [cache.ErrUnsupported]. To keep a key's ttl when Increment rewrites its
// value, the store records every item's absolute expiry in the item's 32-bit
// flags, which memcached stores and returns but does not interpret: the tag
// 0b110 in the top three bits, and the expiry in 1/128 s, modulo 2^29 (a
// period of 48 days, read as the time within a day before the reader's
// clock and 47 days after); for ttls longer than 46 days, the tag 0b101 and
// the expiry in seconds since 2025; 0 for no expiry. A rewrite sends the
// remaining time from that stamp, rounded up, plus one second, as read on
// the rewriting client's clock, so a rewritten key too stays past its
// expiry and goes less than two seconds after it (whole-second stamps
// could keep it three). Clients whose clocks disagree by a few seconds keep
// the ttl to within those seconds. An Increment that finds a key whose stamp
// has passed, which memcached keeps until its next tick, treats it as
// missing: the key becomes delta, without expiry. Flags written by other
// clients (neither tag, or the 0b101 tag dating more than a day in the
// past, which no live item has) are kept as they are by every rewrite, and
// their expiry is unknown to it: Increment of such a key leaves it without
// expiry. For the stamp to stay true, [Store.Expire] is a read and a cas
// that rewrites the value with the new ttl rather than memcached's touch:
// it changes the item's CAS unique, so a token read before an Expire
// conflicts after it.
//
// The stamp is the reason not to share keys with clients that interpret
// flags themselves (pymemcache, php-memcached and spymemcached keep their
// serializer's type there): such a client would misread a value this store
// wrote with an expiry. Keep such keys apart, under a namespace of their
// own; flags those clients write are kept as they are (see above).
//
// # Compare-and-swap
//
// [Store.Gets] is memcached's gets; its token holds the item's CAS unique.
// A memcached started with -C (no CAS) hands out no uniques: Gets and every
// operation built on cas return an error matching [cache.ErrUnsupported]
// instead of retrying for ever. memcached numbers uniques afresh when it
// restarts, so a token read before a restart may match an item written
// after it.
// [Store.CompareAndSwap] is memcached's cas with that unique (any write of
// the key since the read, even of the same value, makes it fail), or add
// for the absent token; a conflict, and a key that vanished, give
// [cache.ErrConflict].
//
// DeleteIfEqual, ExtendIfEqual, Expire and Increment are a gets followed by
// a cas carrying the unique just read, retried from the read when the cas
// loses a race: each takes effect atomically at its cas. DeleteIfEqual
// compares the value, then deletes with a cas that stores an empty item
// already expired (exptime -1), since memcached's text protocol has no
// conditional delete.
//
// # Increment
//
// Increment keeps the same signed 64-bit semantics as the other stores.
// memcached's incr and decr are unsigned, clamp at 0, wrap around at 2^64,
// pad a shortened value with trailing spaces and accept text such as " 5",
// so the store does not use them: it reads the value, parses it as Redis's
// INCRBY does (canonical decimal text only: not "+5", "05" or "-0"), adds
// with an overflow check (an overflow, or a value that is not an integer,
// gives [cache.ErrNotInteger] and changes nothing) and writes the decimal result with a cas that keeps the key's
// expiry, retrying on a lost race. A missing key is created with add,
// holding delta, without expiry. That is two round trips per Increment, and
// more under contention on the key.
//
// # Item size limit
//
// memcached refuses an item larger than its item size limit (its -I
// setting, 1 MiB by default, item_size_max in "stats settings"), and when
// it refuses a set it also drops the key's old value. So the store checks
// the size before it sends a write: an item counts its memcached key (see
// "Keys"), its value and [ItemOverhead], 67 bytes (memcached 1.6's item
// header, CAS unique, key terminator, flags and value terminator), against
// [Options.MaxItemSize], [DefaultMaxItemSize] (1 MiB) unless set. Every
// write that would exceed it (Set, SetMulti, Add, CompareAndSwap, and the
// rewrites of Expire, ExtendIfEqual and Increment) fails with an error
// matching [cache.ErrTooLarge] without being sent, and the key keeps its
// old value. [Store.SetMulti] checks every item first and writes none of
// them when one is too large. The check is exact to within 8 bytes: memcached
// stores values up to 8 bytes longer than the store lets through (the 4
// bytes of flags an item without expiry does not need, and 4 that only a
// build with large client flags takes), never shorter ones.
//
// Set Options.MaxItemSize to the servers' -I (the smallest, if they
// differ). The store does not learn it from the servers: the check before
// every write would then hang on state that a server restart changes, and
// gomemcache tells neither its servers nor which one holds a key.
// [Store.Check] reports a server whose limit is below the option. When a
// server refuses an item all the same, its reply ("SERVER_ERROR object too
// large for cache") matches [cache.ErrTooLarge] too; after a refused set,
// the key has lost its old value (after a refused add or cas it has not).
//
// # Checking the servers
//
// [Store.Check] (the [cache.Checker] that [cache.Cache.Check] calls) reads
// "stats settings" from every server in [Options.Servers], over a
// connection of its own bounded by ctx and the client's Timeout, and
// reports one [*cache.SettingError] for each of:
//
//   - evictions on, memcached's default: under memory pressure memcached
//     evicts items before they expire, a held lock or lease among them, and
//     a second holder gets in. Start it with -M, under which a write that
//     finds memory full fails instead (and a set that fails so drops the
//     key's old value: give memcached memory enough);
//   - item_size_max below Options.MaxItemSize (see "Item size limit");
//   - cas_enabled no (-C): every operation built on cas fails.
//
// It reports no client setting: Timeout and MaxIdleConns (see "Contexts"
// and "Batches and connections") change latency and how many connections
// are dialled, not what the store guarantees. A server that cannot be
// reached is an error, not a finding.
//
// # Unsupported operations
//
//   - [Store.TTL] returns [cache.ErrUnsupported] (see "Expiry").
//   - [Store.Clear] with a non-empty prefix returns [cache.ErrUnsupported]:
//     memcached cannot enumerate keys (aiocache does the same). Clear("")
//     flushes every server of the client, keys of other users of those
//     servers included.
//   - The store is not a [cache.Notifier]: lock waiters poll memcached. It
//     is not a [cache.Fencer]: a fencing token needs an add and an
//     increment of another key in one atomic step, which memcached lacks.
//
// # Contexts
//
// gomemcache takes no context: each of its calls is bounded by the client's
// Timeout (memcache.DefaultTimeout, 500ms, when unset), which applies to the
// dial and to each read and write. Every memcached call of the store first
// checks that ctx is not done. When ctx has no deadline, or one at least
// twice the client's Timeout away (a call may spend one Timeout dialling
// and another reading), the call runs in the calling goroutine, without
// extra goroutine or allocation. Otherwise it runs in a new goroutine, on
// its own copy of the values it writes, and the operation returns ctx's
// error as soon as ctx ends; the abandoned call then finishes in the
// background within the client's Timeout, and a write it carried may still
// take effect. GetMulti runs in a goroutine whenever ctx has a deadline,
// since gomemcache renews its read deadline for every item. An error from
// a call that ended after ctx did also matches ctx's error. To avoid the
// goroutine, set the client's Timeout no longer than half the shortest
// deadline you use (for example the Cache's Options.Timeout).
//
// # Lost replies
//
// gomemcache never sends a command twice. A write whose connection fails
// after the command may have reached the server (any network error but a
// failure to connect), or whose context ends while the call goes on in the
// background, returns an error matching cache.ErrUncertain: the server may
// or may not have applied it. The conformance suite checks a linearizable
// history under lost replies through a fault proxy.
//
// # Several servers
//
// gomemcache hashes each key to one server and never fails over: while a
// server is down, the operations on its keys fail and those on the other
// servers' keys work. A GetMulti whose keys touch a server that is down
// fails as a whole (the Store contract has no partial result). Clear("")
// flushes the servers in the client's order and stops at the first that
// fails: the servers before it are flushed, the ones after it are not.
//
// # Batches and connections
//
// [Store.GetMulti] is one gomemcache GetMulti: one get request per server,
// sent in parallel. gomemcache has no pipelining, so [Store.SetMulti], and
// [Store.Delete] of several keys, make one call per key, up to
// [Options.Concurrency] at once. SetMulti is not atomic: when a call fails,
// the items of the others may be written (but see "Item size limit").
//
// gomemcache keeps only MaxIdleConns idle connections per server (2 by
// default) and closes any other connection once its call is done, so under
// parallel load most calls dial a new connection. Set client.MaxIdleConns to
// about the number of concurrent calls you expect.
package memcachestore
