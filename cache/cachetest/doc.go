// Package cachetest is the conformance suite of [cache.Store]: the tests
// that define what a store does, run against every store of this module and
// open to any store written outside it.
//
// It follows the pattern of gocloud.dev's drivertest: a store's own
// conformance test is a few lines that describe the store in a [Harness]
// and call [RunConformanceTests]. For a store package mystore:
//
//	package mystore_test
//
//	import (
//		"testing"
//		"time"
//
//		"example.com/mystore"
//		"github.com/typedcache/typedcache/cache"
//		"github.com/typedcache/typedcache/cache/cachetest"
//	)
//
//	func TestConformance(t *testing.T) {
//		cachetest.RunConformanceTests(t, cachetest.Harness{
//			NewStore: func(t *testing.T) cache.Store {
//				s, err := mystore.New(addr(t))
//				if err != nil {
//					t.Fatalf("mystore.New: %v", err)
//				}
//				return s // the suite closes it
//			},
//			TTLResolution: time.Millisecond,
//		})
//	}
//
// The suite never asks which store it tests: a backend's limits are fields
// of the Harness (whole-second expiry, a TTL it cannot read, no Clear of a
// prefix, whether it may be emptied), never a test of the store's type.
//
// # What it checks
//
// Every clause of every [cache.Store] method's doc comment, each in its own
// subtest: round trips of Get, GetMulti, Set, SetMulti, Add, Delete and
// Exists; ttls (0 = no expiry, a write replaces the ttl, Expire, TTL) and
// expiry (an expired key is never returned by any method); Increment
// (signed, int64 bounds, overflow and non-integers give
// [cache.ErrNotInteger] and change nothing, the ttl is kept); Clear of a
// prefix (exactly the keys that start with it, with glob and regexp
// characters in it) and of the whole store; Gets and CompareAndSwap
// (present and absent tokens, every way a token goes stale);
// DeleteIfEqual and ExtendIfEqual; binary, empty and large values, and
// values over a size limit ([cache.ErrTooLarge], the old value kept); awkward
// keys (spaces, CRLF, unicode, long keys differing only in their tail);
// races of 100 goroutines on Add, CompareAndSwap, DeleteIfEqual and
// Increment, which must have exactly one winner (or the exact sum); a
// linearizability check (github.com/anishathalye/porcupine) of a history
// of Get, Set, Add, Delete, Gets and CompareAndSwap, and DeleteIfEqual
// calls racing on two keys, which finds stale reads, lost writes and
// compare-and-swaps that are not atomic that no fixed race can; done
// contexts; Close twice; and the optional interfaces [cache.Notifier],
// [cache.Fencer], [cache.Leaser], [cache.Swapper] and [cache.Bus] for
// stores that implement them (for the Bus: delivery to a store's own and
// to another client's subscriptions, in order, on exact channels, binary
// payloads, a subscription in place when Subscribe returns, nothing after
// stop, which waits for a running handler, and subscriptions started and
// stopped by racing goroutines).
//
// # Running it
//
// Each subtest opens its own store with Harness.NewStore and writes only
// keys under a random prefix ("cachetest:<hex>:"), which it clears when it
// ends (where the store can clear a prefix), so runs against a backend
// shared with other tests or other runs never collide. Clear("") is tested
// only when Harness.Exclusive is set. Two stores from NewStore may share a
// backend (two clients of one Redis) or not (two in-process stores): the
// suite finds out by writing a key through one and reading it through the
// other, and runs its cross-client cases (a release seen by a watcher of
// another client) only when they share one.
//
// The cases that wait for keys to expire run in three phases, written as
// the subtests Expiry/Write/<case> and Expiry/Check/<case>: all cases write
// their keys, the suite waits once for them to expire, then all cases
// check. The whole suite waits for a ttl of max(200ms, 2*TTLResolution)
// about once, plus a few fixed waits of a fraction of a second in the
// Notifier and Bus cases, so it takes a few seconds on a store with
// millisecond expiry and a few more with whole-second expiry. To run one
// expiry case alone, match both phases: -run
// 'TestConformance/Expiry/.*/Add$'.
//
// Waits are bounded generously (a key must vanish within a few seconds of
// its ttl, a watcher must wake within five seconds), so a slow machine
// does not make the suite flaky; only a store that never does what it must
// takes it to a bound. The races check that the calls really overlapped
// (at least two in flight at once) and fail otherwise, since a race that
// never happened proves nothing: they need GOMAXPROCS of at least 2 for an
// in-process store. A history that fails the linearizability check is drawn
// by porcupine in an HTML file, whose name the failure gives.
//
// Harness.Skip lets a stand-in for a real backend (miniredis for Redis)
// leave out, with a reason, the few cases its real backend passes and it
// does not.
package cachetest

import "github.com/typedcache/typedcache/cache"

// The import gives the doc links above a target.
var _ cache.Store
