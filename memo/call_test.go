package memo_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/memo"
)

// The computation decides about its value through memo.CallFrom(ctx), and
// reads the value it replaces through memo.Stale. Each test runs on every
// store across two clients.

// SetTTL: the value expires after the TTL the computation chose, not
// Options.TTL (an hour), and without Jitter; with fail-safe, its logical
// expiry is the chosen TTL.
func TestCallSetTTL(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Hour)
		chosen := ttlFor(b, 200*time.Millisecond)
		setTTL := func(ctx context.Context) { memo.CallFrom(ctx).SetTTL(chosen) }
		ld := newScripted(t, deciding(returns("short"), setTTL), deciding(returns("short, fail-safe"), setTTL))
		opts := &memo.Options{TTL: time.Hour, Jitter: 0.5}
		if v, err := memo.GetOrCompute(ctx, c1, "k", ld.compute, opts); err != nil || v != "short" {
			t.Fatalf("GetOrCompute = %q, %v", v, err)
		}
		fsOpts := &memo.Options{TTL: time.Hour, Jitter: 0.5, FailSafeMax: time.Minute}
		if _, err := memo.GetOrCompute(ctx, c1, "fs", ld.compute, fsOpts); err != nil {
			t.Fatal(err)
		}
		if e := entry(t, c2, "fs"); e.FreshUntil.Sub(e.Written) != chosen {
			t.Fatalf("fail-safe entry: fresh for %v after its writing; want the chosen %v", e.FreshUntil.Sub(e.Written), chosen)
		}
		if b.TTLReadable {
			left, err := c2.TTL(ctx, "k")
			if err != nil || left <= 0 || left > chosen {
				t.Fatalf("TTL = %v, %v; want at most the chosen %v", left, err, chosen)
			}
		}
		waitFor(t, "the value to expire", func() bool {
			_, found, err := c2.Get(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			return !found
		})
	})
}

// Refresh-ahead follows the TTL the computation chose: the refresh point is
// that fraction of the chosen TTL (not of Options.TTL, an hour, which would
// put it long after the value expired), and the value kept beside the
// refresh's lease is fresh for the chosen TTL only.
func TestRefreshAheadFollowsChosenTTL(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Hour)
		chosen := ttlFor(b, 2*time.Second)
		const ahead = 0.25
		var computations atomic.Int64
		refreshing, release := make(chan struct{}), make(chan struct{})
		compute := func(ctx context.Context) (string, error) {
			memo.CallFrom(ctx).SetTTL(chosen)
			if computations.Add(1) == 2 {
				close(refreshing)
				<-release
				return "refreshed", nil
			}
			return "first", nil
		}
		opts := &memo.Options{TTL: time.Hour, RefreshAhead: ahead}
		if v, err := memo.GetOrCompute(ctx, c1, "k", compute, opts); err != nil || v != "first" {
			t.Fatalf("GetOrCompute = %q, %v; want first", v, err)
		}
		sleepPastRefreshPoint(t, c1, "k", chosen, ahead)
		if v, err := memo.GetOrCompute(ctx, c2, "k", compute, opts); err != nil || v != "first" {
			t.Fatalf("GetOrCompute past the refresh point = %q, %v; want the cached value at once", v, err)
		}
		select {
		case <-refreshing:
		case <-time.After(chosen):
			t.Fatalf("no refresh within the chosen TTL (%v) of a value past %v of it", chosen, ahead)
		}
		e := entry(t, c1, "k")
		if !e.Lease || !e.HasValue || e.Value != "first" {
			t.Fatalf("entry while refreshing = %+v; want the value with a lease", e)
		}
		if fresh := e.FreshUntil.Sub(e.Written); fresh != chosen {
			t.Fatalf("entry while refreshing: fresh for %v after its writing; want the chosen %v", fresh, chosen)
		}
		close(release)
		waitFor(t, "the refreshed value", func() bool {
			v, found, err := c1.Get(ctx, "k")
			return err == nil && found && v == "refreshed"
		})
		if st := c2.Stats(); st.Refreshes != 1 {
			t.Fatalf("client 2 stats = %+v; want 1 refresh", st)
		}
	})
}

// DontCache: the value reaches every caller of the computation's flight
// and is not stored; the lease is given up at once, so the other client's
// caller, which waited for it, computes its own, and the next call computes
// again.
func TestCallDontCache(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		// Half the lease: only the lease given up lets the waiter finish
		// in time.
		const lease = time.Minute
		ctx, cancel := context.WithTimeout(context.Background(), lease/2)
		defer cancel()
		c1, c2, _, s2 := twoClients[string](t, b, s, ns, time.Hour)
		opts := &memo.Options{Lease: lease}
		dontCache := func(ctx context.Context) { memo.CallFrom(ctx).DontCache() }
		ld := newScripted(t,
			deciding(hangs(returns("private 1")), dontCache),
			deciding(returns("private 2"), dontCache),
			returns("cached"),
		)
		const callers = 3
		calls := make([]*call[string], callers)
		for i := range calls {
			calls[i] = goCall(func() (string, error) { return memo.GetOrCompute(ctx, c1, "k", ld.compute, opts) })
		}
		ld.awaitStarted(1)
		waitFor(t, "every caller of client 1 to join the flight", func() bool { return c1.Stats().Misses == callers })
		other := goCall(func() (string, error) { return memo.GetOrCompute(ctx, c2, "k", ld.compute, opts) })
		waitFor(t, "client 2 to wait for the lease", func() bool { return s2.GetCalls.Load() >= 2 })
		ld.release(1)
		for i, c := range calls {
			if v, err := c.wait(t); err != nil || v != "private 1" {
				t.Fatalf("caller %d of client 1 got %q, %v; want the uncached value", i+1, v, err)
			}
		}
		if v, err := other.wait(t); err != nil || v != "private 2" {
			t.Fatalf("client 2 got %q, %v; want its own computation's value", v, err)
		}
		if st := c2.Stats(); st.LeaseWaits != 1 || st.Computations != 1 {
			t.Fatalf("client 2 stats = %+v; want 1 lease wait (contention), 1 computation", st)
		}
		if st := c1.Stats(); st.Sets != 0 || st.Computations != 1 {
			t.Fatalf("client 1 stats = %+v; want 1 computation, no set", st)
		}
		assertNoEntry(t, c1, "k")
		if v, err := memo.GetOrCompute(ctx, c1, "k", ld.compute, opts); err != nil || v != "cached" {
			t.Fatalf("next call = %q, %v; want it computed again", v, err)
		}
		ld.wantCalls(3)
		wantValue(t, c2, "k", "cached")
	})
}

// staleSeen is what memo.Stale told a computation.
type staleSeen struct {
	v       string
	written time.Time
	ok      bool
}

// conditional is a step that reads the value it replaces (memo.Stale),
// records it, and returns it unchanged when there is one (a conditional
// request that found the source unchanged), else fresh.
func conditional(seen chan<- staleSeen, fresh string) *step[string] {
	return does(func(ctx context.Context) (string, error) {
		v, written, ok := memo.Stale[string](ctx)
		seen <- staleSeen{v, written, ok}
		if ok {
			return v, nil
		}
		return fresh, nil
	})
}

// memo.Stale gives a computation the value it replaces: none on a miss;
// the refreshed value in a refresh-ahead; the stale value in a fail-safe
// recomputation past the TTL. Returning it unchanged (a conditional
// refresh) stores it fresh again.
func TestStale(t *testing.T) {
	const ahead = 0.001 // of a minute: the refresh point is 60ms after a write
	tests := []struct {
		name string
		opts *memo.Options
	}{
		{"refresh-ahead", &memo.Options{TTL: time.Minute, RefreshAhead: ahead}},
		{"fail-safe", &memo.Options{TTL: failSafeTTL, FailSafeMax: time.Minute}},
	}
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), bound)
				defer cancel()
				c1, c2, _, _ := twoClients[string](t, b, s, teststores.Namespace(ns), time.Hour)
				seen := make(chan staleSeen, 2)
				ld := newScripted(t, conditional(seen, "v1"), conditional(seen, "changed"))
				m1, m2 := memo.Func(c1, ld.fn, tt.opts), memo.Func(c2, ld.fn, tt.opts)
				t.Cleanup(m1.Close)
				t.Cleanup(m2.Close)
				if v, err := m1.Get(ctx, "k"); err != nil || v != "v1" {
					t.Fatalf("first Get = %q, %v", v, err)
				}
				if got := <-seen; got.ok {
					t.Fatalf("Stale in the computation of a miss = %+v; want none", got)
				}
				before := entry(t, c1, "k")
				if tt.opts.RefreshAhead > 0 {
					sleepPastRefreshPoint(t, c1, "k", time.Minute, ahead)
				} else {
					sleepPastFresh(t, c1, "k")
				}
				if v, err := m2.Get(ctx, "k"); err != nil || v != "v1" {
					t.Fatalf("second Get = %q, %v; want v1", v, err)
				}
				got := <-seen
				if !got.ok || got.v != "v1" || !got.written.Equal(before.Written) {
					t.Fatalf("Stale in the recomputation = %+v; want v1 written at %v", got, before.Written)
				}
				// Stored fresh again: written anew, without a lease.
				waitFor(t, "the value to be stored again", func() bool {
					e := entry(t, c1, "k")
					return !e.Lease && e.Written.After(before.Written)
				})
				wantFreshValue(t, c2, "k", "v1")
				if v, err := m1.Get(ctx, "k"); err != nil || v != "v1" {
					t.Fatalf("Get after = %q, %v; want v1 from the cache", v, err)
				}
				ld.wantCalls(2)
			})
		}
	})
}

// Outside a computation, CallFrom's Call decides nothing and Stale finds
// nothing: the next computation's value is stored with Options.TTL.
func TestCallFromOutsideComputation(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c := newCache[string](s, ns, time.Hour)
		call := memo.CallFrom(ctx)
		call.SetTTL(time.Millisecond)
		call.DontCache()
		if _, _, ok := memo.Stale[string](ctx); ok {
			t.Fatal("Stale outside a computation found a value")
		}
		v, err := memo.GetOrCompute(ctx, c, "k", func(context.Context) (string, error) { return "v", nil }, &memo.Options{TTL: time.Hour})
		if err != nil || v != "v" {
			t.Fatalf("GetOrCompute = %q, %v", v, err)
		}
		wantValue(t, c, "k", "v")
		if b.TTLReadable {
			if left, err := c.TTL(ctx, "k"); err != nil || left < time.Minute {
				t.Fatalf("TTL = %v, %v; want about an hour", left, err)
			}
		}
	})
}
