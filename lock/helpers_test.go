package lock_test

import (
	"time"

	"github.com/typedcache/typedcache/lock"
	"testing"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
)

func namespace(testing.TB) string { return teststores.Namespace("locktest") }

func newCache[V any](t testing.TB, s cache.Store, ns string) *cache.Cache[string, V] {
	t.Helper()
	return cache.New[string, V](s, &cache.Options[string, V]{Namespace: ns})
}

// forEachStore runs f for every backend with a fresh store and namespace.
func forEachStore(t *testing.T, f func(t *testing.T, b teststores.Backend, s cache.Store, ns string)) {
	teststores.ForEach(t, "locktest", f)
}

// newLock is lock.NewRedLock that fails the test on an error.
func newLock[K comparable, V any](t testing.TB, c *cache.Cache[K, V], key K, lease time.Duration, opts *lock.Options) *lock.RedLock {
	t.Helper()
	l, err := lock.NewRedLock(c, key, lease, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
