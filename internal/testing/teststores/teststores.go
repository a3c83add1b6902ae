// Package teststores gives the project's tests every store it ships, each
// on its real backend: memory, Redis (single node and Cluster) and
// Memcached, so that a feature is tested on all of them by one loop.
// Backends that need a server come from internal/testing/testenv: they skip when
// the server's address is unset, and fail under CI=true.
package teststores

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/cache"
)

// Backend is one store under test.
type Backend struct {
	// Name names the backend in subtests: "memory", "redis", "cluster",
	// "memcached".
	Name string
	// Shared reports that stores from New in different processes see the
	// same data, so that cross-process tests apply.
	Shared bool
	// TTLReadable reports that Store.TTL works.
	TTLReadable bool
	// New returns a store; it is closed when the test ends.
	New func(t testing.TB) cache.Store
	// Unreachable, for a backend with a server, returns a store of it
	// whose server is down (a closed loopback port, so connections are
	// refused at once): every operation fails. It needs no running server.
	// It is nil for the memory backend.
	Unreachable func(t testing.TB) cache.Store
}

var backends []Backend

func register(b Backend) { backends = append(backends, b) }

func init() {
	register(Backend{Name: "memory", TTLReadable: true, New: func(t testing.TB) cache.Store {
		s, err := memstore.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}})
}

// All returns every backend.
func All() []Backend { return backends }

// Get returns the backend called name, failing the test if there is none.
func Get(t testing.TB, name string) Backend {
	t.Helper()
	for _, b := range backends {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("teststores: no backend %q", name)
	return Backend{}
}

// Run runs f as a subtest for every backend.
func Run(t *testing.T, f func(t *testing.T, b Backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) { f(t, b) })
	}
}

// Namespace returns a namespace no other test run uses, so that tests on a
// shared server never see each other's keys.
func Namespace(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// ForEach runs f as a subtest for every backend, with a fresh store and a
// fresh namespace starting with prefix.
func ForEach(t *testing.T, prefix string, f func(t *testing.T, b Backend, s cache.Store, ns string)) {
	t.Helper()
	Run(t, func(t *testing.T, b Backend) {
		f(t, b, b.New(t), Namespace(prefix))
	})
}
