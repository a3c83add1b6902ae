package teststores

import (
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/memcachestore"
	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testenv"
)

func init() {
	register(Backend{Name: "redis", Shared: true, TTLReadable: true, New: func(t testing.TB) cache.Store {
		client := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
		return closing(t, redisstore.New(client, nil), client.Close)
	}})
	register(Backend{Name: "cluster", Shared: true, TTLReadable: true, New: func(t testing.TB) cache.Store {
		client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: testenv.RedisClusterAddrs(t)})
		return closing(t, redisstore.New(client, nil), client.Close)
	}})
	register(Backend{Name: "memcached", Shared: true, New: func(t testing.TB) cache.Store {
		client := memcache.New(testenv.MemcachedAddrs(t)...)
		client.MaxIdleConns = 64
		client.Timeout = 2 * time.Second
		return closing(t, memcachestore.New(client, nil), client.Close)
	}})
}

// closing registers the closing of s, then of its client, when t ends.
func closing(t testing.TB, s cache.Store, closeClient func() error) cache.Store {
	t.Cleanup(func() {
		s.Close()
		closeClient()
	})
	return s
}
