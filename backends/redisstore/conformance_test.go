package redisstore_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/cache/cachetest"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// maxValueSize is the largest value the suite stores: 8 MiB.
const maxValueSize = 8 << 20

// newClientStore returns a function that opens a Store over a new client
// made by newClient; the client is closed when the test ends, after the
// store.
func newClientStore(newClient func() redis.UniversalClient) func(t *testing.T) cache.Store {
	return func(t *testing.T) cache.Store {
		c := newClient()
		t.Cleanup(func() { _ = c.Close() })
		return redisstore.New(c, nil)
	}
}

func singleClient(addr string) func() redis.UniversalClient {
	return func() redis.UniversalClient { return redis.NewClient(&redis.Options{Addr: addr}) }
}

func clusterClient(addrs []string) func() redis.UniversalClient {
	return func() redis.UniversalClient {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	}
}

// ringClient returns a Ring over the servers at addrs, as shards "s0",
// "s1", ...
func ringClient(addrs ...string) func() redis.UniversalClient {
	shards := make(map[string]string, len(addrs))
	for i, a := range addrs {
		shards["s"+strconv.Itoa(i)] = a
	}
	return func() redis.UniversalClient {
		return redis.NewRing(&redis.RingOptions{Addrs: shards})
	}
}

// failoverClient returns a client of the master that the Sentinels at
// addrs monitor under name.
func failoverClient(name string, addrs []string) func() redis.UniversalClient {
	return func() redis.UniversalClient {
		return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: name, SentinelAddrs: addrs})
	}
}

// runMiniredis starts a miniredis whose clock follows the wall clock.
// miniredis expires keys only when its clock is advanced (FastForward), so a
// goroutine advances it every few milliseconds until the test ends.
func runMiniredis(t *testing.T) *miniredis.Miniredis {
	t.Helper()
	m := miniredis.RunT(t)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		wg.Wait()
	})
	return m
}

func TestConformanceMiniredis(t *testing.T) {
	t.Parallel()
	m := runMiniredis(t)
	cachetest.RunConformanceTests(t, cachetest.Harness{
		NewStore:     newClientStore(singleClient(m.Addr())),
		Exclusive:    true,
		MaxValueSize: maxValueSize,
		Skip: map[string]string{
			// Real Redis refuses "+5", "05" and "-0" (TestConformanceRedis).
			"Increment/NotInteger": "miniredis's INCRBY accepts non-canonical integers",
		},
	})
}

// TestConformanceRedis runs the suite on the shared server, through fault
// proxies that lose the replies of writes in the lost-replies case.
func TestConformanceRedis(t *testing.T) {
	t.Parallel()
	addr := testenv.RedisAddr(t)
	ps := newProxies(t)
	cachetest.RunConformanceTests(t, cachetest.Harness{
		NewStore: newClientStore(func() redis.UniversalClient {
			return redis.NewClient(&redis.Options{Addr: addr, Dialer: ps.dial})
		}),
		MaxValueSize: maxValueSize,
		DropReplies:  ps.dropReplies,
	})
}

func TestConformancePrivateRedis(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	cachetest.RunConformanceTests(t, cachetest.Harness{
		NewStore:     newClientStore(singleClient(srv.Addr())),
		Exclusive:    true,
		MaxValueSize: maxValueSize,
	})
}

// TestConformanceCluster runs the suite on the shared Cluster, through a
// fault proxy per node that loses the replies of writes in the lost-replies
// case.
func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	addrs := testenv.RedisClusterAddrs(t)
	ps := newProxies(t)
	cachetest.RunConformanceTests(t, cachetest.Harness{
		NewStore: newClientStore(func() redis.UniversalClient {
			return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Dialer: ps.dial})
		}),
		MaxValueSize: maxValueSize,
		DropReplies:  ps.dropReplies,
	})
}

// TestConformancePrivateCluster runs the suite on a private Cluster, which
// nothing else uses: Clear("") (FLUSHDB on every master) is tested too.
func TestConformancePrivateCluster(t *testing.T) {
	t.Parallel()
	c := testenv.StartRedisCluster(t)
	cachetest.RunConformanceTests(t, cachetest.Harness{
		NewStore:     newClientStore(clusterClient(c.Addrs())),
		Exclusive:    true,
		MaxValueSize: maxValueSize,
	})
}

// TestConformanceRing runs the suite on a Ring of two private servers.
func TestConformanceRing(t *testing.T) {
	t.Parallel()
	a, b := testenv.StartRedis(t), testenv.StartRedis(t)
	cachetest.RunConformanceTests(t, cachetest.Harness{
		NewStore:     newClientStore(ringClient(a.Addr(), b.Addr())),
		Exclusive:    true,
		MaxValueSize: maxValueSize,
	})
}

// TestConformanceSentinel runs the suite through a failover client, on a
// private master found through a private Sentinel.
//
// The stores share one client: go-redis resolves the placeholder address
// "FailoverClient" in DNS when it creates a failover client, and a
// resolution still running when the tests end counts as a leaked
// goroutine.
func TestConformanceSentinel(t *testing.T) {
	t.Parallel()
	s := testenv.StartRedisSentinel(t)
	client := newClient(t, failoverClient(s.MasterName(), s.Addrs()))
	cachetest.RunConformanceTests(t, cachetest.Harness{
		NewStore:     func(*testing.T) cache.Store { return redisstore.New(client, nil) },
		Exclusive:    true,
		MaxValueSize: maxValueSize,
	})
}
