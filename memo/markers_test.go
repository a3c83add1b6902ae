package memo_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/memo"
)

// lookalikes are user keys that look like the marker keys of k: the names
// markers had before they moved out of the key space, and others like them.
func lookalikes(k string) []string {
	return []string{
		k + "-memo-none", k + "-memo-fresh",
		k + ":memo:none", k + ":memo:fresh",
		k + "memo:none", k + " memo:fresh",
		"memo:none", "memo:fresh",
	}
}

// Markers and user values never interact: values stored at names like the
// markers' do not answer for the markers, are not overwritten or deleted by
// memo, and markers cannot be read, written or deleted through the Cache.
func TestMarkersApartFromUserKeys(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[string](s, ns, time.Minute)
		var names []string
		for _, k := range []string{"user", "ghost"} {
			for _, name := range lookalikes(k) {
				if err := c.Set(ctx, name, "real "+name); err != nil {
					t.Fatal(err)
				}
				names = append(names, name)
			}
		}
		opts := &memo.Options{NegativeTTL: time.Minute, RefreshAhead: 0.5}
		var computations atomic.Int64
		for range 2 {
			// A value stored at "user-memo-none" is no cached not-found.
			v, err := memo.GetOrCompute(ctx, c, "user", func(context.Context) (string, error) {
				computations.Add(1)
				return "computed", nil
			}, opts)
			if err != nil || v != "computed" {
				t.Fatalf("GetOrCompute(user) = %q, %v; want computed", v, err)
			}
			_, err = memo.GetOrCompute(ctx, c, "ghost", func(context.Context) (string, error) {
				computations.Add(1)
				return "", memo.ErrNotFound
			}, opts)
			if !errors.Is(err, memo.ErrNotFound) {
				t.Fatalf("GetOrCompute(ghost) = %v; want ErrNotFound", err)
			}
		}
		if got := computations.Load(); got != 2 {
			t.Fatalf("computations = %d; want 2 (user once, ghost once)", got)
		}
		assertLookalikes := func(when string) {
			t.Helper()
			for _, name := range names {
				if v, found, err := c.Get(ctx, name); err != nil || !found || v != "real "+name {
					t.Errorf("%s: Get(%q) = %q, %v, %v; want the user's value", when, name, v, found, err)
				}
			}
		}
		assertLookalikes("after memo's writes")

		// The markers are where the package documents them...
		for _, key := range []string{negativeKey(c, "ghost"), freshKey(c, "user")} {
			if ok, err := s.Exists(ctx, key); !ok || err != nil {
				t.Fatalf("marker %q: exists %v, %v; want it in the store", key, ok, err)
			}
		}
		// ...and the Cache cannot name them.
		for _, k := range []string{"ghost\x00memo:none", "user\x00memo:fresh"} {
			if _, _, err := c.Get(ctx, k); !errors.Is(err, cache.ErrInvalidKey) {
				t.Errorf("Get(%q) = %v; want ErrInvalidKey", k, err)
			}
			if err := c.Set(ctx, k, "x"); !errors.Is(err, cache.ErrInvalidKey) {
				t.Errorf("Set(%q) = %v; want ErrInvalidKey", k, err)
			}
			if _, err := c.Delete(ctx, k); !errors.Is(err, cache.ErrInvalidKey) {
				t.Errorf("Delete(%q) = %v; want ErrInvalidKey", k, err)
			}
		}

		// An integer cache does not read a marker as a number (its own
		// namespace: the lookalikes above hold strings).
		n := newCache[int64](s, ns+"-int", time.Minute)
		if _, err := memo.GetOrCompute(ctx, n, "n", func(context.Context) (int64, error) { return 42, nil }, opts); err != nil {
			t.Fatal(err)
		}
		if got, err := n.GetMulti(ctx, lookalikes("n")); err != nil || len(got) != 0 {
			t.Fatalf("int64 Get of the marker lookalikes of n = %v, %v; want misses", got, err)
		}

		// Invalidate removes the markers, not the lookalikes.
		m := memo.Func(c, func(context.Context, string) (string, error) { return "", nil }, opts)
		defer m.Close()
		if err := m.Invalidate(ctx, "user", "ghost"); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{negativeKey(c, "ghost"), freshKey(c, "user")} {
			if ok, err := s.Exists(ctx, key); ok || err != nil {
				t.Fatalf("marker %q after Invalidate: exists %v, %v; want it gone", key, ok, err)
			}
		}
		assertLookalikes("after Invalidate")

		// Clear of the namespace removes the markers with the values.
		memo.GetOrCompute(ctx, c, "ghost", func(context.Context) (string, error) { return "", memo.ErrNotFound }, opts)
		err := c.Clear(ctx)
		if errors.Is(err, cache.ErrUnsupported) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Exists(ctx, negativeKey(c, "ghost")); ok || err != nil {
			t.Fatalf("marker after Clear: exists %v, %v; want it gone", ok, err)
		}
	})
}

// A refresh in flight is no flight of a user key, whatever its name: a
// miss on such a key computes its own value.
func TestRefreshFlightApartFromUserKeys(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		cs := teststores.NewCounting(s)
		c := newCache[string](cs, ns, time.Hour)
		refreshing, release := make(chan struct{}), make(chan struct{})
		var calls atomic.Int64
		m := memo.Func(c, func(ctx context.Context, k string) (string, error) {
			if k == "k" && calls.Add(1) == 2 { // the refresh
				close(refreshing)
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			return "computed " + k, nil
		}, &memo.Options{RefreshAhead: 0.5})
		defer m.Close()
		if _, err := m.Get(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		expireFresh(t, s, c, "k")
		if v, err := m.Get(ctx, "k"); err != nil || v != "computed k" {
			t.Fatalf("Get past the refresh point = %q, %v", v, err)
		}
		<-refreshing
		for _, k := range lookalikes("k") {
			if v, err := m.Get(ctx, k); err != nil || v != "computed "+k {
				t.Errorf("Get(%q) while k refreshes = %q, %v; want its own value", k, v, err)
			}
		}
		// Nor is it the flight of k itself: a miss of k (the value went
		// while the refresh ran) waits on the lock and reads what the
		// refresh stored.
		if _, err := c.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		lockGets := cs.LockGetCalls.Load()
		got := make(chan string, 1)
		go func() {
			v, err := m.Get(ctx, "k")
			if err != nil {
				t.Error(err)
			}
			got <- v
		}()
		// Release the refresh once the miss waits for its lock (a waiter
		// reads the holder's token once its watch started).
		for cs.LockGetCalls.Load() == lockGets {
			time.Sleep(time.Millisecond)
		}
		close(release)
		if v := <-got; v != "computed k" {
			t.Fatalf("Get(k) during its refresh = %q; want the refreshed value", v)
		}
		if n := calls.Load(); n != 2 {
			t.Fatalf("computations of k = %d; want 2 (the first and the refresh): the miss read the refreshed value", n)
		}
	})
}

// With a TTL over a second, the freshness marker expires at least a second
// before the value, so that refresh-ahead works on stores that round TTLs
// up to whole seconds (memcached): with TTL 2s and RefreshAhead 0.9, the
// marker lives 1s, not 1.8s.
func TestRefreshAheadNearExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		const ttl = 2 * time.Second
		c := newCache[int64](s, ns, ttl)
		var version atomic.Int64
		m := memo.Func(c, func(context.Context, string) (int64, error) { return version.Add(1), nil },
			&memo.Options{RefreshAhead: 0.9})
		defer m.Close()
		if v, err := m.Get(ctx, "k"); err != nil || v != 1 {
			t.Fatalf("first Get = %d, %v; want 1", v, err)
		}
		if b.TTLReadable {
			if got, err := s.TTL(ctx, freshKey(c, "k")); err != nil || got > time.Second {
				t.Fatalf("TTL of the freshness marker = %v, %v; want at most 1s", got, err)
			}
		}
		waitGone(t, s, freshKey(c, "k"), ttl)
		if v, err := m.Get(ctx, "k"); err != nil || v != 1 {
			t.Fatalf("Get past the refresh point = %d, %v; want the cached 1 (the value must outlive its marker)", v, err)
		}
		waitValue(t, c, "k", 2, ttl)
		if st := m.Stats(); st.Refreshes != 1 {
			t.Fatalf("stats = %+v; want 1 refresh", st)
		}
	})
}
