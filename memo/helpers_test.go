package memo_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
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

func memStore(t *testing.T) cache.Store { return teststores.Get(t, "memory").New(t) }

// bound bounds the waits of the tests: it only catches hangs.
const bound = 30 * time.Second

// waitFor polls cond until it holds; what it waits for must happen soon.
// It may run in a computation's goroutine: after the bound it reports an
// error and returns, so that the computation ends and the test with it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("timed out waiting for %s", what)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// entry reads k's entry in c as memo sees it.
func entry[V any](t *testing.T, c *cache.Cache[string, V], k string) cache.Entry[V] {
	t.Helper()
	e, err := c.Door().LoadFresh(context.Background(), c.Key(k))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// assertNoEntry fails unless k holds nothing at all in c's store: no value,
// and no lease left behind by a computation that failed or stopped.
func assertNoEntry[V any](t *testing.T, c *cache.Cache[string, V], k string) {
	t.Helper()
	if e := entry(t, c, k); e.Exists() {
		t.Fatalf("%s holds an entry (lease %v, value %v, not found %v); want none", k, e.Lease, e.HasValue, e.NotFound)
	}
	if ok, err := c.Exists(context.Background(), k); ok || err != nil {
		t.Fatalf("Exists(%s) = %v, %v; want false", k, ok, err)
	}
	if _, found, err := c.Get(context.Background(), k); found || err != nil {
		t.Fatalf("Get(%s): found %v, %v; want a miss", k, found, err)
	}
}

// assertNoLease fails if k's entry holds a lease.
func assertNoLease[V any](t *testing.T, c *cache.Cache[string, V], k string) {
	t.Helper()
	if e := entry(t, c, k); e.Lease {
		t.Fatalf("%s still holds a lease (ends %v)", k, e.LeaseEnd)
	}
}

// waitValue waits until k holds want in c (a background write stored it).
func waitValue[V comparable](t *testing.T, c *cache.Cache[string, V], k string, want V) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s to hold %v", k, want), func() bool {
		v, _, err := c.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		return v == want
	})
}

var errDown = errors.New("store down")

// failing is a store whose every read and write fails. Embedding the
// Store interface hides the inner store's optional interfaces (Notifier,
// Swapper, Leaser), so the Cache uses its fallbacks, which fail too.
type failing struct{ cache.Store }

func (failing) Get(context.Context, string) ([]byte, error)          { return nil, errDown }
func (failing) GetMulti(context.Context, []string) ([][]byte, error) { return nil, errDown }
func (failing) Set(context.Context, string, []byte, time.Duration) error {
	return errDown
}
func (failing) Add(context.Context, string, []byte, time.Duration) error { return errDown }
func (failing) Gets(context.Context, string) ([]byte, cache.Token, error) {
	return nil, cache.Token{}, errDown
}
func (failing) DeleteIfEqual(context.Context, string, []byte) (bool, error) { return false, errDown }

// failingWrites is a store whose reads work and whose writes of entries
// fail: Add (the lease) when addFails, the swap of the lease for the value
// when swapFails.
type failingWrites struct {
	cache.Store
	addFails, swapFails bool
}

func (s *failingWrites) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if s.addFails {
		return errDown
	}
	return s.Store.Add(ctx, key, value, ttl)
}

func (s *failingWrites) SwapIfEqual(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if s.swapFails {
		return false, errDown
	}
	return s.Store.(cache.Swapper).SwapIfEqual(ctx, key, old, value, ttl)
}
