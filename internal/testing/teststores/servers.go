package teststores

import (
	"net"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/memcachestore"
	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

func init() {
	register(Backend{Name: "redis", Shared: true, TTLReadable: true,
		New: func(t testing.TB) cache.Store {
			return newRedis(t, &redis.Options{Addr: testenv.RedisAddr(t)})
		},
		Unreachable: func(t testing.TB) cache.Store {
			return newRedis(t, &redis.Options{Addr: DeadAddr(t), MaxRetries: -1, DialerRetries: 1})
		},
	})
	register(Backend{Name: "cluster", Shared: true, TTLReadable: true,
		New: func(t testing.TB) cache.Store {
			return newCluster(t, &redis.ClusterOptions{Addrs: testenv.RedisClusterAddrs(t)})
		},
		Unreachable: func(t testing.TB) cache.Store {
			addrs := []string{DeadAddr(t), DeadAddr(t), DeadAddr(t)}
			return newCluster(t, &redis.ClusterOptions{Addrs: addrs, MaxRetries: -1, DialerRetries: 1})
		},
	})
	register(Backend{Name: "memcached", Shared: true,
		New:         func(t testing.TB) cache.Store { return newMemcached(t, testenv.MemcachedAddrs(t)) },
		Unreachable: func(t testing.TB) cache.Store { return newMemcached(t, []string{DeadAddr(t)}) },
	})
}

// newRedis returns a store over a Redis client.
func newRedis(t testing.TB, opts *redis.Options) cache.Store {
	client := redis.NewClient(opts)
	return closing(t, redisstore.New(client, nil), client.Close)
}

// newCluster returns a store over a Redis Cluster client.
func newCluster(t testing.TB, opts *redis.ClusterOptions) cache.Store {
	client := redis.NewClusterClient(opts)
	return closing(t, redisstore.New(client, nil), client.Close)
}

// newMemcached returns a store over a client of the memcached servers at
// addrs.
func newMemcached(t testing.TB, addrs []string) cache.Store {
	client := memcache.New(addrs...)
	client.MaxIdleConns = 64
	client.Timeout = 2 * time.Second
	return closing(t, memcachestore.New(client, &memcachestore.Options{Servers: addrs}), client.Close)
}

// DeadAddr returns a loopback address where nothing listens: a port that
// was just free, listened on and closed. Connecting to it is refused.
func DeadAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// closing registers the closing of s, then of its client, when t ends.
func closing(t testing.TB, s cache.Store, closeClient func() error) cache.Store {
	t.Cleanup(func() {
		s.Close()
		closeClient()
	})
	return s
}
