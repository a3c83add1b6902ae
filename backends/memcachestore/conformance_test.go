package memcachestore_test

import (
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/typedcache/typedcache/backends/memcachestore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/cache/cachetest"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// harness returns the suite's harness for stores over a client of addrs.
func harness(addrs []string, exclusive bool) cachetest.Harness {
	return cachetest.Harness{
		NewStore: func(t *testing.T) cache.Store {
			client := memcache.New(addrs...)
			client.Timeout = 2 * time.Second
			client.MaxIdleConns = 16
			t.Cleanup(func() { _ = client.Close() })
			return memcachestore.New(client, nil)
		},
		Exclusive:     exclusive,
		TTLResolution: time.Second,
		TTLUnreadable: true,
		NoClearPrefix: true,
		// Values up to the default item size limit, less what memcached
		// adds, under the longest memcached key: a stock server (-I 1m)
		// holds them. A value of the whole limit fits under no key.
		MaxValueSize: memcachestore.DefaultMaxItemSize - memcachestore.ItemOverhead - 250,
		TooLargeSize: memcachestore.DefaultMaxItemSize,
	}
}

// TestConformance runs the suite against the two shared memcached servers,
// with one client over both.
func TestConformance(t *testing.T) {
	cachetest.RunConformanceTests(t, harness(testenv.MemcachedAddrs(t), false))
}

// TestConformanceExclusive runs the suite against a private memcached, which
// lets it test Clear("") (flush_all).
func TestConformanceExclusive(t *testing.T) {
	srv := testenv.StartMemcached(t)
	cachetest.RunConformanceTests(t, harness([]string{srv.Addr()}, true))
}
