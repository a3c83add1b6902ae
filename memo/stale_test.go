package memo_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/memo"
)

// No stale sets (DESIGN.md, "memo: leases inside the entry"): a computation
// writes its value only over its own lease, so a Set, a Delete, a
// Memo.Invalidate or another caller's takeover made while it runs wins over
// it, and its callers still get the value it computed.
//
// Each test runs on every store, across two store clients (two clients of
// the server; on memory, two wrappers of one store, which share its data but
// neither flights nor in-process wake-ups, as two processes would), and
// blocks the computation on a channel until the test has made its write.
// They use only APIs that memo had before the leases (GetOrCompute, Func,
// Invalidate, Cache.Set/Get/Delete, teststores), so that they can be run
// against it: there, where the value was written with a plain Set, each of
// them fails.

// staleBound bounds every call of these tests: it only catches hangs.
const staleBound = 30 * time.Second

// twoClients returns two caches of one namespace over b: the first over s,
// the second over another client of the same data.
func twoClients[V any](t *testing.T, b teststores.Backend, s cache.Store, ns string, ttl time.Duration) (c1, c2 *cache.Cache[string, V], s1, s2 *teststores.Counting) {
	t.Helper()
	other := s
	if b.Shared {
		other = b.New(t)
	}
	s1, s2 = teststores.NewCounting(s), teststores.NewCounting(other)
	c1 = cache.New[string, V](s1, &cache.Options[string, V]{Namespace: ns, TTL: ttl})
	c2 = cache.New[string, V](s2, &cache.Options[string, V]{Namespace: ns, TTL: ttl})
	return c1, c2, s1, s2
}

// blocked is a call whose computation runs until the test releases it.
type blocked struct {
	started chan struct{} // closed once the computation runs (its lease is in the key)
	release chan struct{}
	done    chan result
}

type result struct {
	v   string
	err error
}

// compute returns a computation that announces itself, waits for the
// release, and returns v.
func (bl *blocked) compute(v string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		close(bl.started)
		<-bl.release
		return v, nil
	}
}

func newBlocked() *blocked {
	return &blocked{started: make(chan struct{}), release: make(chan struct{}), done: make(chan result, 1)}
}

// startBlocked calls call in a goroutine with a blocked computation of v and
// returns once that computation runs.
func startBlocked(t *testing.T, v string, call func(compute func(context.Context) (string, error)) (string, error)) *blocked {
	t.Helper()
	bl := newBlocked()
	bl.start(t, func() (string, error) { return call(bl.compute(v)) })
	return bl
}

// start runs call in a goroutine, and returns once the blocked computation
// it makes runs.
func (bl *blocked) start(t *testing.T, call func() (string, error)) {
	t.Helper()
	go func() {
		got, err := call()
		bl.done <- result{got, err}
	}()
	select {
	case <-bl.started:
	case r := <-bl.done:
		t.Fatalf("the call returned %q, %v before computing", r.v, r.err)
	case <-time.After(staleBound):
		t.Fatal("the computation never started")
	}
}

// finish releases the computation and returns what its caller got.
func (bl *blocked) finish(t *testing.T) result {
	t.Helper()
	close(bl.release)
	select {
	case r := <-bl.done:
		return r
	case <-time.After(staleBound):
		t.Fatal("the blocked call did not return")
		return result{}
	}
}

// wantValue fails unless k holds want in c.
func wantValue(t *testing.T, c *cache.Cache[string, string], k, want string) {
	t.Helper()
	got, found, err := c.Get(context.Background(), k)
	if err != nil || !found || got != want {
		t.Fatalf("Get(%s) = %q, found %v, %v; want %q", k, got, found, err, want)
	}
}

// wantAbsent fails unless k holds nothing c can read.
func wantAbsent(t *testing.T, c *cache.Cache[string, string], k string) {
	t.Helper()
	got, found, err := c.Get(context.Background(), k)
	if err != nil || found {
		t.Fatalf("Get(%s) = %q, found %v, %v; want a miss", k, got, found, err)
	}
}

// A Set made while a computation runs is not overwritten by it.
func TestSetDuringComputationWins(t *testing.T) {
	teststores.ForEach(t, "memostale", func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), staleBound)
		defer cancel()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Minute)
		bl := startBlocked(t, "computed", func(compute func(context.Context) (string, error)) (string, error) {
			return memo.GetOrCompute(ctx, c1, "k", compute, nil)
		})
		if err := c2.Set(ctx, "k", "set meanwhile"); err != nil {
			t.Fatal(err)
		}
		if r := bl.finish(t); r.err != nil || r.v != "computed" {
			t.Fatalf("the computation's caller got %q, %v; want its own value", r.v, r.err)
		}
		wantValue(t, c2, "k", "set meanwhile")
		wantValue(t, c1, "k", "set meanwhile")
		// And memo serves the value that was set.
		v, err := memo.GetOrCompute(ctx, c1, "k", func(context.Context) (string, error) {
			t.Error("computed again over a value")
			return "", nil
		}, nil)
		if err != nil || v != "set meanwhile" {
			t.Fatalf("GetOrCompute after = %q, %v; want the value set", v, err)
		}
	})
}

// A Delete made while a computation runs is not undone by it: the key stays
// absent, and the next call computes afresh.
func TestDeleteDuringComputationWins(t *testing.T) {
	teststores.ForEach(t, "memostale", func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), staleBound)
		defer cancel()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Minute)
		bl := startBlocked(t, "computed before the delete", func(compute func(context.Context) (string, error)) (string, error) {
			return memo.GetOrCompute(ctx, c1, "k", compute, nil)
		})
		if _, err := c2.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if r := bl.finish(t); r.err != nil || r.v != "computed before the delete" {
			t.Fatalf("the computation's caller got %q, %v; want its own value", r.v, r.err)
		}
		wantAbsent(t, c2, "k")
		wantAbsent(t, c1, "k")
		var computations atomic.Int64
		v, err := memo.GetOrCompute(ctx, c2, "k", func(context.Context) (string, error) {
			computations.Add(1)
			return "computed after", nil
		}, nil)
		if err != nil || v != "computed after" || computations.Load() != 1 {
			t.Fatalf("GetOrCompute after the delete = %q, %v, %d computations; want it computed afresh", v, err, computations.Load())
		}
		wantValue(t, c1, "k", "computed after")
	})
}

// A Memo.Invalidate made while a computation runs is not undone by it.
func TestInvalidateDuringComputationWins(t *testing.T) {
	teststores.ForEach(t, "memostale", func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), staleBound)
		defer cancel()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Minute)
		var calls atomic.Int64
		var bl *blocked
		fn := func(ctx context.Context, k string) (string, error) {
			if calls.Add(1) == 1 {
				return bl.compute("computed before the invalidation")(ctx)
			}
			return "computed after", nil
		}
		m1, m2 := memo.Func(c1, fn, nil), memo.Func(c2, fn, nil)
		defer m1.Close()
		defer m2.Close()
		bl = newBlocked()
		bl.start(t, func() (string, error) { return m1.Get(ctx, "k") })
		if err := m2.Invalidate(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if r := bl.finish(t); r.err != nil || r.v != "computed before the invalidation" {
			t.Fatalf("the computation's caller got %q, %v; want its own value", r.v, r.err)
		}
		wantAbsent(t, c2, "k")
		if v, err := m2.Get(ctx, "k"); err != nil || v != "computed after" {
			t.Fatalf("Get after the invalidation = %q, %v; want it computed afresh", v, err)
		}
		if v, err := m1.Get(ctx, "k"); err != nil || v != "computed after" {
			t.Fatalf("Get through the first client = %q, %v; want the new value", v, err)
		}
		if n := calls.Load(); n != 2 {
			t.Fatalf("computations = %d; want 2", n)
		}
	})
}

// partitioned is a store whose writes fail while the test says so: the
// client is cut off from the store (a network partition), and its lease
// cannot be renewed.
type partitioned struct {
	cache.Store
	cut atomic.Bool
}

var errCut = errors.New("connection refused (partition)")

func (p *partitioned) SwapIfEqual(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if p.cut.Load() {
		return false, errCut
	}
	if sw, ok := p.Store.(cache.Swapper); ok {
		return sw.SwapIfEqual(ctx, key, old, value, ttl)
	}
	return teststores.NewCounting(p.Store).SwapIfEqual(ctx, key, old, value, ttl)
}

func (p *partitioned) Watch(ctx context.Context, key string) (<-chan struct{}, func(), error) {
	if n, ok := p.Store.(cache.Notifier); ok {
		return n.Watch(ctx, key)
	}
	return nil, nil, errors.New("no watch")
}

// A computation that loses its lease (its client is cut off from the store
// and cannot renew it), taken over by another client's call, does not
// overwrite the value that call stored once the partition heals. Its
// context ends with the cause ErrLeaseLost, and its caller still gets the
// value it computed.
func TestTakenOverComputationDoesNotOverwrite(t *testing.T) {
	teststores.ForEach(t, "memostale", func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), staleBound)
		defer cancel()
		other := s
		if b.Shared {
			other = b.New(t)
		}
		p := &partitioned{Store: s}
		c1 := cache.New[string, string](p, &cache.Options[string, string]{Namespace: ns, TTL: time.Minute})
		c2 := cache.New[string, string](teststores.NewCounting(other), &cache.Options[string, string]{Namespace: ns, TTL: time.Minute})
		// Whole seconds, for Memcached.
		opts := &memo.Options{Lease: 2 * time.Second}
		cause := make(chan error, 1)
		bl := startBlocked(t, "outlived its lease", func(compute func(context.Context) (string, error)) (string, error) {
			return memo.GetOrCompute(ctx, c1, "k", func(cctx context.Context) (string, error) {
				p.cut.Store(true) // the partition: no renewal from now on
				v, err := compute(cctx)
				select {
				case <-cctx.Done():
					cause <- context.Cause(cctx)
				default:
					cause <- nil
				}
				return v, err
			}, opts)
		})
		var computations atomic.Int64
		v, err := memo.GetOrCompute(ctx, c2, "k", func(context.Context) (string, error) {
			computations.Add(1)
			return "took over", nil
		}, opts)
		if err != nil || v != "took over" || computations.Load() != 1 {
			t.Fatalf("the second client's call = %q, %v, %d computations; want its own value", v, err, computations.Load())
		}
		wantValue(t, c2, "k", "took over")
		p.cut.Store(false) // the partition heals
		if r := bl.finish(t); r.err != nil || r.v != "outlived its lease" {
			t.Fatalf("the first computation's caller got %q, %v; want its own value", r.v, r.err)
		}
		if c := <-cause; !errors.Is(c, memo.ErrLeaseLost) {
			t.Fatalf("the first computation's context ended with %v; want ErrLeaseLost", c)
		}
		wantValue(t, c2, "k", "took over")
		wantValue(t, c1, "k", "took over")
	})
}

// A computation longer than its lease keeps the lease (the watchdog renews
// it): the other client's call waits for it instead of computing, and gets
// its value.
func TestLeaseRenewed(t *testing.T) {
	teststores.ForEach(t, "memorenew", func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), staleBound)
		defer cancel()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Minute)
		lease := 300 * time.Millisecond
		if b.Name == "memcached" {
			lease = 2 * time.Second // whole seconds
		}
		opts := &memo.Options{Lease: lease}
		bl := startBlocked(t, "slow", func(compute func(context.Context) (string, error)) (string, error) {
			return memo.GetOrCompute(ctx, c1, "k", compute, opts)
		})
		second := make(chan result, 1)
		go func() {
			v, err := memo.GetOrCompute(ctx, c2, "k", func(context.Context) (string, error) {
				return "computed twice", nil
			}, opts)
			second <- result{v, err}
		}()
		time.Sleep(3 * lease) // three leases: without renewal it would have expired
		if r := bl.finish(t); r.err != nil || r.v != "slow" {
			t.Fatalf("the slow computation's caller got %q, %v", r.v, r.err)
		}
		if r := <-second; r.err != nil || r.v != "slow" {
			t.Fatalf("the other client got %q, %v; want the slow computation's value (it kept its lease)", r.v, r.err)
		}
		wantValue(t, c1, "k", "slow")
		// One call waited, once, through every renewal.
		if st := c2.Stats(); st.LeaseWaits != 1 || st.Computations != 0 {
			t.Fatalf("the other client's stats = %+v; want 1 lease wait, no computation", st)
		}
	})
}

// Another client deletes the key (Cache.Delete, Memo.Invalidate) while a
// computation runs: the watchdog finds the lease gone at its next renewal
// and ends the computation's context with the cause ErrLeaseLost, and the
// value is not written. A computation that watches its context stops, and
// its callers get an error matching ErrLeaseLost; one that ignores it
// returns its value to its callers, which is dropped all the same.
func TestLeaseLostWhenDeleted(t *testing.T) {
	invalidate := func(ctx context.Context, c *cache.Cache[string, string]) error {
		m := memo.Func(c, func(context.Context, string) (string, error) { return "", errors.New("not called") }, nil)
		defer m.Close()
		return m.Invalidate(ctx, "k")
	}
	deleteKey := func(ctx context.Context, c *cache.Cache[string, string]) error {
		_, err := c.Delete(ctx, "k")
		return err
	}
	tests := []struct {
		name     string
		del      func(ctx context.Context, c *cache.Cache[string, string]) error
		step     func() *step[string]
		watching bool // the computation stops when its ctx ends
	}{
		{"Cache.Delete, watching its ctx", deleteKey, func() *step[string] { return hangs(returns("stale set")) }, true},
		{"Memo.Invalidate, ignoring its ctx", invalidate, func() *step[string] { return blocks(returns("stale set")) }, false},
	}
	teststores.ForEach(t, "memolost", func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), staleBound)
				defer cancel()
				c1, c2, _, _ := twoClients[string](t, b, s, teststores.Namespace(ns), time.Minute)
				opts := &memo.Options{Lease: leaseFor(b, 300*time.Millisecond)}
				got := make(chan context.Context, 1)
				ld := newScripted(t, deciding(tt.step(), func(ctx context.Context) { got <- ctx }), returns("after"))
				first := goCall(func() (string, error) { return memo.GetOrCompute(ctx, c1, "k", ld.compute, opts) })
				ld.awaitStarted(1)
				cctx := <-got
				if err := tt.del(ctx, c2); err != nil {
					t.Fatal(err)
				}
				select {
				case <-cctx.Done():
				case <-time.After(staleBound):
					t.Fatal("the computation's context did not end after its key was deleted")
				}
				if cause := context.Cause(cctx); !errors.Is(cause, memo.ErrLeaseLost) {
					t.Fatalf("the computation's context ended with %v; want ErrLeaseLost", cause)
				}
				ld.release(1)
				v, err := first.wait(t)
				if tt.watching {
					if !errors.Is(err, memo.ErrLeaseLost) {
						t.Fatalf("the caller got %q, %v; want an error matching ErrLeaseLost", v, err)
					}
				} else if err != nil || v != "stale set" {
					t.Fatalf("the caller got %q, %v; want the computation's value", v, err)
				}
				assertNoEntry(t, c2, "k")
				if v, err := memo.GetOrCompute(ctx, c2, "k", ld.compute, opts); err != nil || v != "after" {
					t.Fatalf("the next call = %q, %v; want it computed afresh", v, err)
				}
				ld.wantCalls(2)
			})
		}
	})
}

// A bulk computation (GetOrComputeMulti, Memo.GetMulti) longer than its
// leases keeps them, as a single-key one does: another client's call for
// one of its keys waits for it instead of computing the key again.
func TestMultiLeaseRenewed(t *testing.T) {
	teststores.ForEach(t, "memorenewm", func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), staleBound)
		defer cancel()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Minute)
		lease := 300 * time.Millisecond
		if b.Name == "memcached" {
			lease = 2 * time.Second // whole seconds
		}
		opts := &memo.Options{Lease: lease}
		started, release := make(chan struct{}), make(chan struct{})
		multi := make(chan error, 1)
		go func() {
			got, err := memo.GetOrComputeMulti(ctx, c1, []string{"a", "b"}, func(_ context.Context, keys []string) (map[string]string, error) {
				close(started)
				<-release
				return map[string]string{"a": "slow a", "b": "slow b"}, nil
			}, opts)
			if err == nil && (got["a"] != "slow a" || got["b"] != "slow b") {
				err = fmt.Errorf("got %v", got)
			}
			multi <- err
		}()
		<-started
		second := make(chan result, 1)
		go func() {
			v, err := memo.GetOrCompute(ctx, c2, "b", func(context.Context) (string, error) {
				return "computed twice", nil
			}, opts)
			second <- result{v, err}
		}()
		time.Sleep(3 * lease) // three leases: without renewal they would have expired
		close(release)
		if err := <-multi; err != nil {
			t.Fatalf("the bulk call: %v", err)
		}
		if r := <-second; r.err != nil || r.v != "slow b" {
			t.Fatalf("the other client got %q, %v; want the bulk computation's value (it kept its lease)", r.v, r.err)
		}
		wantValue(t, c1, "a", "slow a")
		wantValue(t, c1, "b", "slow b")
		if st := c2.Stats(); st.Computations != 0 {
			t.Fatalf("the other client's stats = %+v; want no computation", st)
		}
	})
}
