package memo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/memo"
)

// SoftTimeout and HardTimeout bound how long callers wait for a computation
// that hangs; the computation goes on in the background and stores its
// value under its lease. Each test runs on every store across two clients.
// The source hangs until the test releases it: a call that returns while
// it hangs did not wait for it, whatever the clock says.

// SoftTimeout: callers of both clients that have a stale value get it once
// SoftTimeout passes while the source still hangs; released, the
// computation stores its value under its lease, and the next call gets it
// without asking the source. A caller without a stale value waits on.
func TestSoftTimeout(t *testing.T) {
	const soft = 100 * time.Millisecond
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Hour)
		opts := &memo.Options{TTL: failSafeTTL, FailSafeMax: time.Minute, SoftTimeout: soft}
		ld := newScripted(t, returns("v1"), hangs(returns("v2")))
		if _, err := memo.GetOrCompute(ctx, c1, "k", ld.compute, opts); err != nil {
			t.Fatal(err)
		}
		sleepPastFresh(t, c1, "k")

		// Client 2 computes; the source hangs.
		call2 := goCall(func() (string, error) { return memo.GetOrCompute(ctx, c2, "k", ld.compute, opts) })
		ld.awaitStarted(2)
		if v, err := call2.wait(t); err != nil || v != "v1" {
			t.Fatalf("client 2 (computing) got %q, %v; want the stale v1 while the source hangs", v, err)
		}
		// Client 1 finds the computation's lease beside the stale value.
		if v, err := memo.GetOrCompute(ctx, c1, "k", ld.compute, opts); err != nil || v != "v1" {
			t.Fatalf("client 1 (waiting) got %q, %v; want the stale v1 while the source hangs", v, err)
		}
		if e := entry(t, c1, "k"); !e.Lease || !e.HasValue || e.Value != "v1" {
			t.Fatalf("entry while the source hangs = %+v; want the stale v1 beside the computation's lease", e)
		}
		if st1, st2 := c1.Stats(), c2.Stats(); st1.StaleServed != 1 || st2.StaleServed != 1 {
			t.Fatalf("stats = %+v, %+v; want 1 stale value served on each client", st1, st2)
		}

		// Released, the computation stores its value under its lease.
		ld.release(2)
		waitValue(t, c2, "k", "v2")
		assertNoLease(t, c1, "k")
		if v, err := memo.GetOrCompute(ctx, c1, "k", ld.compute, opts); err != nil || v != "v2" {
			t.Fatalf("after the release: %q, %v; want the stored v2", v, err)
		}
		ld.wantCalls(2)

		// A key without a stale value: its callers wait for the value.
		none := newScripted(t, hangs(returns("computed")))
		first := goCall(func() (string, error) { return memo.GetOrCompute(ctx, c1, "none", none.compute, opts) })
		none.awaitStarted(1)
		second := goCall(func() (string, error) { return memo.GetOrCompute(ctx, c2, "none", none.compute, opts) })
		first.pending(t, 2*soft, "no stale value to serve past SoftTimeout")
		second.pending(t, soft, "no stale value to serve past SoftTimeout")
		none.release(1)
		for i, c := range []*call[string]{first, second} {
			if v, err := c.wait(t); err != nil || v != "computed" {
				t.Fatalf("caller %d without a stale value got %q, %v; want the computed value", i+1, v, err)
			}
		}
		none.wantCalls(1)
	})
}

// HardTimeout: callers of both clients get an error matching
// context.DeadlineExceeded while the source hangs; released, the
// computation finishes in the background and stores its value, which the
// next call returns without a computation.
func TestHardTimeout(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Hour)
		opts := &memo.Options{HardTimeout: 200 * time.Millisecond}
		ld := newScripted(t, hangs(returns("late")))
		first := goCall(func() (string, error) { return memo.GetOrCompute(ctx, c1, "k", ld.compute, opts) })
		ld.awaitStarted(1)
		second := goCall(func() (string, error) { return memo.GetOrCompute(ctx, c2, "k", ld.compute, opts) })
		for i, c := range []*call[string]{first, second} {
			v, err := c.wait(t)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("client %d got %q, %v; want DeadlineExceeded while the source hangs", i+1, v, err)
			}
			var oe *cache.OpError
			if !errors.As(err, &oe) || oe.Key != c1.Key("k") {
				t.Fatalf("client %d: %v; want an OpError naming %q", i+1, err, c1.Key("k"))
			}
		}
		if e := entry(t, c1, "k"); !e.Lease || e.HasValue {
			t.Fatalf("entry after the callers gave up = %+v; want the computation's lease", e)
		}
		ld.release(1)
		waitValue(t, c2, "k", "late")
		for i, c := range []*cache.Cache[string, string]{c1, c2} {
			if v, err := memo.GetOrCompute(ctx, c, "k", ld.compute, opts); err != nil || v != "late" {
				t.Fatalf("client %d after the release: %q, %v; want the stored value", i+1, v, err)
			}
		}
		ld.wantCalls(1)
	})
}
