package memcachestore_test

import (
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/typedcache/typedcache/backends/memcachestore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/cache/cachetest"
	"github.com/typedcache/typedcache/internal/testing/faultproxy"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// harness returns the suite's harness for stores over a client of addrs.
// The clients' Timeout is generous: through a proxy, on a loaded machine, a
// reply can take long.
func harness(addrs []string, exclusive bool) cachetest.Harness {
	return cachetest.Harness{
		NewStore: func(t *testing.T) cache.Store {
			client := memcache.New(addrs...)
			client.Timeout = 5 * time.Second
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
// lets it test Clear("") (flush_all), through a fault proxy that loses the
// replies of writes in the lost-replies case.
func TestConformanceExclusive(t *testing.T) {
	srv := testenv.StartMemcached(t)
	p := faultproxy.Start(t, srv.Addr())
	h := harness([]string{p.Addr()}, true)
	h.DropReplies = func(t *testing.T) func() {
		p.DropReplies(0.05, isWrite)
		return func() { p.DropReplies(0, nil) }
	}
	cachetest.RunConformanceTests(t, h)
}

// isWrite matches the chunk of a memcached write command.
var isWrite = faultproxy.Contains("set ", "add ", "cas ", "delete ")
