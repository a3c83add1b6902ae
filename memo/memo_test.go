package memo_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/codec"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/lock"
	"github.com/typedcache/typedcache/memo"
)

type profile struct {
	ID   int
	Name string
}

func forEachStore(t *testing.T, f func(t *testing.T, b teststores.Backend, s cache.Store, ns string)) {
	teststores.ForEach(t, "memotest", f)
}

func newCache[V any](s cache.Store, ns string, ttl time.Duration) *cache.Cache[string, V] {
	return cache.New[string, V](s, &cache.Options[string, V]{Namespace: ns, TTL: ttl})
}

// ttlFor scales a TTL to the backend's resolution (whole seconds on
// Memcached).
func ttlFor(b teststores.Backend, d time.Duration) time.Duration {
	if b.Name == "memcached" {
		return max(d.Round(time.Second), time.Second) * 2
	}
	return d
}

// Ported from aiocache's cached_stampede tests: two concurrent calls from
// two clients (two stores over one server, as two processes would be)
// make one computation, 4 gets and 1 set. On memory, the two "processes"
// are two wrappers of one store: distinct stores to memo (no shared
// flight), one store's data.
func TestStampedeTwoClients(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		other := s
		if b.Shared {
			other = b.New(t)
		}
		s1, s2 := teststores.NewCounting(s), teststores.NewCounting(other)
		c1, c2 := newCache[string](s1, ns, time.Minute), newCache[string](s2, ns, time.Minute)
		var computations atomic.Int64
		compute := func(context.Context) (string, error) {
			computations.Add(1)
			time.Sleep(300 * time.Millisecond)
			return "value", nil
		}
		var wg sync.WaitGroup
		for _, c := range []*cache.Cache[string, string]{c1, c2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := memo.GetOrCompute(ctx, c, "k", compute, nil)
				if err != nil || v != "value" {
					t.Errorf("GetOrCompute = %q, %v; want value", v, err)
				}
			}()
			time.Sleep(50 * time.Millisecond) // the first takes the lock
		}
		wg.Wait()
		if got := computations.Load(); got != 1 {
			t.Errorf("computations = %d; want 1", got)
		}
		if got := s1.GetCalls.Load() + s2.GetCalls.Load(); got != 4 {
			t.Errorf("gets = %d; want 4", got)
		}
		if got := s1.SetCalls.Load() + s2.SetCalls.Load(); got != 1 {
			t.Errorf("sets = %d; want 1", got)
		}
	})
}

// In one process, concurrent callers share one flight.
func TestOneComputationInProcess(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[profile](s, ns, time.Minute)
		var computations, inflight, maxInflight atomic.Int64
		stats := new(memo.Stats)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				cur := inflight.Add(1)
				for m := maxInflight.Load(); cur > m && !maxInflight.CompareAndSwap(m, cur); m = maxInflight.Load() {
				}
				v, err := memo.GetOrCompute(ctx, c, "u1", func(context.Context) (profile, error) {
					computations.Add(1)
					time.Sleep(100 * time.Millisecond)
					return profile{1, "ada"}, nil
				}, &memo.Options{Stats: stats})
				inflight.Add(-1)
				if err != nil || v.Name != "ada" {
					t.Errorf("GetOrCompute = %v, %v", v, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if maxInflight.Load() < 2 {
			t.Fatal("callers never overlapped: no contention")
		}
		if got := computations.Load(); got != 1 {
			t.Fatalf("computations = %d; want 1", got)
		}
		if st := stats.Snapshot(); st.Computations != 1 || st.Hits+st.Misses != 20 {
			t.Fatalf("stats = %+v", st)
		}
	})
}

// Ported: an error of the computation reaches the caller and nothing is
// cached; a cancelled computation releases the lock.
func TestComputeErrorNotCached(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[string](s, ns, time.Minute)
		boom := errors.New("boom")
		_, err := memo.GetOrCompute(ctx, c, "k", func(context.Context) (string, error) { return "", boom }, nil)
		if !errors.Is(err, boom) {
			t.Fatalf("got %v; want boom", err)
		}
		if _, found, _ := c.Get(ctx, "k"); found {
			t.Fatal("an error was cached")
		}
		assertUnlocked(t, s, c.Key("k"))

		_, err = memo.GetOrCompute(ctx, c, "k", func(context.Context) (string, error) { return "", context.Canceled }, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled computation: got %v; want Canceled", err)
		}
		assertUnlocked(t, s, c.Key("k"))

		// A panic reaches every waiter as an error, and the lock is released.
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := memo.GetOrCompute(ctx, c, "p", func(context.Context) (string, error) {
					<-gate
					panic("kaboom")
				}, nil)
				if !errors.Is(err, cache.ErrPanic) {
					t.Errorf("waiter of a panic: got %v; want ErrPanic", err)
				}
			}()
		}
		time.Sleep(50 * time.Millisecond)
		close(gate)
		wg.Wait()
		assertUnlocked(t, s, c.Key("p"))
		if _, found, _ := c.Get(ctx, "p"); found {
			t.Fatal("a panic was cached")
		}
	})
}

func assertUnlocked(t *testing.T, s cache.Store, key string) {
	t.Helper()
	if ok, err := s.Exists(context.Background(), key+"\x00lock"); ok || err != nil {
		t.Fatalf("lock of %s still held (err %v)", key, err)
	}
}

// The first caller's context ends; the others still get the value.
func TestFirstCallerCancelled(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		c := newCache[string](s, ns, time.Minute)
		first, cancel := context.WithCancel(context.Background())
		started := make(chan struct{})
		compute := func(ctx context.Context) (string, error) {
			close(started)
			time.Sleep(200 * time.Millisecond)
			return "value", ctx.Err()
		}
		firstErr := make(chan error, 1)
		go func() {
			_, err := memo.GetOrCompute(first, c, "k", compute, nil)
			firstErr <- err
		}()
		<-started
		second := make(chan string, 1)
		go func() {
			v, err := memo.GetOrCompute(context.Background(), c, "k", compute, nil)
			if err != nil {
				t.Error(err)
			}
			second <- v
		}()
		cancel()
		if err := <-firstErr; !errors.Is(err, context.Canceled) {
			t.Fatalf("first caller: got %v; want Canceled", err)
		}
		if v := <-second; v != "value" {
			t.Fatalf("second caller got %q; want value", v)
		}
	})
}

// With a lease shorter than the computation, every caller still returns,
// after waiting for the holder at most the lease.
func TestLeaseShorterThanComputation(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		lease := ttlFor(b, 200*time.Millisecond) / 2
		// Two wrappers of the one store, as two processes: the second
		// caller waits on the lock rather than on the first's in-process
		// flight.
		c := newCache[string](teststores.NewCounting(s), ns, time.Minute)
		c2 := newCache[string](teststores.NewCounting(s), ns, time.Minute)
		var computations atomic.Int64
		compute := func(context.Context) (string, error) {
			computations.Add(1)
			time.Sleep(2*lease + 300*time.Millisecond)
			return "value", nil
		}
		stats := new(memo.Stats)
		var wg sync.WaitGroup
		for _, cc := range []*cache.Cache[string, string]{c, c2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if v, err := memo.GetOrCompute(ctx, cc, "k", compute, &memo.Options{Lease: lease, Stats: stats}); err != nil || v != "value" {
					t.Errorf("GetOrCompute = %q, %v", v, err)
				}
			}()
			time.Sleep(20 * time.Millisecond)
		}
		wg.Wait()
		if ctx.Err() != nil {
			t.Fatal("callers did not return: deadlock")
		}
		st := stats.Snapshot()
		if st.LockWaits < 1 {
			t.Fatalf("stats = %+v; want a lock wait: the callers did not contend", st)
		}
		if got := computations.Load(); got < 1 || got > 2 {
			t.Fatalf("computations = %d; want 1 or 2", got)
		}
	})
}

// A not-found answer is cached apart from any value: the computation runs
// once, later calls get ErrNotFound, and a plain Get sees a miss.
func TestNegativeCaching(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		opts := &memo.Options{NegativeTTL: ttlFor(b, 300*time.Millisecond), Stats: new(memo.Stats)}
		// A []byte cache: under a codec that stores bytes as they are, no
		// value of the key can be mistaken for the marker, or the reverse.
		c := cache.New[string, []byte](s, &cache.Options[string, []byte]{Namespace: ns, Codec: codec.Bytes()})
		var computations atomic.Int64
		missing := func(context.Context) ([]byte, error) {
			computations.Add(1)
			return nil, memo.ErrNotFound
		}
		for range 3 {
			if _, err := memo.GetOrCompute(ctx, c, "ghost", missing, opts); !errors.Is(err, memo.ErrNotFound) {
				t.Fatalf("got %v; want ErrNotFound", err)
			}
		}
		if got := computations.Load(); got != 1 {
			t.Fatalf("computations = %d; want 1 (the answer was not cached)", got)
		}
		if _, found, err := c.Get(ctx, "ghost"); found || err != nil {
			t.Fatalf("plain Get of a negatively cached key: found %v, err %v; want a miss", found, err)
		}
		// The marker cannot shadow a real value written meanwhile.
		c.Set(ctx, "ghost", []byte("1"))
		if v, err := memo.GetOrCompute(ctx, c, "ghost", missing, opts); err != nil || string(v) != "1" {
			t.Fatalf("after a real value: %q, %v; want the value", v, err)
		}
		c.Delete(ctx, "ghost")
		// After NegativeTTL the computation runs again.
		deadline := time.Now().Add(opts.NegativeTTL + 5*time.Second)
		for computations.Load() == 1 {
			memo.GetOrCompute(ctx, c, "ghost", missing, opts)
			if time.Now().After(deadline) {
				t.Fatal("negative answer outlived NegativeTTL")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if st := opts.Stats.Snapshot(); st.NegativeHits < 2 {
			t.Fatalf("stats = %+v; want negative hits", st)
		}
	})
}

// Corrupt bytes in the cache are a miss: recomputed, overwritten, counted.
func TestCorruptValueHeals(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[profile](s, ns, time.Minute)
		if err := s.Set(ctx, c.Key("u"), []byte{0xc1, 0xff, 0x00}, 0); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Get(ctx, "u"); !errors.Is(err, codec.ErrDecode) {
			t.Fatalf("plain Get of corrupt bytes: %v; want ErrDecode", err)
		}
		stats := new(memo.Stats)
		v, err := memo.GetOrCompute(ctx, c, "u", func(context.Context) (profile, error) { return profile{7, "x"}, nil }, &memo.Options{Stats: stats})
		if err != nil || v.ID != 7 {
			t.Fatalf("GetOrCompute over corrupt bytes = %v, %v", v, err)
		}
		if got, found, err := c.Get(ctx, "u"); err != nil || !found || got.ID != 7 {
			t.Fatalf("after healing: %v, %v, %v", got, found, err)
		}
		if st := stats.Snapshot(); st.Healed != 1 {
			t.Fatalf("stats = %+v; want 1 healed", st)
		}
	})
}

// Refresh-ahead: past the refresh point callers get the cached value at
// once and one refresh replaces it.
func TestRefreshAhead(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[int64](s, ns, time.Hour)
		var version atomic.Int64
		m := memo.Func(c, func(context.Context, string) (int64, error) {
			time.Sleep(50 * time.Millisecond)
			return version.Add(1), nil
		}, &memo.Options{RefreshAhead: 0.5})
		defer m.Close()
		if v, err := m.Get(ctx, "k"); err != nil || v != 1 {
			t.Fatalf("first Get = %d, %v; want 1", v, err)
		}
		expireFresh(t, s, c, "k") // the refresh point passes

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
		waitValue(t, c, "k", 2, time.Second)
		if st := m.Stats(); st.Refreshes != 1 || st.Computations != 2 {
			t.Fatalf("stats = %+v; want 1 refresh, 2 computations", st)
		}
	})
}

// negativeKey and freshKey are the store keys of the markers of k in c, as
// the package documents them.
func negativeKey[V any](c *cache.Cache[string, V], k string) string {
	return c.Key(k) + "\x00memo:none"
}

func freshKey[V any](c *cache.Cache[string, V], k string) string {
	return c.Key(k) + "\x00memo:fresh"
}

// expireFresh deletes the freshness marker of k in c, as its expiry would:
// the refresh point of k passes at once, long before its value expires.
func expireFresh[V any](t *testing.T, s cache.Store, c *cache.Cache[string, V], k string) {
	t.Helper()
	if n, err := s.Delete(context.Background(), freshKey(c, k)); n != 1 || err != nil {
		t.Fatalf("deleting the freshness marker of %s = %d, %v; want 1 deleted", k, n, err)
	}
}

// waitValue waits until k holds want in c (a background refresh stored it).
func waitValue[V comparable](t *testing.T, c *cache.Cache[string, V], k string, want V, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within + 5*time.Second)
	for {
		v, _, err := c.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v; want %v", k, v, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitGone(t *testing.T, s cache.Store, key string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within + 5*time.Second)
	for {
		ok, err := s.Exists(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never expired", key)
		}
		time.Sleep(20 * time.Millisecond)
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
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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
		stats := new(memo.Stats)
		v, err := memo.GetOrCompute(ctx, c, "k", compute, &memo.Options{FailOpen: true, Stats: stats})
		if err != nil || v != "value" {
			t.Fatalf("FailOpen = %q, %v; want value", v, err)
		}
		if got := computations.Load(); got != 1 {
			t.Fatalf("computations = %d; want 1", got)
		}
		// The read and the lock failed; the write too, and the value was
		// still returned.
		if st := stats.Snapshot(); st.FailOpen < 2 || st.WriteErrors != 1 || st.Computations != 1 {
			t.Fatalf("stats = %+v; want fail-opens, 1 write error, 1 computation", st)
		}
	})
}

var errDown = errors.New("store down")

// failing is a store whose every read, write and lock fails.
type failing struct{ cache.Store }

func (failing) Get(context.Context, string) ([]byte, error)                 { return nil, errDown }
func (failing) Set(context.Context, string, []byte, time.Duration) error    { return errDown }
func (failing) Add(context.Context, string, []byte, time.Duration) error    { return errDown }
func (failing) GetMulti(context.Context, []string) ([][]byte, error)        { return nil, errDown }
func (failing) TTL(context.Context, string) (time.Duration, error)          { return 0, errDown }
func (failing) DeleteIfEqual(context.Context, string, []byte) (bool, error) { return false, errDown }

func TestGetOrComputeMulti(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[profile](s, ns, time.Minute)
		c.Set(ctx, "1", profile{1, "cached"})
		s.Set(ctx, c.Key("4"), []byte("corrupt"), 0)
		stats := new(memo.Stats)
		var asked [][]string
		var mu sync.Mutex
		got, err := memo.GetOrComputeMulti(ctx, c, []string{"1", "2", "3", "4", "2"}, func(_ context.Context, missing []string) (map[string]profile, error) {
			mu.Lock()
			asked = append(asked, missing)
			mu.Unlock()
			out := map[string]profile{}
			for _, k := range missing {
				if k != "3" { // "3" does not exist
					out[k] = profile{Name: "computed " + k}
				}
			}
			return out, nil
		}, &memo.Options{NegativeTTL: time.Minute, Stats: stats})
		var kerrs memo.KeyErrors[string]
		if !errors.As(err, &kerrs) || len(kerrs) != 1 || !errors.Is(kerrs["3"], memo.ErrNotFound) {
			t.Fatalf("err = %v; want KeyErrors with 3: ErrNotFound", err)
		}
		if len(asked) != 1 || len(asked[0]) != 3 {
			t.Fatalf("computation asked for %v; want one call for the 3 missing keys", asked)
		}
		if got["1"].Name != "cached" || got["2"].Name != "computed 2" || got["4"].Name != "computed 4" || len(got) != 3 {
			t.Fatalf("values = %v", got)
		}
		if st := stats.Snapshot(); st.Healed != 1 || st.Hits != 1 || st.Misses != 3 {
			t.Fatalf("stats = %+v; want 1 hit, 3 misses, 1 healed", st)
		}
		// The second time, everything comes from the cache: "3" from the
		// negative cache.
		got, err = memo.GetOrComputeMulti(ctx, c, []string{"1", "2", "3", "4"}, func(_ context.Context, missing []string) (map[string]profile, error) {
			t.Errorf("computed %v again", missing)
			return nil, nil
		}, &memo.Options{NegativeTTL: time.Minute})
		if len(got) != 3 || !errors.Is(err, memo.ErrNotFound) {
			t.Fatalf("second call = %v, %v", got, err)
		}
	})
}

// A key being computed by a single-key caller is not computed again by a
// concurrent multi-key caller, which reads the store once.
func TestMultiDedupesAgainstSingle(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		cs := teststores.NewCounting(s)
		c := newCache[string](cs, ns, time.Minute)
		started, release := make(chan struct{}), make(chan struct{})
		single := make(chan string)
		go func() {
			v, _ := memo.GetOrCompute(ctx, c, "a", func(context.Context) (string, error) {
				close(started)
				<-release
				return "single a", nil
			}, nil)
			single <- v
		}()
		<-started
		readsBefore := cs.GetMultiCalls.Load()
		multiDone := make(chan map[string]string)
		go func() {
			got, err := memo.GetOrComputeMulti(ctx, c, []string{"a", "b"}, func(_ context.Context, missing []string) (map[string]string, error) {
				if len(missing) != 1 || missing[0] != "b" {
					t.Errorf("multi computed %v; want only b", missing)
				}
				// The multi call joined the flight of a before computing
				// b, while that flight still ran: release it now.
				close(release)
				return map[string]string{"b": "multi b"}, nil
			}, nil)
			if err != nil {
				t.Error(err)
			}
			multiDone <- got
		}()
		if v := <-single; v != "single a" {
			t.Fatalf("single = %q", v)
		}
		got := <-multiDone
		if got["a"] != "single a" || got["b"] != "multi b" {
			t.Fatalf("multi = %v; want a from the single flight and b computed", got)
		}
		if n := cs.GetMultiCalls.Load() - readsBefore; n != 1 {
			t.Fatalf("the multi call read the store %d times; want 1", n)
		}
	})
}

// A single-key caller joins the computation of a running multi-key call
// instead of computing the key again.
func TestSingleJoinsMulti(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[string](s, ns, time.Minute)
		started, release := make(chan struct{}), make(chan struct{})
		multiDone := make(chan map[string]string)
		go func() {
			got, err := memo.GetOrComputeMulti(ctx, c, []string{"a", "b"}, func(_ context.Context, missing []string) (map[string]string, error) {
				close(started)
				<-release
				return map[string]string{"a": "multi a", "b": "multi b"}, nil
			}, nil)
			if err != nil {
				t.Error(err)
			}
			multiDone <- got
		}()
		<-started
		stats := new(memo.Stats)
		single := make(chan string)
		go func() {
			v, err := memo.GetOrCompute(ctx, c, "a", func(context.Context) (string, error) {
				t.Error("the single-key call computed a; want it to join the multi call")
				return "single a", nil
			}, &memo.Options{Stats: stats})
			if err != nil {
				t.Error(err)
			}
			single <- v
		}()
		// Release the multi computation once the single call has missed
		// (and so joined the flight of a).
		for stats.Misses.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		close(release)
		if v := <-single; v != "multi a" {
			t.Fatalf("single = %q; want the multi call's value", v)
		}
		if got := <-multiDone; got["a"] != "multi a" || got["b"] != "multi b" {
			t.Fatalf("multi = %v", got)
		}
	})
}

// ComputeTimeout bounds the computation: it sees the deadline, its callers
// get DeadlineExceeded, and the lock is free at once for the next caller.
func TestComputeTimeout(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		// The caller's own bound ends with a cause of its own, not
		// DeadlineExceeded.
		ctx, cancel := context.WithTimeoutCause(context.Background(), 30*time.Second, errors.New("the caller gave up"))
		defer cancel()
		c := newCache[string](s, ns, time.Minute)
		const timeout = 200 * time.Millisecond
		var deadline time.Time
		start := time.Now()
		_, err := memo.GetOrCompute(ctx, c, "k", func(ctx context.Context) (string, error) {
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
		if deadline.Before(start) || deadline.After(start.Add(timeout+time.Second)) {
			t.Fatalf("the computation's deadline is %v after the call; want about %v", deadline.Sub(start), timeout)
		}
		// The lock was released: another caller takes it without waiting.
		l, err := lock.NewRedLock(c, "k", time.Minute, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := l.TryAcquire(ctx); !ok || err != nil {
			t.Fatalf("TryAcquire after the timeout = %v, %v; want the lock free", ok, err)
		}
		l.Release(ctx)
		if _, found, _ := c.Get(ctx, "k"); found {
			t.Fatal("a timed-out computation was cached")
		}
	})
}

func TestFuncInvalidateRefresh(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[int64](s, ns, time.Minute)
		var n atomic.Int64
		m := memo.Func(c, func(_ context.Context, k string) (int64, error) {
			if k == "none" {
				return 0, memo.ErrNotFound
			}
			return n.Add(1), nil
		}, &memo.Options{NegativeTTL: time.Minute})
		defer m.Close()
		for range 3 {
			if v, err := m.Get(ctx, "k"); v != 1 || err != nil {
				t.Fatalf("Get = %d, %v; want 1", v, err)
			}
		}
		if v, err := m.Refresh(ctx, "k"); v != 2 || err != nil {
			t.Fatalf("Refresh = %d, %v; want 2", v, err)
		}
		if v, _ := m.Get(ctx, "k"); v != 2 {
			t.Fatalf("Get after Refresh = %d; want 2", v)
		}
		m.Get(ctx, "none")
		if err := m.Invalidate(ctx, "k", "none"); err != nil {
			t.Fatal(err)
		}
		if v, _ := m.Get(ctx, "k"); v != 3 {
			t.Fatalf("Get after Invalidate = %d; want 3", v)
		}
		vals, err := m.GetMulti(ctx, []string{"k", "x", "none"})
		if vals["k"] != 3 || vals["x"] != 4 || !errors.Is(err, memo.ErrNotFound) {
			t.Fatalf("GetMulti = %v, %v", vals, err)
		}
	})
}
