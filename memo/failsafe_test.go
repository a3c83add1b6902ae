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

// Fail-safe (Options.FailSafeMax, FailSafeThrottle): a value past its TTL
// stays in the store for FailSafeMax, and when the computation that would
// replace it fails, its callers get it instead of the failure. Each test
// runs on every store across two clients (twoClients): the value is
// filled through one client and the failure met through the other.

// failSafeTTL is the TTL of the values these tests let go stale. Fail-safe
// keeps them in the store long after it, and their logical expiry is in
// milliseconds in the entry on every store, Memcached included: it needs
// no scaling (ttlFor).
const failSafeTTL = 200 * time.Millisecond

// failSafeThrottle is how long a stale value served is fresh again: long
// enough for the few calls the tests make within it on a loaded machine.
const failSafeThrottle = 500 * time.Millisecond

// sleepPastFresh waits until the entries of keys in c are all past their
// logical expiry.
func sleepPastFresh[V any](t *testing.T, c *cache.Cache[string, V], keys ...string) {
	t.Helper()
	var until time.Time
	for _, k := range keys {
		e := entry(t, c, k)
		if e.FreshUntil.IsZero() {
			t.Fatalf("%s has no logical expiry (entry %+v)", k, e)
		}
		if e.FreshUntil.After(until) {
			until = e.FreshUntil
		}
	}
	time.Sleep(time.Until(until) + time.Millisecond)
}

// wantFreshValue fails unless k's entry in c holds want, fresh, without a
// lease.
func wantFreshValue(t *testing.T, c *cache.Cache[string, string], k, want string) cache.Entry[string] {
	t.Helper()
	e := entry(t, c, k)
	if !e.HasValue || e.Value != want || e.Lease || !e.Fresh(time.Now()) {
		t.Fatalf("%s: entry %+v; want %q, fresh, without a lease", k, e, want)
	}
	return e
}

// The source fails (an error, a panic, ComputeTimeout) on a value past its
// TTL: both clients get the stale value with a nil error, the failure is
// counted in Stats.StaleServed, and the stale value is fresh again for
// FailSafeThrottle, so that the next calls of both clients do not ask the
// source. Once the throttle has passed, the source is asked again, and its
// new value replaces the stale one. Without FailSafeMax the same failure is
// the caller's error. A plain Get past the TTL is a miss all along.
func TestFailSafe(t *testing.T) {
	kinds := []struct {
		name    string
		failure func() *step[string] // the source's second call
		timeout bool                 // ComputeTimeout ends it: the test never releases it
	}{
		{"error", func() *step[string] { return hangs(fails[string](errSource)) }, false},
		{"panic", func() *step[string] { return hangs(panics[string]()) }, false},
		{"compute timeout", func() *step[string] { return hangs(returns("too late")) }, true},
	}
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c1, c2, s1, _ := twoClients[string](t, b, s, ns, time.Hour)
		opts := &memo.Options{TTL: failSafeTTL, FailSafeMax: time.Minute, FailSafeThrottle: failSafeThrottle}
		timeoutOpts := *opts
		timeoutOpts.ComputeTimeout = 300 * time.Millisecond
		optsOf := func(timeout bool) *memo.Options {
			if timeout {
				return &timeoutOpts
			}
			return opts
		}
		loaders := map[string]*scripted[string]{}
		keys := []string{"off"}
		for _, k := range kinds {
			loaders[k.name] = newScripted(t, returns("v1"), k.failure(), returns("v2"))
			keys = append(keys, k.name)
		}
		loaders["off"] = newScripted(t, returns("v1"), fails[string](errSource))
		for _, k := range keys {
			if v, err := memo.GetOrCompute(ctx, c1, k, loaders[k].compute, opts); err != nil || v != "v1" {
				t.Fatalf("filling %s: %q, %v", k, v, err)
			}
		}
		sleepPastFresh(t, c1, keys...)

		// A plain Get past the TTL is a miss, though fail-safe keeps the
		// value in the store.
		wantAbsent(t, c2, "error")
		if e := entry(t, c2, "error"); !e.HasValue || e.Value != "v1" || e.Fresh(time.Now()) {
			t.Fatalf("entry past the TTL = %+v; want the stale v1 kept", e)
		}

		for _, k := range kinds {
			t.Run(k.name, func(t *testing.T) {
				ld := loaders[k.name]
				o := optsOf(k.timeout)
				st1, st2 := c1.Stats(), c2.Stats()
				call2 := goCall(func() (string, error) { return memo.GetOrCompute(ctx, c2, k.name, ld.compute, o) })
				ld.awaitStarted(2)
				gets := s1.GetCalls.Load()
				call1 := goCall(func() (string, error) { return memo.GetOrCompute(ctx, c1, k.name, ld.compute, o) })
				if !k.timeout {
					waitFor(t, "client 1 to wait for the lease", func() bool { return s1.GetCalls.Load() >= gets+2 })
					ld.release(2)
				}
				for i, c := range []*call[string]{call2, call1} {
					if v, err := c.wait(t); err != nil || v != "v1" {
						t.Fatalf("client %d got %q, %v; want the stale v1 and no error", 2-i, v, err)
					}
				}
				if k.timeout {
					if st := ld.step(2); !st.ctxDone || !errors.Is(st.cause, context.DeadlineExceeded) {
						t.Fatalf("the hung computation's ctx: ended %v, cause %v; want DeadlineExceeded", st.ctxDone, st.cause)
					}
				}
				n1, n2 := c1.Stats(), c2.Stats()
				if got := n2.StaleServed - st2.StaleServed; got != 1 {
					t.Fatalf("client 2 StaleServed +%d; want +1", got)
				}
				if got := n1.StaleServed - st1.StaleServed; got != 0 {
					t.Fatalf("client 1 StaleServed +%d; want 0 (it read the value stored again)", got)
				}
				if got := n1.LeaseWaits - st1.LeaseWaits; !k.timeout && got != 1 {
					t.Fatalf("client 1 LeaseWaits +%d; want +1 (contention)", got)
				}
				e := wantFreshValue(t, c1, k.name, "v1")
				if left := time.Until(e.FreshUntil); left > failSafeThrottle {
					t.Fatalf("the stale value is fresh for %v more; want at most the throttle %v", left, failSafeThrottle)
				}
				// Within the throttle, neither client asks the source.
				for i, c := range []*cache.Cache[string, string]{c1, c2} {
					if v, err := memo.GetOrCompute(ctx, c, k.name, ld.compute, o); err != nil || v != "v1" {
						t.Fatalf("client %d within the throttle: %q, %v; want v1", i+1, v, err)
					}
				}
				ld.wantCalls(2)
			})
		}

		// Without FailSafeMax the same failure is the caller's error, even
		// with a stale value in the store: the call's options decide.
		t.Run("off", func(t *testing.T) {
			st := c2.Stats()
			_, err := memo.GetOrCompute(ctx, c2, "off", loaders["off"].compute, &memo.Options{TTL: failSafeTTL})
			if !errors.Is(err, errSource) {
				t.Fatalf("without FailSafeMax: %v; want the source's error", err)
			}
			if got := c2.Stats().StaleServed - st.StaleServed; got != 0 {
				t.Fatalf("StaleServed +%d; want 0", got)
			}
			assertNoEntry(t, c1, "off")
		})

		// Past the throttle the source is asked again; it has recovered,
		// and its value replaces the stale one for both clients.
		names := make([]string, 0, len(kinds))
		for _, k := range kinds {
			names = append(names, k.name)
		}
		sleepPastFresh(t, c1, names...)
		for _, k := range kinds {
			ld := loaders[k.name]
			if v, err := memo.GetOrCompute(ctx, c1, k.name, ld.compute, optsOf(k.timeout)); err != nil || v != "v2" {
				t.Fatalf("%s past the throttle: %q, %v; want the recovered source's v2", k.name, v, err)
			}
			ld.wantCalls(3)
			wantValue(t, c2, k.name, "v2")
			if v, err := memo.GetOrCompute(ctx, c2, k.name, ld.compute, optsOf(k.timeout)); err != nil || v != "v2" {
				t.Fatalf("%s on client 2: %q, %v; want v2", k.name, v, err)
			}
		}
	})
}

// A not-found answer over a stale value is no failure: the caller gets
// ErrNotFound, not the stale value, and the answer is cached or not as
// NegativeTTL says.
func TestFailSafeNotFound(t *testing.T) {
	tests := []struct {
		name        string
		negativeTTL time.Duration
	}{
		{"not cached", 0},
		{"negative caching", time.Minute},
	}
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Hour)
		optsOf := func(neg time.Duration) *memo.Options {
			return &memo.Options{TTL: failSafeTTL, FailSafeMax: time.Minute, NegativeTTL: neg}
		}
		loaders := map[string]*scripted[string]{}
		for _, tt := range tests {
			loaders[tt.name] = newScripted(t, returns("v1"), notFound[string](), returns("v2"))
			if _, err := memo.GetOrCompute(ctx, c1, tt.name, loaders[tt.name].compute, optsOf(tt.negativeTTL)); err != nil {
				t.Fatal(err)
			}
		}
		sleepPastFresh(t, c1, "not cached", "negative caching")
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ld, opts := loaders[tt.name], optsOf(tt.negativeTTL)
				_, err := memo.GetOrCompute(ctx, c2, tt.name, ld.compute, opts)
				if !errors.Is(err, memo.ErrNotFound) {
					t.Fatalf("got %v; want ErrNotFound", err)
				}
				if st := c2.Stats(); st.StaleServed != 0 {
					t.Fatalf("stats = %+v; want no stale value served", st)
				}
				if tt.negativeTTL == 0 {
					// Nothing cached, and the stale value, which no longer
					// exists, is gone (no later failure serves it); the
					// next call asks the source again.
					assertNoEntry(t, c1, tt.name)
					if v, err := memo.GetOrCompute(ctx, c1, tt.name, ld.compute, opts); err != nil || v != "v2" {
						t.Fatalf("next call: %q, %v; want the source asked again", v, err)
					}
					ld.wantCalls(3)
					return
				}
				neg := c1.Stats().NegativeHits
				if _, err := memo.GetOrCompute(ctx, c1, tt.name, ld.compute, opts); !errors.Is(err, memo.ErrNotFound) {
					t.Fatalf("next call: %v; want the cached ErrNotFound", err)
				}
				if got := c1.Stats().NegativeHits - neg; got != 1 {
					t.Fatalf("client 1 NegativeHits +%d; want +1", got)
				}
				ld.wantCalls(2)
				wantAbsent(t, c2, tt.name)
			})
		}
	})
}

// breakable is a store whose writes fail while broken is set: a lease
// cannot be taken, nor a value written; reads work. It embeds a Counting
// wrapper, so that the store's optional interfaces (Watch, SwapIfEqual,
// AddLease) stay as they were.
type breakable struct {
	*teststores.Counting
	broken atomic.Bool
}

var errBroken = errors.New("store write failed")

func (s *breakable) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if s.broken.Load() {
		return errBroken
	}
	return s.Counting.Add(ctx, key, value, ttl)
}

func (s *breakable) AddLease(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if s.broken.Load() {
		return errBroken
	}
	return s.Counting.AddLease(ctx, key, value, ttl)
}

func (s *breakable) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if s.broken.Load() {
		return errBroken
	}
	return s.Counting.Set(ctx, key, value, ttl)
}

func (s *breakable) SwapIfEqual(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if s.broken.Load() {
		return false, errBroken
	}
	return s.Counting.SwapIfEqual(ctx, key, old, value, ttl)
}

func (s *breakable) CompareAndSwap(ctx context.Context, key string, value []byte, token cache.Token, ttl time.Duration) error {
	if s.broken.Load() {
		return errBroken
	}
	return s.Counting.CompareAndSwap(ctx, key, value, token, ttl)
}

func (s *breakable) DeleteIfEqual(ctx context.Context, key string, value []byte) (bool, error) {
	if s.broken.Load() {
		return false, errBroken
	}
	return s.Counting.DeleteIfEqual(ctx, key, value)
}

// Fail-safe with FailOpen: on a value past its TTL, the other client's
// store fails to take the lease; with FailOpen the source is asked without
// it, and when it fails too the stale value is served. A source that
// answers is served (and not stored: the store is failing). A bulk load
// serves the stale value likewise. Without FailOpen the store's failure is
// the caller's error.
func TestFailSafeFailOpen(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		other := s
		if b.Shared {
			other = b.New(t)
		}
		c1 := newCache[string](teststores.NewCounting(s), ns, time.Hour)
		br := &breakable{Counting: teststores.NewCounting(other)}
		c2 := newCache[string](br, ns, time.Hour)
		opts := &memo.Options{TTL: failSafeTTL, FailSafeMax: time.Minute, FailOpen: true}
		ld := newScripted(t, returns("v1"), fails[string](errSource), returns("v2"))
		if _, err := memo.GetOrCompute(ctx, c1, "k", ld.compute, opts); err != nil {
			t.Fatal(err)
		}
		sleepPastFresh(t, c1, "k")
		br.broken.Store(true)

		if v, err := memo.GetOrCompute(ctx, c2, "k", ld.compute, opts); err != nil || v != "v1" {
			t.Fatalf("store and source failing: %q, %v; want the stale v1", v, err)
		}
		if st := c2.Stats(); st.StaleServed != 1 || st.FailOpen != 1 {
			t.Fatalf("stats = %+v; want 1 stale value served, 1 fail-open", st)
		}
		if v, err := memo.GetOrCompute(ctx, c2, "k", ld.compute, opts); err != nil || v != "v2" {
			t.Fatalf("store failing, source answering: %q, %v; want the source's v2", v, err)
		}
		if st := c2.Stats(); st.StaleServed != 1 || st.FailOpen != 2 {
			t.Fatalf("stats = %+v; want 1 stale value served, 2 fail-opens", st)
		}
		if e := entry(t, c1, "k"); !e.HasValue || e.Value != "v1" || e.Lease || e.Fresh(time.Now()) {
			t.Fatalf("entry = %+v; want the stale v1 as it was", e)
		}
		// A bulk load likewise.
		got, err := memo.GetOrComputeMulti(ctx, c2, []string{"k"}, func(context.Context, []string) (map[string]string, error) {
			return nil, errSource
		}, opts)
		if err != nil || got["k"] != "v1" {
			t.Fatalf("GetOrComputeMulti, store and source failing: %v, %v; want the stale v1", got, err)
		}
		if st := c2.Stats(); st.StaleServed != 2 || st.FailOpen != 3 {
			t.Fatalf("stats = %+v; want 2 stale values served, 3 fail-opens", st)
		}
		noFailOpen := &memo.Options{TTL: failSafeTTL, FailSafeMax: time.Minute}
		if _, err := memo.GetOrCompute(ctx, c2, "k", ld.compute, noFailOpen); !errors.Is(err, errBroken) {
			t.Fatalf("without FailOpen: %v; want the store's error", err)
		}
		ld.wantCalls(3)
	})
}

// Fail-safe of bulk loads (Memo.GetMulti, GetOrComputeMulti): keys past
// their TTL whose computation fails, the whole batch or a key of it, are
// served their stale values with no error, stored fresh again for the
// throttle; the other keys get their new values.
func TestFailSafeMulti(t *testing.T) {
	tests := []struct {
		name   string
		fail   func(keys []string) (map[string]string, error)
		failed []string // the keys served stale
	}{
		{"batch error", func([]string) (map[string]string, error) { return nil, errSource }, []string{"a", "b"}},
		{"batch panic", func([]string) (map[string]string, error) { panic("the source panics") }, []string{"a", "b"}},
		{"key error", func([]string) (map[string]string, error) {
			return map[string]string{"b": "v2"}, memo.KeyErrors[string]{"a": errSource}
		}, []string{"a"}},
	}
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		opts := &memo.Options{TTL: failSafeTTL, FailSafeMax: time.Minute, FailSafeThrottle: time.Minute}
		type setup struct {
			c1, c2 *cache.Cache[string, string]
			m1, m2 *memo.Memo[string, string]
			calls  *atomic.Int64
		}
		setups := make([]setup, len(tests))
		for i, tt := range tests {
			// A namespace per case, so that they go stale together.
			c1, c2, _, _ := twoClients[string](t, b, s, teststores.Namespace(ns), time.Hour)
			calls := new(atomic.Int64)
			batch := func(_ context.Context, keys []string) (map[string]string, error) {
				if calls.Add(1) == 1 {
					return map[string]string{"a": "v1", "b": "v1"}, nil
				}
				return tt.fail(keys)
			}
			m1, m2 := memo.FuncBatch(c1, batch, opts), memo.FuncBatch(c2, batch, opts)
			t.Cleanup(m1.Close)
			t.Cleanup(m2.Close)
			if _, err := m1.GetMulti(ctx, []string{"a", "b"}); err != nil {
				t.Fatal(err)
			}
			setups[i] = setup{c1, c2, m1, m2, calls}
		}
		for _, su := range setups {
			sleepPastFresh(t, su.c1, "a", "b")
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c1, c2, m1, m2, calls := setups[i].c1, setups[i].c2, setups[i].m1, setups[i].m2, setups[i].calls
				got, err := m2.GetMulti(ctx, []string{"a", "b"})
				if err != nil || len(got) != 2 {
					t.Fatalf("GetMulti = %v, %v; want a value for each key and no error", got, err)
				}
				for _, k := range tt.failed {
					if got[k] != "v1" {
						t.Fatalf("%s = %q; want the stale v1", k, got[k])
					}
					wantFreshValue(t, c1, k, "v1")
				}
				if len(tt.failed) == 1 && got["b"] != "v2" {
					t.Fatalf("b = %q; want the new v2", got["b"])
				}
				if st := c2.Stats(); st.StaleServed != int64(len(tt.failed)) {
					t.Fatalf("stats = %+v; want %d stale values served", st, len(tt.failed))
				}
				// Within the throttle, no computation.
				if got, err := m1.GetMulti(ctx, []string{"a", "b"}); err != nil || len(got) != 2 || calls.Load() != 2 {
					t.Fatalf("GetMulti within the throttle = %v, %v, %d batches; want no new batch", got, err, calls.Load())
				}
			})
		}
	})
}
