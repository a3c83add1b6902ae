package lock_test

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/teststores"
)

// namespace returns a namespace no other test run uses, so that tests on a
// shared server never see each other's keys.
func namespace(t testing.TB) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "locktest-" + hex.EncodeToString(b)
}

func newCache[V any](t testing.TB, s cache.Store, ns string) *cache.Cache[string, V] {
	t.Helper()
	return cache.New[string, V](s, &cache.Options[string, V]{Namespace: ns})
}

// forEachStore runs f for every backend with a fresh store and a fresh
// namespace.
func forEachStore(t *testing.T, f func(t *testing.T, b teststores.Backend, s cache.Store, ns string)) {
	teststores.Run(t, func(t *testing.T, b teststores.Backend) {
		f(t, b, b.New(t), namespace(t))
	})
}
