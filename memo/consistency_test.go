package memo_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/memo"
)

// A refresh-ahead whose computation fails, with fail-safe on, is a refresh
// that failed (Stats.BackgroundErrors), not a stale value served: the value
// it refreshes is fresh, nobody is served anything by the refresh, and the
// value keeps the freshness it had (fail-safe's throttle is for values past
// their TTL). Memo.Refresh likewise: it returns the computation's error,
// and the fresh value it did not replace stays as fresh as it was.
func TestRefreshFailureWithFailSafe(t *testing.T) {
	const ttl, ahead = time.Hour, 0.0001 // the refresh point: 360ms after a write
	opts := &memo.Options{TTL: ttl, RefreshAhead: ahead, FailSafeMax: time.Hour, FailSafeThrottle: time.Second}
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		t.Run("refresh-ahead", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			c1, c2, _, _ := twoClients[string](t, b, s, teststores.Namespace(ns), ttl)
			ld := newScripted(t, returns("v1"), fails[string](errSource))
			m1, m2 := memo.Func(c1, ld.fn, opts), memo.Func(c2, ld.fn, opts)
			defer m1.Close()
			defer m2.Close()
			if v, err := m1.Get(ctx, "k"); err != nil || v != "v1" {
				t.Fatalf("first Get = %q, %v", v, err)
			}
			before := entry(t, c1, "k")
			sleepPastRefreshPoint(t, c1, "k", ttl, ahead)
			if v, err := m2.Get(ctx, "k"); err != nil || v != "v1" {
				t.Fatalf("Get past the refresh point = %q, %v; want the cached v1", v, err)
			}
			ld.awaitStarted(2)
			m2.Close() // the refresh has ended
			st := c2.Stats()
			if st.StaleServed != 0 || st.BackgroundErrors != 1 {
				t.Errorf("stats = %+v; want the failed refresh counted in BackgroundErrors, no stale value served", st)
			}
			e := entry(t, c2, "k")
			if !e.HasValue || e.Value != "v1" || e.Lease || !e.FreshUntil.Equal(before.FreshUntil) {
				t.Errorf("entry after the failed refresh: value %q, lease %v, fresh until %v; want v1 fresh until %v as before",
					e.Value, e.Lease, e.FreshUntil, before.FreshUntil)
			}
		})
		t.Run("Memo.Refresh", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			c1, c2, _, _ := twoClients[string](t, b, s, teststores.Namespace(ns), ttl)
			ld := newScripted(t, returns("v1"), fails[string](errSource))
			m1, m2 := memo.Func(c1, ld.fn, opts), memo.Func(c2, ld.fn, opts)
			defer m1.Close()
			defer m2.Close()
			if v, err := m1.Get(ctx, "k"); err != nil || v != "v1" {
				t.Fatalf("first Get = %q, %v", v, err)
			}
			before := entry(t, c1, "k")
			if v, err := m2.Refresh(ctx, "k"); !errors.Is(err, errSource) {
				t.Errorf("Refresh with a failing source = %q, %v; want its error", v, err)
			}
			if st := c2.Stats(); st.StaleServed != 0 {
				t.Errorf("stats = %+v; want no stale value served", st)
			}
			e := entry(t, c2, "k")
			if !e.HasValue || e.Value != "v1" || e.Lease || !e.FreshUntil.Equal(before.FreshUntil) {
				t.Errorf("entry after the failed Refresh: value %q, lease %v, fresh until %v; want v1 fresh until %v as before",
					e.Value, e.Lease, e.FreshUntil, before.FreshUntil)
			}
		})
	})
}

// A bulk computation's context carries no Call (memo's docs: "a bulk
// computation's context carries none, and the Call CallFrom returns there
// decides nothing"), even when the bulk load is made from within a
// single-key computation: DontCache there does not stop the outer value
// from being stored, and Stale there does not see the outer stale value.
func TestBulkComputationInsideComputationHasNoCall(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Hour)
		var staleInBulk bool
		outer := func(ctx context.Context) (string, error) {
			vals, err := memo.GetOrComputeMulti(ctx, c1, []string{"inner"}, func(bctx context.Context, missing []string) (map[string]string, error) {
				memo.CallFrom(bctx).DontCache() // decides nothing here
				_, _, staleInBulk = memo.Stale[string](bctx)
				return map[string]string{"inner": "i"}, nil
			}, nil)
			if err != nil {
				return "", err
			}
			return "outer(" + vals["inner"] + ")", nil
		}
		if v, err := memo.GetOrCompute(ctx, c1, "outer", outer, nil); err != nil || v != "outer(i)" {
			t.Fatalf("GetOrCompute = %q, %v", v, err)
		}
		if staleInBulk {
			t.Errorf("Stale in a bulk computation found a value")
		}
		wantValue(t, c2, "inner", "i")
		wantValue(t, c2, "outer", "outer(i)")
	})
}

// After Memo.Invalidate returns, a Get of the same Memo does not get the
// value of a computation that started before the invalidation (the
// cache-aside race that no stale sets is there to win: the source changed,
// then the key was invalidated): it computes afresh.
func TestGetAfterInvalidateDoesNotJoinOlderFlight(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ways := []struct {
			name       string
			invalidate func(ctx context.Context, c *cache.Cache[string, string], m *memo.Memo[string, string]) error
		}{
			{"Memo.Invalidate", func(ctx context.Context, _ *cache.Cache[string, string], m *memo.Memo[string, string]) error {
				return m.Invalidate(ctx, "k")
			}},
			{"Cache.Delete", func(ctx context.Context, c *cache.Cache[string, string], _ *memo.Memo[string, string]) error {
				_, err := c.Delete(ctx, "k")
				return err
			}},
			{"Cache.Clear", func(ctx context.Context, c *cache.Cache[string, string], _ *memo.Memo[string, string]) error {
				return c.Clear(ctx)
			}},
		}
		for i, way := range ways {
			if way.name == "Cache.Clear" && b.Name == "memcached" {
				continue // no Clear of a namespace
			}
			t.Run(way.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), bound)
				defer cancel()
				c := newCache[string](s, ns+strconv.Itoa(i), time.Hour)
				ld := newScripted(t, blocks(returns("before the write")), returns("after the write"))
				m := memo.Func(c, ld.fn, nil)
				defer m.Close()
				first := goCall(func() (string, error) { return m.Get(ctx, "k") })
				ld.awaitStarted(1)
				// The source changes, then the key is invalidated.
				if err := way.invalidate(ctx, c, m); err != nil {
					t.Fatal(err)
				}
				second := goCall(func() (string, error) { return m.Get(ctx, "k") })
				// The second call computes while the first computation still runs.
				var v string
				var err error
				select {
				case r := <-second.done:
					v, err = r.v, r.err
				case <-time.After(2 * time.Second):
					err = errors.New("still waiting for the computation that started before the invalidation")
				}
				ld.release(1)
				if err != nil && ld.count() == 1 {
					v, err = second.wait(t)
					err = errors.Join(err, errors.New("joined the flight that started before the invalidation"))
				}
				if err != nil || v != "after the write" {
					t.Errorf("Get after %s = %q, %v; want the value computed after it", way.name, v, err)
				}
				if v, err := first.wait(t); err != nil || v != "before the write" {
					t.Errorf("the first call = %q, %v; want its own value", v, err)
				}
				if v, err := m.Get(ctx, "k"); err != nil || v != "after the write" {
					t.Errorf("Get at the end = %q, %v; want the value computed after the invalidation", v, err)
				}
			})
		}
	})
}

// With fail-safe and SoftTimeout, one caller that gets the stale value
// past SoftTimeout, and then a computation that fails: one stale value was
// served, and Stats.StaleServed says 1.
func TestStaleServedCountedOnce(t *testing.T) {
	const soft = 50 * time.Millisecond
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Hour)
		opts := &memo.Options{TTL: failSafeTTL, FailSafeMax: time.Minute, SoftTimeout: soft}
		ld := newScripted(t, returns("v1"), hangs(fails[string](errSource)))
		m1, m2 := memo.Func(c1, ld.fn, opts), memo.Func(c2, ld.fn, opts)
		defer m1.Close()
		defer m2.Close()
		if _, err := m1.Get(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		sleepPastFresh(t, c1, "k")
		if v, err := m2.Get(ctx, "k"); err != nil || v != "v1" {
			t.Fatalf("Get past SoftTimeout = %q, %v; want the stale v1", v, err)
		}
		ld.release(2)
		m2.Close() // the computation has ended
		wantFreshValue(t, c2, "k", "v1")
		if st := c2.Stats(); st.StaleServed != 1 {
			t.Errorf("stats = %+v; want 1 stale value served (one caller got one)", st)
		}
	})
}

// A refresh-ahead whose computation answers ErrNotFound (without
// NegativeTTL) got an answer, not a failure: the value it refreshed no
// longer exists, and is not served as a hit afterwards.
func TestRefreshAheadNotFoundDropsValue(t *testing.T) {
	const ttl, ahead = time.Hour, 0.0001 // the refresh point: 360ms after a write
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, ttl)
		opts := &memo.Options{RefreshAhead: ahead}
		ld := newScripted(t, returns("v1"), notFound[string](), notFound[string]())
		m1, m2 := memo.Func(c1, ld.fn, opts), memo.Func(c2, ld.fn, opts)
		defer m1.Close()
		defer m2.Close()
		if v, err := m1.Get(ctx, "k"); err != nil || v != "v1" {
			t.Fatalf("first Get = %q, %v", v, err)
		}
		sleepPastRefreshPoint(t, c1, "k", ttl, ahead)
		if v, err := m2.Get(ctx, "k"); err != nil || v != "v1" {
			t.Fatalf("Get past the refresh point = %q, %v; want the cached v1", v, err)
		}
		ld.awaitStarted(2)
		m2.Close() // the refresh has ended
		if v, err := m1.Get(ctx, "k"); !errors.Is(err, memo.ErrNotFound) {
			t.Errorf("Get after the refresh found nothing = %q, %v; want ErrNotFound", v, err)
		}
	})
}
