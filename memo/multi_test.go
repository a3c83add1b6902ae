package memo_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/codec"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/memo"
)

// computeAll returns a computation of GetOrComputeMulti that returns
// prefix+k for every key asked for, except those in absent, and records
// what it was asked for.
func computeAll(prefix string, asked *[][]string, mu *sync.Mutex, absent ...string) func(context.Context, []string) (map[string]string, error) {
	return func(_ context.Context, missing []string) (map[string]string, error) {
		mu.Lock()
		*asked = append(*asked, slices.Clone(missing))
		mu.Unlock()
		out := map[string]string{}
		for _, k := range missing {
			if !slices.Contains(absent, k) {
				out[k] = prefix + k
			}
		}
		return out, nil
	}
}

// Partial hits: one read of every key, one computation of the missing ones
// (a duplicate key counted once, corrupt bytes recomputed and healed), a
// key the computation does not return reported as ErrNotFound in a
// KeyErrors and cached as such; the other client then reads them all.
func TestGetOrComputeMulti(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c1, c2, s1, _ := twoClients[string](t, b, s, ns, time.Minute)
		if err := c1.Set(ctx, "1", "cached"); err != nil {
			t.Fatal(err)
		}
		if err := s.Set(ctx, c1.Key("4"), []byte{cache.EntryMagic}, 0); err != nil {
			t.Fatal(err)
		}
		opts := &memo.Options{NegativeTTL: time.Minute}
		var asked [][]string
		var mu sync.Mutex
		reads := s1.GetMultiCalls.Load()
		got, err := memo.GetOrComputeMulti(ctx, c1, []string{"1", "2", "3", "4", "2"}, computeAll("computed ", &asked, &mu, "3"), opts)
		var kerrs memo.KeyErrors[string]
		if !errors.As(err, &kerrs) || len(kerrs) != 1 || !errors.Is(kerrs["3"], memo.ErrNotFound) {
			t.Fatalf("err = %v; want KeyErrors with 3: ErrNotFound", err)
		}
		if !errors.Is(err, memo.ErrNotFound) {
			t.Fatalf("errors.Is(%v, ErrNotFound) = false; want KeyErrors to unwrap to its reasons", err)
		}
		if len(asked) != 1 || !slices.Equal(asked[0], []string{"2", "3", "4"}) {
			t.Fatalf("computation asked for %v; want one call for 2, 3 and 4, in the callers' order", asked)
		}
		if got["1"] != "cached" || got["2"] != "computed 2" || got["4"] != "computed 4" || len(got) != 3 {
			t.Fatalf("values = %v", got)
		}
		if n := s1.GetMultiCalls.Load() - reads; n != 1 {
			t.Fatalf("store reads = %d; want 1", n)
		}
		if st := c1.Stats(); st.Healed != 1 || st.Hits != 1 || st.Misses != 3 || st.Computations != 1 || st.Sets != 3 {
			t.Fatalf("stats = %+v; want 1 hit, 3 misses, 1 computation, 3 sets (the Set of 1, and 2 and 4), 1 healed", st)
		}
		for _, k := range []string{"2", "3", "4"} {
			assertNoLease(t, c1, k)
		}
		// The other client gets everything from the cache: 3 from the
		// negative cache.
		got, err = memo.GetOrComputeMulti(ctx, c2, []string{"1", "2", "3", "4"}, func(_ context.Context, missing []string) (map[string]string, error) {
			t.Errorf("computed %v again", missing)
			return nil, nil
		}, opts)
		if len(got) != 3 || !errors.Is(err, memo.ErrNotFound) {
			t.Fatalf("second call = %v, %v", got, err)
		}
		if st := c2.Stats(); st.Hits != 3 || st.NegativeHits != 1 || st.Misses != 0 {
			t.Fatalf("second call's stats = %+v; want 3 hits and 1 negative hit", st)
		}
	})
}

// A computation that fails on some keys (a KeyErrors) or on all of them
// (any other error, or a panic) reports them, caches none of them and gives
// their leases up.
func TestMultiKeyErrors(t *testing.T) {
	errShard := errors.New("shard down")
	tests := []struct {
		name    string
		compute func(context.Context, []string) (map[string]string, error)
		values  map[string]string
		errs    map[string]error
	}{
		{"some keys", func(context.Context, []string) (map[string]string, error) {
			return map[string]string{"a": "A", "b": "ignored"}, memo.KeyErrors[string]{"b": errShard}
		}, map[string]string{"a": "A"}, map[string]error{"b": errShard, "c": memo.ErrNotFound}},
		{"all keys", func(context.Context, []string) (map[string]string, error) {
			return map[string]string{"a": "A"}, errShard
		}, map[string]string{}, map[string]error{"a": errShard, "b": errShard, "c": errShard}},
		{"panic", func(context.Context, []string) (map[string]string, error) {
			panic("kaboom")
		}, map[string]string{}, map[string]error{"a": cache.ErrPanic, "b": cache.ErrPanic, "c": cache.ErrPanic}},
	}
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := context.Background()
				c := newCache[string](s, teststores.Namespace(ns), time.Minute)
				got, err := memo.GetOrComputeMulti(ctx, c, []string{"a", "b", "c"}, tt.compute, nil)
				var kerrs memo.KeyErrors[string]
				if !errors.As(err, &kerrs) || len(kerrs) != len(tt.errs) {
					t.Fatalf("err = %v; want a KeyErrors of %d keys", err, len(tt.errs))
				}
				for k, want := range tt.errs {
					if !errors.Is(kerrs[k], want) {
						t.Errorf("error of %s = %v; want %v", k, kerrs[k], want)
					}
				}
				if len(got) != len(tt.values) {
					t.Errorf("values = %v; want %v", got, tt.values)
				}
				for k, v := range tt.values {
					if got[k] != v {
						t.Errorf("values = %v; want %v", got, tt.values)
					}
				}
				for k := range tt.errs {
					assertNoEntry(t, c, k)
				}
			})
		}
	})
}

// A key being computed by a single-key caller is not computed again by a
// concurrent multi-key caller of the same cache, which reads the store
// once and joins that flight.
func TestMultiDedupesAgainstSingle(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		cs := teststores.NewCounting(s)
		c := newCache[string](cs, ns, time.Minute)
		bl := startBlocked(t, "single a", func(compute func(context.Context) (string, error)) (string, error) {
			return memo.GetOrCompute(ctx, c, "a", compute, nil)
		})
		reads := cs.GetMultiCalls.Load()
		multiDone := make(chan map[string]string, 1)
		go func() {
			got, err := memo.GetOrComputeMulti(ctx, c, []string{"a", "b"}, func(_ context.Context, missing []string) (map[string]string, error) {
				if len(missing) != 1 || missing[0] != "b" {
					t.Errorf("multi computed %v; want only b", missing)
				}
				return map[string]string{"b": "multi b"}, nil
			}, nil)
			if err != nil {
				t.Error(err)
			}
			multiDone <- got
		}()
		// The multi call joined the flight of a once it counted its two
		// misses.
		waitFor(t, "the multi call to miss", func() bool { return c.Stats().Misses == 3 })
		if r := bl.finish(t); r.v != "single a" {
			t.Fatalf("single = %q, %v", r.v, r.err)
		}
		if got := <-multiDone; got["a"] != "single a" || got["b"] != "multi b" {
			t.Fatalf("multi = %v; want a from the single flight and b computed", got)
		}
		if n := cs.GetMultiCalls.Load() - reads; n != 1 {
			t.Fatalf("the multi call read the store %d times; want 1", n)
		}
		if st := c.Stats(); st.Computations != 2 || st.LeaseWaits != 0 {
			t.Fatalf("stats = %+v; want 2 computations (a, then b), no lease wait", st)
		}
	})
}

// A single-key caller joins the computation of a running multi-key call of
// the same cache instead of computing the key again.
func TestSingleJoinsMulti(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[string](s, ns, time.Minute)
		started, release := make(chan struct{}), make(chan struct{})
		multiDone := make(chan map[string]string, 1)
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
		single := make(chan string, 1)
		go func() {
			v, err := memo.GetOrCompute(ctx, c, "a", func(context.Context) (string, error) {
				t.Error("the single-key call computed a; want it to join the multi call")
				return "single a", nil
			}, nil)
			if err != nil {
				t.Error(err)
			}
			single <- v
		}()
		// Release the multi computation once the single call has missed
		// (and so joined the flight of a).
		waitFor(t, "the single call to miss", func() bool { return c.Stats().Misses == 3 })
		close(release)
		if v := <-single; v != "multi a" {
			t.Fatalf("single = %q; want the multi call's value", v)
		}
		if got := <-multiDone; got["a"] != "multi a" || got["b"] != "multi b" {
			t.Fatalf("multi = %v", got)
		}
		if st := c.Stats(); st.Computations != 1 {
			t.Fatalf("stats = %+v; want 1 computation", st)
		}
	})
}

// Across clients, multi-key and single-key calls meet through the leases:
// a key whose lease the other client holds is waited for, not computed
// again, both ways.
func TestMultiAndSingleAcrossClients(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		t.Run("multi waits for single", func(t *testing.T) {
			c1, c2, _, _ := twoClients[string](t, b, s, teststores.Namespace(ns), time.Minute)
			bl := startBlocked(t, "single a", func(compute func(context.Context) (string, error)) (string, error) {
				return memo.GetOrCompute(ctx, c1, "a", compute, nil)
			})
			var asked [][]string
			var mu sync.Mutex
			multiDone := make(chan map[string]string, 1)
			go func() {
				got, err := memo.GetOrComputeMulti(ctx, c2, []string{"a", "b"}, computeAll("multi ", &asked, &mu), nil)
				if err != nil {
					t.Error(err)
				}
				multiDone <- got
			}()
			waitFor(t, "the multi call to wait for the lease of a", func() bool { return c2.Stats().LeaseWaits == 1 })
			bl.finish(t)
			if got := <-multiDone; got["a"] != "single a" || got["b"] != "multi b" {
				t.Fatalf("multi = %v; want a from the other client", got)
			}
			if len(asked) != 1 || !slices.Equal(asked[0], []string{"b"}) {
				t.Fatalf("multi computed %v; want only b", asked)
			}
		})
		t.Run("single waits for multi", func(t *testing.T) {
			c1, c2, _, s2 := twoClients[string](t, b, s, teststores.Namespace(ns), time.Minute)
			started, release := make(chan struct{}), make(chan struct{})
			multiDone := make(chan map[string]string, 1)
			go func() {
				got, err := memo.GetOrComputeMulti(ctx, c1, []string{"a", "b"}, func(_ context.Context, missing []string) (map[string]string, error) {
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
			single := make(chan result, 1)
			go func() {
				v, err := memo.GetOrCompute(ctx, c2, "a", func(context.Context) (string, error) {
					t.Error("the single-key call computed a; want it to wait for the multi call")
					return "single a", nil
				}, nil)
				single <- result{v, err}
			}()
			waitFor(t, "the single call to wait for the lease", func() bool { return s2.GetCalls.Load() >= 2 })
			close(release)
			if r := <-single; r.err != nil || r.v != "multi a" {
				t.Fatalf("single = %q, %v; want the multi call's value", r.v, r.err)
			}
			<-multiDone
			if st := c2.Stats(); st.LeaseWaits != 1 || st.Computations != 0 {
				t.Fatalf("single's stats = %+v; want 1 lease wait, no computation", st)
			}
		})
	})
}

// No stale sets for GetOrComputeMulti either: a key Set while the
// computation runs keeps the value set; the other keys are written.
func TestMultiSetDuringComputationWins(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Minute)
		started, release := make(chan struct{}), make(chan struct{})
		done := make(chan map[string]string, 1)
		go func() {
			got, err := memo.GetOrComputeMulti(ctx, c1, []string{"a", "b"}, func(_ context.Context, missing []string) (map[string]string, error) {
				close(started)
				<-release
				return map[string]string{"a": "computed a", "b": "computed b"}, nil
			}, nil)
			if err != nil {
				t.Error(err)
			}
			done <- got
		}()
		<-started
		if err := c2.Set(ctx, "a", "set meanwhile"); err != nil {
			t.Fatal(err)
		}
		close(release)
		if got := <-done; got["a"] != "computed a" || got["b"] != "computed b" {
			t.Fatalf("multi = %v; want the computed values", got)
		}
		wantValue(t, c2, "a", "set meanwhile")
		wantValue(t, c2, "b", "computed b")
	})
}

// A value that cannot be encoded fails nothing but its own write: the
// caller gets it, the failure is counted, and its lease is given up.
func TestMultiEncodeFailureIsPerKey(t *testing.T) {
	ctx := context.Background()
	picky := codec.Funcs(func(s string) ([]byte, error) {
		if s == "bad" {
			return nil, errors.New("unencodable")
		}
		return []byte(s), nil
	}, func(b []byte) (string, error) { return string(b), nil })
	c := cache.New[string, string](memStore(t), &cache.Options[string, string]{Codec: picky})
	got, err := memo.GetOrComputeMulti(ctx, c, []string{"a", "b"}, func(context.Context, []string) (map[string]string, error) {
		return map[string]string{"a": "good", "b": "bad"}, nil
	}, nil)
	if err != nil || got["a"] != "good" || got["b"] != "bad" {
		t.Fatalf("GetOrComputeMulti = %v, %v; want both values", got, err)
	}
	wantValue(t, c, "a", "good")
	assertNoEntry(t, c, "b")
	if st := c.Stats(); st.BackgroundErrors != 1 || st.Sets != 1 {
		t.Fatalf("stats = %+v; want 1 background error, 1 set", st)
	}
}

// GetOrComputeMulti caches a not-found answer over corrupt bytes too.
func TestMultiNegativeCachingOverCorruptBytes(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[profile](s, ns, time.Minute)
		if err := s.Set(ctx, c.Key("k"), []byte{cache.EntryMagic}, 0); err != nil {
			t.Fatal(err)
		}
		var calls atomic.Int64
		for range 3 {
			got, err := memo.GetOrComputeMulti(ctx, c, []string{"k"}, func(context.Context, []string) (map[string]profile, error) {
				calls.Add(1)
				return nil, nil // k does not exist
			}, &memo.Options{NegativeTTL: time.Minute})
			if len(got) != 0 || !errors.Is(err, memo.ErrNotFound) {
				t.Fatalf("GetOrComputeMulti = %v, %v; want ErrNotFound", got, err)
			}
		}
		if got := calls.Load(); got != 1 {
			t.Fatalf("computations = %d; want 1", got)
		}
		if st := c.Stats(); st.NegativeHits != 2 {
			t.Fatalf("stats = %+v; want 2 negative hits", st)
		}
	})
}

// The values GetOrComputeMulti writes carry their time of writing, as
// GetOrCompute's do: a single-key call with refresh-ahead then finds them
// fresh, and neither refreshes nor computes them.
func TestMultiValuesAreFresh(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[string](s, ns, time.Minute)
		opts := &memo.Options{RefreshAhead: 0.5}
		var asked [][]string
		var mu sync.Mutex
		if got, err := memo.GetOrComputeMulti(ctx, c, []string{"a", "b"}, computeAll("multi ", &asked, &mu), opts); err != nil || len(got) != 2 {
			t.Fatalf("GetOrComputeMulti = %v, %v", got, err)
		}
		for _, k := range []string{"a", "b"} {
			if e := entry(t, c, k); e.Written.IsZero() || e.Plain || !e.HasValue {
				t.Fatalf("entry of %s = %+v; want a value with its time of writing", k, e)
			}
		}
		var calls atomic.Int64
		m := memo.Func(c, func(context.Context, string) (string, error) {
			calls.Add(1)
			return "single", nil
		}, opts)
		if v, err := m.Get(ctx, "a"); err != nil || v != "multi a" {
			t.Fatalf("Get = %q, %v; want the multi call's value", v, err)
		}
		m.Close() // waits for a refresh, had one started
		if st := c.Stats(); calls.Load() != 0 || st.Refreshes != 0 || st.Computations != 1 {
			t.Fatalf("computations = %d, stats = %+v; want a fresh hit, nothing computed", calls.Load(), st)
		}
	})
}
