package memo_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/codec"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/memo"
)

// Ported from aiocache's cached_stampede tests: two concurrent calls from
// two clients make one computation. The second call is made while the
// first computes, and the computation returns only once the second waits
// for its lease. The store calls, from the code:
//
//   - client 1 (computes): Get (a miss), Add of its lease entry,
//     SwapIfEqual of that entry for the value: 1 get, 1 add, 1 swap;
//   - client 2 (waits): Get (the lease: a miss to it), Get again once its
//     watch of the key is in place (so that a swap in between is not
//     missed), Get once the swap woke it (the value): 3 gets.
//
// In all 4 gets, 1 add, 1 swap and no Set (the old design: 4 gets and 1
// Set, plus a lock key's add, reads and delete). Memcached does not
// notify: client 2 polls, one more Get per poll.
func TestStampedeTwoClients(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c1, c2, s1, s2 := twoClients[string](t, b, s, ns, time.Minute)
		var computations atomic.Int64
		started := make(chan struct{})
		compute := func(context.Context) (string, error) {
			if computations.Add(1) == 1 {
				close(started)
			}
			waitFor(t, "client 2 to wait for the lease", func() bool { return s2.GetCalls.Load() >= 2 })
			return "value", nil
		}
		var wg sync.WaitGroup
		call := func(c *cache.Cache[string, string]) {
			defer wg.Done()
			v, err := memo.GetOrCompute(ctx, c, "k", compute, nil)
			if err != nil || v != "value" {
				t.Errorf("GetOrCompute = %q, %v; want value", v, err)
			}
		}
		wg.Add(2)
		go call(c1)
		<-started
		go call(c2)
		wg.Wait()

		if got := computations.Load(); got != 1 {
			t.Errorf("computations = %d; want 1", got)
		}
		gets := s1.GetCalls.Load() + s2.GetCalls.Load()
		if b.Name == "memcached" {
			if gets < 4 {
				t.Errorf("gets = %d; want at least 4", gets)
			}
			t.Logf("gets = %d (client 2 polled %d times)", gets, gets-4+1)
		} else if gets != 4 {
			t.Errorf("gets = %d; want 4", gets)
		}
		if got := s1.AddCalls.Load() + s2.AddCalls.Load(); got != 1 {
			t.Errorf("adds = %d; want 1", got)
		}
		if got := s1.SwapCalls.Load() + s2.SwapCalls.Load(); got != 1 {
			t.Errorf("swaps = %d; want 1", got)
		}
		if got := s1.SetCalls.Load() + s2.SetCalls.Load(); got != 0 {
			t.Errorf("sets = %d; want 0", got)
		}
		st1, st2 := c1.Stats(), c2.Stats()
		if st1.Computations != 1 || st1.Misses != 1 || st1.Sets != 1 || st1.LeaseWaits != 0 {
			t.Errorf("client 1 stats = %+v; want 1 miss, 1 computation, 1 set", st1)
		}
		if st2.Computations != 0 || st2.Misses != 1 || st2.LeaseWaits != 1 {
			t.Errorf("client 2 stats = %+v; want 1 miss, 1 lease wait, no computation", st2)
		}
	})
}

// In one process, concurrent callers share one flight: the computation
// runs only once all 20 callers have missed.
func TestOneComputationInProcess(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c := newCache[profile](s, ns, time.Minute)
		const callers = 20
		var computations atomic.Int64
		compute := func(context.Context) (profile, error) {
			computations.Add(1)
			waitFor(t, "every caller to miss", func() bool { return c.Stats().Misses == callers })
			return profile{1, "ada"}, nil
		}
		var wg sync.WaitGroup
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := memo.GetOrCompute(ctx, c, "u1", compute, nil)
				if err != nil || v.Name != "ada" {
					t.Errorf("GetOrCompute = %v, %v", v, err)
				}
			}()
		}
		wg.Wait()
		if got := computations.Load(); got != 1 {
			t.Fatalf("computations = %d; want 1", got)
		}
		if st := c.Stats(); st.Computations != 1 || st.Misses != callers || st.Hits != 0 || st.LeaseWaits != 0 {
			t.Fatalf("stats = %+v; want %d misses (contention), 1 computation, no lease wait", st, callers)
		}
		if v, err := memo.GetOrCompute(ctx, c, "u1", compute, nil); err != nil || v.Name != "ada" || c.Stats().Hits != 1 {
			t.Fatalf("GetOrCompute after = %v, %v, stats %+v; want a hit", v, err, c.Stats())
		}
	})
}

// Ported: an error, a cancelled computation and a panic reach the caller,
// nothing is cached, and the lease is given up: the key holds no entry.
func TestComputeErrorNotCached(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		compute func(context.Context) (string, error)
		want    error
	}{
		{"error", func(context.Context) (string, error) { return "", boom }, boom},
		{"cancelled", func(context.Context) (string, error) { return "", context.Canceled }, context.Canceled},
		{"panic", func(context.Context) (string, error) { panic("kaboom") }, cache.ErrPanic},
	}
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := newCache[string](s, ns, time.Minute)
				_, err := memo.GetOrCompute(ctx, c, tt.name, tt.compute, nil)
				if !errors.Is(err, tt.want) {
					t.Fatalf("got %v; want %v", err, tt.want)
				}
				assertNoEntry(t, c, tt.name)
				if st := c.Stats(); st.Errors != 1 || st.Computations != 1 || st.Sets != 0 {
					t.Fatalf("stats = %+v; want 1 computation, 1 error, no set", st)
				}
			})
		}
		// A panic reaches every waiter of the flight as an error.
		t.Run("panic with waiters", func(t *testing.T) {
			c := newCache[string](s, ns, time.Minute)
			const callers = 5
			var wg sync.WaitGroup
			for range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := memo.GetOrCompute(ctx, c, "p", func(context.Context) (string, error) {
						waitFor(t, "every caller to miss", func() bool { return c.Stats().Misses == callers })
						panic("kaboom")
					}, nil)
					if !errors.Is(err, cache.ErrPanic) {
						t.Errorf("waiter of a panic: got %v; want ErrPanic", err)
					}
				}()
			}
			wg.Wait()
			assertNoEntry(t, c, "p")
			if st := c.Stats(); st.Computations != 1 {
				t.Fatalf("stats = %+v; want 1 computation", st)
			}
		})
	})
}

// A computation that fails gives its lease up, which wakes the caller
// waiting for it in another client: that caller computes its own value at
// once, long before the lease would have ended.
func TestFailedComputationWakesOtherClient(t *testing.T) {
	tests := []struct {
		name string
		fail func() (string, error)
	}{
		{"error", func() (string, error) { return "", errors.New("boom") }},
		{"panic", func() (string, error) { panic("kaboom") }},
	}
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				// Half the lease: only the lease given up lets the waiter
				// finish in time.
				const lease = time.Minute
				ctx, cancel := context.WithTimeout(context.Background(), lease/2)
				defer cancel()
				c1, c2, _, s2 := twoClients[string](t, b, s, teststores.Namespace(ns), time.Minute)
				opts := &memo.Options{Lease: lease}
				errc := make(chan error, 1)
				go func() {
					_, err := memo.GetOrCompute(ctx, c1, "k", func(context.Context) (string, error) {
						waitFor(t, "client 2 to wait for the lease", func() bool { return s2.GetCalls.Load() >= 2 })
						return tt.fail()
					}, opts)
					errc <- err
				}()
				waitFor(t, "client 1 to take the lease", func() bool { return entry(t, c1, "k").Lease })
				v, err := memo.GetOrCompute(ctx, c2, "k", func(context.Context) (string, error) { return "from client 2", nil }, opts)
				if err != nil || v != "from client 2" {
					t.Fatalf("client 2 = %q, %v; want its own value, computed once the lease was given up", v, err)
				}
				if err := <-errc; err == nil {
					t.Fatal("client 1: no error")
				}
				if st := c2.Stats(); st.LeaseWaits != 1 || st.Computations != 1 {
					t.Fatalf("client 2 stats = %+v; want 1 lease wait (contention), 1 computation", st)
				}
				wantValue(t, c1, "k", "from client 2")
			})
		}
	})
}

// The first caller's context ends; the computation goes on for the others,
// on a context of its own, and its value is stored.
func TestFirstCallerCancelled(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		c := newCache[string](s, ns, time.Minute)
		first, cancel := context.WithCancel(context.Background())
		started, release := make(chan struct{}), make(chan struct{})
		var computations atomic.Int64
		compute := func(ctx context.Context) (string, error) {
			computations.Add(1)
			close(started)
			<-release
			return "value", ctx.Err()
		}
		firstErr := make(chan error, 1)
		go func() {
			_, err := memo.GetOrCompute(first, c, "k", compute, nil)
			firstErr <- err
		}()
		<-started
		cancel()
		if err := <-firstErr; !errors.Is(err, context.Canceled) {
			t.Fatalf("first caller: got %v; want Canceled", err)
		}
		second := make(chan result, 1)
		go func() {
			v, err := memo.GetOrCompute(context.Background(), c, "k", compute, nil)
			second <- result{v, err}
		}()
		waitFor(t, "the second caller to join the flight", func() bool { return c.Stats().Misses == 2 })
		close(release)
		if r := <-second; r.err != nil || r.v != "value" {
			t.Fatalf("second caller = %q, %v; want value", r.v, r.err)
		}
		if n := computations.Load(); n != 1 {
			t.Fatalf("computations = %d; want 1", n)
		}
		wantValue(t, c, "k", "value")
	})
}

// A not-found answer is cached in the key's own entry: the computation runs
// once for both clients, later calls get ErrNotFound, a plain Get sees a
// miss, a value written over it wins, and after NegativeTTL it is computed
// again.
func TestNegativeCaching(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		// The entry's logical expiry is in milliseconds on every store,
		// Memcached too (the physical one is later there).
		const negativeTTL = 200 * time.Millisecond
		opts := &memo.Options{NegativeTTL: negativeTTL}
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Minute)
		var computations atomic.Int64
		missing := func(context.Context) (string, error) {
			computations.Add(1)
			return "", memo.ErrNotFound
		}
		for _, c := range []*cache.Cache[string, string]{c1, c2, c1} {
			if _, err := memo.GetOrCompute(ctx, c, "ghost", missing, opts); !errors.Is(err, memo.ErrNotFound) {
				t.Fatalf("got %v; want ErrNotFound", err)
			}
		}
		if got := computations.Load(); got != 1 {
			t.Fatalf("computations = %d; want 1 (the answer was not cached)", got)
		}
		if st1, st2 := c1.Stats(), c2.Stats(); st1.NegativeHits != 1 || st2.NegativeHits != 1 || st1.Errors != 0 {
			t.Fatalf("stats = %+v, %+v; want a negative hit on each client and no error", st1, st2)
		}
		if e := entry(t, c1, "ghost"); !e.NotFound || e.Lease || e.HasValue {
			t.Fatalf("entry = %+v; want a not-found entry without a lease", e)
		}
		if _, found, err := c2.Get(ctx, "ghost"); found || err != nil {
			t.Fatalf("plain Get of a negatively cached key: found %v, err %v; want a miss", found, err)
		}
		// A value written meanwhile replaces the not-found answer.
		if err := c2.Set(ctx, "ghost", "real"); err != nil {
			t.Fatal(err)
		}
		if v, err := memo.GetOrCompute(ctx, c1, "ghost", missing, opts); err != nil || v != "real" {
			t.Fatalf("after a real value: %q, %v; want the value", v, err)
		}
		if _, err := c2.Delete(ctx, "ghost"); err != nil {
			t.Fatal(err)
		}
		if _, err := memo.GetOrCompute(ctx, c1, "ghost", missing, opts); !errors.Is(err, memo.ErrNotFound) || computations.Load() != 2 {
			t.Fatalf("after the delete: %v, %d computations; want ErrNotFound computed again", err, computations.Load())
		}
		// After NegativeTTL the computation runs again.
		time.Sleep(time.Until(entry(t, c1, "ghost").FreshUntil) + time.Millisecond)
		if _, err := memo.GetOrCompute(ctx, c2, "ghost", missing, opts); !errors.Is(err, memo.ErrNotFound) || computations.Load() != 3 {
			t.Fatalf("after NegativeTTL: %v, %d computations; want it computed again", err, computations.Load())
		}
	})
}

// A computation's ErrNotFound that wraps another error keeps it: the
// caller's error matches both (fmt.Errorf("%w: %w", memo.ErrNotFound,
// sql.ErrNoRows)). A later call answered by the cached not-found gets
// ErrNotFound alone: the cause is not stored.
func TestNotFoundKeepsCause(t *testing.T) {
	ctx := context.Background()
	noRows := func(context.Context) (string, error) {
		return "", fmt.Errorf("%w: %w", memo.ErrNotFound, sql.ErrNoRows)
	}
	s := memStore(t)
	tests := []struct {
		name string
		call func(c *cache.Cache[string, string]) error
	}{
		{"GetOrCompute", func(c *cache.Cache[string, string]) error {
			_, err := memo.GetOrCompute(ctx, c, "k", noRows, nil)
			return err
		}},
		{"GetOrCompute with NegativeTTL", func(c *cache.Cache[string, string]) error {
			_, err := memo.GetOrCompute(ctx, c, "k", noRows, &memo.Options{NegativeTTL: time.Minute})
			return err
		}},
		{"FailOpen", func(c *cache.Cache[string, string]) error {
			fc := newCache[string](failing{s}, c.Namespace(), time.Minute)
			_, err := memo.GetOrCompute(ctx, fc, "k", noRows, &memo.Options{FailOpen: true})
			return err
		}},
		{"Func", func(c *cache.Cache[string, string]) error {
			m := memo.Func(c, func(ctx context.Context, _ string) (string, error) { return noRows(ctx) }, nil)
			defer m.Close()
			_, err := m.Get(ctx, "k")
			return err
		}},
		{"Func GetMulti", func(c *cache.Cache[string, string]) error {
			m := memo.Func(c, func(ctx context.Context, _ string) (string, error) { return noRows(ctx) }, &memo.Options{NegativeTTL: time.Minute})
			defer m.Close()
			_, err := m.GetMulti(ctx, []string{"k"})
			var kerrs memo.KeyErrors[string]
			if !errors.As(err, &kerrs) {
				return err
			}
			// Cached as not found all the same.
			if _, err := m.Get(ctx, "k"); !errors.Is(err, memo.ErrNotFound) || c.Stats().NegativeHits != 1 {
				t.Errorf("Get after GetMulti = %v (stats %+v); want a negative hit", err, c.Stats())
			}
			return kerrs["k"]
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache[string](s, teststores.Namespace("cause"), time.Minute)
			err := tt.call(c)
			if !errors.Is(err, memo.ErrNotFound) || !errors.Is(err, sql.ErrNoRows) {
				t.Fatalf("got %v; want an error matching ErrNotFound and sql.ErrNoRows", err)
			}
		})
	}
	t.Run("cached", func(t *testing.T) {
		c := newCache[string](s, "cause-cached", time.Minute)
		opts := &memo.Options{NegativeTTL: time.Minute}
		memo.GetOrCompute(ctx, c, "k", noRows, opts)
		_, err := memo.GetOrCompute(ctx, c, "k", noRows, opts)
		if !errors.Is(err, memo.ErrNotFound) || errors.Is(err, sql.ErrNoRows) || c.Stats().NegativeHits != 1 {
			t.Fatalf("got %v (stats %+v); want a negative hit matching ErrNotFound only", err, c.Stats())
		}
	})
}

// Bytes in the cache that do not decode are a miss: recomputed,
// overwritten, counted in Stats.Healed.
func TestCorruptValueHeals(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"entry header", []byte{cache.EntryMagic, 0xff, 0x00}},
		{"plain bytes", []byte("not msgpack")},
	}
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := context.Background()
				c := newCache[profile](s, teststores.Namespace(ns), time.Minute)
				if err := s.Set(ctx, c.Key("u"), tt.data, 0); err != nil {
					t.Fatal(err)
				}
				if _, _, err := c.Get(ctx, "u"); !errors.Is(err, codec.ErrDecode) {
					t.Fatalf("plain Get of corrupt bytes: %v; want ErrDecode", err)
				}
				v, err := memo.GetOrCompute(ctx, c, "u", func(context.Context) (profile, error) { return profile{7, "x"}, nil }, nil)
				if err != nil || v.ID != 7 {
					t.Fatalf("GetOrCompute over corrupt bytes = %v, %v", v, err)
				}
				if got, found, err := c.Get(ctx, "u"); err != nil || !found || got.ID != 7 {
					t.Fatalf("after healing: %v, %v, %v", got, found, err)
				}
				if st := c.Stats(); st.Healed != 1 || st.Computations != 1 {
					t.Fatalf("stats = %+v; want 1 healed", st)
				}
			})
		}
	})
}

// sleepPastRefreshPoint waits until the value in k, written with ttl, is
// past the refresh point ahead (the fraction of ttl since it was written).
func sleepPastRefreshPoint[V any](t *testing.T, c *cache.Cache[string, V], k string, ttl time.Duration, ahead float64) {
	t.Helper()
	e := entry(t, c, k)
	if e.Written.IsZero() {
		t.Fatalf("%s holds no entry with a time of writing", k)
	}
	time.Sleep(time.Until(e.Written.Add(time.Duration(float64(ttl)*ahead))) + time.Millisecond)
}

// Refresh-ahead across two clients: past the refresh point callers get the
// cached value at once, one refresh (of one client) computes the next
// value while readers still get the old one, and replaces it.
func TestRefreshAhead(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		const ttl, ahead = time.Minute, 0.001 // the refresh point: 60ms after a write
		c1, c2, _, _ := twoClients[int64](t, b, s, ns, ttl)
		var version atomic.Int64
		refreshing, release := make(chan struct{}), make(chan struct{})
		fn := func(context.Context, string) (int64, error) {
			n := version.Add(1)
			if n == 2 {
				close(refreshing)
				<-release
			}
			return n, nil
		}
		opts := &memo.Options{RefreshAhead: ahead}
		m1, m2 := memo.Func(c1, fn, opts), memo.Func(c2, fn, opts)
		defer m1.Close()
		defer m2.Close()
		if v, err := m1.Get(ctx, "k"); err != nil || v != 1 {
			t.Fatalf("first Get = %d, %v; want 1", v, err)
		}
		sleepPastRefreshPoint(t, c1, "k", ttl, ahead)

		getAll := func(m *memo.Memo[string, int64]) {
			var wg sync.WaitGroup
			for range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if v, err := m.Get(ctx, "k"); err != nil || v != 1 {
						t.Errorf("Get past the refresh point = %d, %v; want the cached 1 at once", v, err)
					}
				}()
			}
			wg.Wait()
		}
		getAll(m1)
		<-refreshing
		// The refresh's lease is in the entry beside the value: the other
		// client reads the value and does not refresh it too.
		if e := entry(t, c2, "k"); !e.Lease || !e.HasValue || e.Value != 1 {
			t.Fatalf("entry while refreshing = %+v; want the value 1 with a lease", e)
		}
		getAll(m2)
		st1, st2 := c1.Stats(), c2.Stats()
		if st1.Hits != 10 || st2.Hits != 10 || st1.Misses != 1 || st2.Misses != 0 {
			t.Fatalf("stats = %+v, %+v; want 10 hits on each client after the first miss", st1, st2)
		}
		close(release)
		waitValue(t, c2, "k", 2)
		assertNoLease(t, c2, "k")
		st1, st2 = c1.Stats(), c2.Stats()
		if st1.Refreshes != 1 || st2.Refreshes != 0 || st1.Computations != 2 || st2.Computations != 0 {
			t.Fatalf("stats = %+v, %+v; want 1 refresh on client 1 only, 2 computations in all", st1, st2)
		}
		if n := version.Load(); n != 2 {
			t.Fatalf("computations = %d; want 2", n)
		}
	})
}

// A refresh that fails is counted in Stats.BackgroundErrors (no caller
// waits for it): a computation that fails, and a lease that the store does
// not take. The cached value stays, without the refresh's lease.
func TestRefreshErrorCounted(t *testing.T) {
	const ttl, ahead = time.Minute, 0.001
	tests := []struct {
		name      string
		fnFails   bool // the refresh's computation fails
		swapFails bool // the store fails to swap in the refresh's lease
	}{
		{"computation", true, false},
		{"lease", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := &failingWrites{Store: memStore(t)}
			c := newCache[int64](s, "m", ttl)
			var calls atomic.Int64
			m := memo.Func(c, func(context.Context, string) (int64, error) {
				if calls.Add(1) > 1 && tt.fnFails {
					return 0, errors.New("source down")
				}
				return calls.Load(), nil
			}, &memo.Options{RefreshAhead: ahead})
			defer m.Close()
			if v, err := m.Get(ctx, "k"); err != nil || v != 1 {
				t.Fatalf("first Get = %d, %v", v, err)
			}
			sleepPastRefreshPoint(t, c, "k", ttl, ahead)
			s.swapFails = tt.swapFails
			if v, err := m.Get(ctx, "k"); err != nil || v != 1 {
				t.Fatalf("Get past the refresh point = %d, %v; want the cached 1", v, err)
			}
			waitFor(t, "the refresh's error to be counted", func() bool { return c.Stats().BackgroundErrors > 0 })
			m.Close() // the refresh has ended
			s.swapFails = false
			if st := c.Stats(); st.BackgroundErrors != 1 {
				t.Fatalf("stats = %+v; want 1 background error", st)
			}
			if e := entry(t, c, "k"); e.Lease || !e.HasValue || e.Value != 1 {
				t.Fatalf("entry after the failed refresh = %+v; want the value 1 without a lease", e)
			}
		})
	}
}

// FailOpen: a store that fails does not stop the computation. On memory
// the store fails by a wrapper; on each server backend, the server is down
// (a closed port).
func TestFailOpen(t *testing.T) {
	teststores.Run(t, func(t *testing.T, b teststores.Backend) {
		var s cache.Store
		if b.Unreachable != nil {
			s = b.Unreachable(t)
		} else {
			s = failing{b.New(t)}
		}
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c := newCache[string](s, "f", time.Minute)
		var computations atomic.Int64
		compute := func(context.Context) (string, error) {
			computations.Add(1)
			return "value", nil
		}
		if _, err := memo.GetOrCompute(ctx, c, "k", compute, nil); err == nil {
			t.Fatal("a failing store without FailOpen: no error")
		}
		if got := computations.Load(); got != 0 {
			t.Fatalf("computations without FailOpen = %d; want 0", got)
		}
		opts := &memo.Options{FailOpen: true}
		v, err := memo.GetOrCompute(ctx, c, "k", compute, opts)
		if err != nil || v != "value" {
			t.Fatalf("FailOpen = %q, %v; want value", v, err)
		}
		if got := computations.Load(); got != 1 {
			t.Fatalf("computations = %d; want 1", got)
		}
		// The read failed: computed at once, nothing written.
		if st := c.Stats(); st.FailOpen != 1 || st.Computations != 1 || st.Sets != 0 {
			t.Fatalf("stats = %+v; want 1 fail-open, 1 computation, no set", st)
		}
		got, err := memo.GetOrComputeMulti(ctx, c, []string{"a", "b"}, func(_ context.Context, missing []string) (map[string]string, error) {
			out := map[string]string{}
			for _, k := range missing {
				out[k] = "multi " + k
			}
			return out, nil
		}, opts)
		if err != nil || got["a"] != "multi a" || got["b"] != "multi b" {
			t.Fatalf("GetOrComputeMulti with FailOpen = %v, %v", got, err)
		}
		m := memo.Func(c, func(_ context.Context, k string) (string, error) { return "func " + k, nil }, opts)
		defer m.Close()
		if v, err := m.Get(ctx, "x"); err != nil || v != "func x" {
			t.Fatalf("Func with FailOpen = %q, %v", v, err)
		}
		if st := c.Stats(); st.FailOpen != 3 || st.Computations != 3 {
			t.Fatalf("stats = %+v; want 3 fail-opens, 3 computations", st)
		}
	})
}

// FailOpen when the read works but taking the lease fails: computed, not
// stored. Without FailOpen, the caller gets the store's error.
func TestFailOpenWhenLeaseFails(t *testing.T) {
	ctx := context.Background()
	c := newCache[string](&failingWrites{Store: memStore(t), addFails: true}, "m", time.Minute)
	compute := func(context.Context) (string, error) { return "value", nil }
	if _, err := memo.GetOrCompute(ctx, c, "k", compute, nil); !errors.Is(err, errDown) {
		t.Fatalf("without FailOpen: %v; want the store's error", err)
	}
	if v, err := memo.GetOrCompute(ctx, c, "k", compute, &memo.Options{FailOpen: true}); err != nil || v != "value" {
		t.Fatalf("with FailOpen: %q, %v; want value", v, err)
	}
	assertNoEntry(t, c, "k")
	if st := c.Stats(); st.FailOpen != 1 || st.Computations != 1 || st.Errors != 2 {
		t.Fatalf("stats = %+v; want 1 fail-open, 1 computation, 2 store errors", st)
	}
}

// A value the store fails to write is still returned, the failure is
// counted in Stats.BackgroundErrors, and the lease is given up rather than
// left to block the key's other callers until it ends.
func TestValueWriteFails(t *testing.T) {
	ctx := context.Background()
	s := &failingWrites{Store: memStore(t), swapFails: true}
	c := newCache[string](s, "m", time.Minute)
	v, err := memo.GetOrCompute(ctx, c, "k", func(context.Context) (string, error) { return "value", nil }, nil)
	if err != nil || v != "value" {
		t.Fatalf("GetOrCompute = %q, %v; want the value", v, err)
	}
	if st := c.Stats(); st.BackgroundErrors != 1 || st.Sets != 0 {
		t.Fatalf("stats = %+v; want 1 background error, no set", st)
	}
	assertNoEntry(t, c, "k")
}

// ComputeTimeout bounds the computation: it sees the deadline, its callers
// get DeadlineExceeded, and the lease is given up at once: another client
// computes without waiting.
func TestComputeTimeout(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		// The caller's own bound ends with a cause of its own, not
		// DeadlineExceeded.
		ctx, cancel := context.WithTimeoutCause(context.Background(), bound, errors.New("the caller gave up"))
		defer cancel()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Minute)
		const timeout = 100 * time.Millisecond
		var deadline time.Time
		start := time.Now()
		_, err := memo.GetOrCompute(ctx, c1, "k", func(ctx context.Context) (string, error) {
			d, ok := ctx.Deadline()
			if !ok {
				t.Error("the computation's context has no deadline")
			}
			deadline = d
			<-ctx.Done()
			return "", ctx.Err()
		}, &memo.Options{ComputeTimeout: timeout})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v; want DeadlineExceeded", err)
		}
		if deadline.Before(start) || deadline.After(start.Add(timeout+bound)) {
			t.Fatalf("the computation's deadline is %v after the call; want about %v", deadline.Sub(start), timeout)
		}
		assertNoEntry(t, c1, "k")
		v, err := memo.GetOrCompute(ctx, c2, "k", func(context.Context) (string, error) { return "value", nil }, nil)
		if err != nil || v != "value" {
			t.Fatalf("next caller = %q, %v", v, err)
		}
		if st := c2.Stats(); st.LeaseWaits != 0 || st.Computations != 1 {
			t.Fatalf("next caller's stats = %+v; want it to compute without waiting", st)
		}
	})
}

// Caches of two value types over one key share no flight: the second meets
// the first through its lease in the store, waits for it and reads the
// value it wrote. Views of one cache (WithTTL) share their flights.
func TestFlightsSeparateValueTypes(t *testing.T) {
	ctx := context.Background()
	s := memStore(t)
	strs := cache.New[string, string](s, &cache.Options[string, string]{Namespace: "m", TTL: time.Minute})
	raw := cache.New[string, []byte](s, &cache.Options[string, []byte]{Namespace: "m", TTL: time.Minute})
	bl := startBlocked(t, "x", func(compute func(context.Context) (string, error)) (string, error) {
		return memo.GetOrCompute(ctx, strs, "k", compute, nil)
	})
	got := make(chan []byte, 1)
	go func() {
		v, err := memo.GetOrCompute(ctx, raw, "k", func(context.Context) ([]byte, error) { return []byte("y"), nil }, nil)
		if err != nil {
			t.Error(err)
		}
		got <- v
	}()
	waitFor(t, "the []byte cache to wait for the lease", func() bool { return raw.Stats().LeaseWaits == 1 })
	if r := bl.finish(t); r.err != nil || r.v != "x" {
		t.Fatalf("string cache = %q, %v", r.v, r.err)
	}
	if v := <-got; string(v) != "x" {
		t.Fatalf("[]byte cache got %q; want the value the string cache stored", v)
	}
	if st := raw.Stats(); st.Computations != 0 {
		t.Fatalf("[]byte cache stats = %+v; want no computation", st)
	}
}

func TestViewsShareFlights(t *testing.T) {
	ctx := context.Background()
	c := newCache[string](memStore(t), "m", time.Minute)
	view := c.WithTTL(time.Hour)
	bl := startBlocked(t, "x", func(compute func(context.Context) (string, error)) (string, error) {
		return memo.GetOrCompute(ctx, c, "k", compute, nil)
	})
	got := make(chan result, 1)
	go func() {
		v, err := memo.GetOrCompute(ctx, view, "k", func(context.Context) (string, error) { return "y", nil }, nil)
		got <- result{v, err}
	}()
	waitFor(t, "the view's call to join the flight", func() bool { return c.Stats().Misses == 2 })
	bl.finish(t)
	if r := <-got; r.err != nil || r.v != "x" {
		t.Fatalf("the view's call = %q, %v; want the flight's value", r.v, r.err)
	}
	if st := c.Stats(); st.Computations != 1 || st.LeaseWaits != 0 {
		t.Fatalf("stats = %+v; want 1 computation and no lease wait", st)
	}
}

// A cache made with Options.Raw stores no entries, so no leases: memo
// refuses it with ErrRaw.
func TestRawCacheRefused(t *testing.T) {
	ctx := context.Background()
	c := cache.New[string, string](memStore(t), &cache.Options[string, string]{Raw: true})
	compute := func(context.Context) (string, error) { return "v", nil }
	if _, err := memo.GetOrCompute(ctx, c, "k", compute, nil); !errors.Is(err, cache.ErrRaw) {
		t.Errorf("GetOrCompute = %v; want ErrRaw", err)
	}
	if _, err := memo.GetOrComputeMulti(ctx, c, []string{"k"}, func(context.Context, []string) (map[string]string, error) {
		return nil, nil
	}, nil); !errors.Is(err, cache.ErrRaw) {
		t.Errorf("GetOrComputeMulti = %v; want ErrRaw", err)
	}
	m := memo.Func(c, func(context.Context, string) (string, error) { return "v", nil }, nil)
	defer m.Close()
	if _, err := m.Refresh(ctx, "k"); !errors.Is(err, cache.ErrRaw) {
		t.Errorf("Refresh = %v; want ErrRaw", err)
	}
}

// A caller whose context is cancelled with a cause of its own gets an
// error that matches context.Canceled, the cause, and names the key.
func TestCancelCause(t *testing.T) {
	cause := errors.New("the caller gave up")
	for _, multi := range []bool{false, true} {
		name := map[bool]string{false: "GetOrCompute", true: "GetOrComputeMulti"}[multi]
		t.Run(name, func(t *testing.T) {
			c := newCache[string](memStore(t), "m", time.Minute)
			ctx, cancel := context.WithCancelCause(context.Background())
			started, release := make(chan struct{}), make(chan struct{})
			compute := func() string {
				close(started)
				<-release
				return "v"
			}
			errc := make(chan error, 1)
			go func() {
				var err error
				if multi {
					_, err = memo.GetOrComputeMulti(ctx, c, []string{"k"}, func(context.Context, []string) (map[string]string, error) {
						return map[string]string{"k": compute()}, nil
					}, nil)
				} else {
					_, err = memo.GetOrCompute(ctx, c, "k", func(context.Context) (string, error) { return compute(), nil }, nil)
				}
				errc <- err
			}()
			<-started
			cancel(cause)
			err := <-errc
			close(release)
			waitValue(t, c, "k", "v") // the flight goes on, and ends
			var oe *cache.OpError
			if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) || !errors.As(err, &oe) || oe.Key != c.Key("k") {
				t.Fatalf("got %v; want an OpError on %q matching Canceled and the cause", err, c.Key("k"))
			}
		})
	}
}
