// Package memstore is the in-process [cache.Store]: entries live in the
// memory of the process, in an [otter] cache bounded either in entries or in
// bytes, which evicts with otter's W-TinyLFU policy.
//
// Create one with [New] and give it to [cache.New]:
//
//	store, err := memstore.New(nil) // bounded to DefaultMaxEntries entries
//	if err != nil { ... }
//	defer store.Close()
//	users := cache.New[int, User](store, &cache.Options[int, User]{Namespace: "users"})
//
// # Behaviour
//
//   - Values are copied in and out: the Store never keeps a slice the caller
//     passed, and every slice it returns belongs to the caller.
//   - Expiry is per entry, at nanosecond resolution. Otter removes expired
//     entries in the background, and every operation also checks the
//     deadline itself, so an expired entry is never seen, whatever the state
//     of otter's timers.
//   - Add, CompareAndSwap, DeleteIfEqual, ExtendIfEqual, Increment and
//     AddFenced are atomic per key (otter's Compute).
//   - CAS tokens are versions drawn from a store-wide counter: a key that is
//     deleted and written again never matches a token read before.
//   - Clear of a non-empty prefix walks every key: it is O(n).
//   - [Store.Watch] ([cache.Notifier]) wakes waiters in the process when a
//     key is released; [Store.AddFenced] ([cache.Fencer]) hands out fencing
//     tokens from one hybrid logical clock per Store (the greater of the
//     last token plus one and the time in microseconds): they grow strictly
//     for the life of the Store, and a Store made later (a restarted
//     process) starts above them as long as the wall clock moved forward.
//   - [Store.Publish] and [Store.Subscribe] ([cache.Bus]) carry messages
//     between the Caches over one Store, within the process: every
//     subscription of a channel on the Store gets every message published
//     on it after Subscribe returned, in order, from a goroutine of its
//     own; Publish queues the message for each and never waits for a
//     handler. The bus never disconnects, so state is called only by
//     Close (state(false)); it reaches no other process, so a local tier
//     over a memory store is only kept in step with the Caches of the
//     same Store.
//
// # Goroutines
//
// A Store runs one background goroutine, otter's periodic clean-up of
// expired entries, and one per bus subscription, which delivers its
// messages; the subscription's stop function stops the latter, and
// [Store.Close] stops them all. otter may also run short-lived goroutines
// for its maintenance after writes. Operations after Close return
// [cache.ErrClosed].
package memstore
