package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/bradfitz/gomemcache/memcache"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/memcachestore"
	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/cache"
)

// opTimeout bounds every store operation of the benchmark's caches.
const opTimeout = 5 * time.Second

// backend is where the instances' stores live: an embedded miniredis, a
// Redis server, a Redis Cluster or memcached servers. Each call of
// client gives a new client, as a new process would have.
type backend struct {
	name      string
	mr        *miniredis.Miniredis // the embedded Redis, or nil
	redis     string               // a Redis address: the store's, or memcached's bus
	cluster   []string
	memcached []string
	pool      int    // connections per client
	namespace string // of this run's keys: "cachebench:" and a random id
}

// openBackend starts the embedded Redis when cfg names no server, and
// checks that the servers it names answer.
func openBackend(ctx context.Context, cfg config) (*backend, error) {
	b := &backend{
		redis:     cfg.redis,
		cluster:   cfg.cluster,
		memcached: cfg.memcached,
		pool:      cfg.goroutines + 2,
		namespace: "cachebench:" + uuid.NewString()[:8],
	}
	switch {
	case len(b.cluster) > 0:
		b.name = "Redis Cluster " + strings.Join(b.cluster, ",")
	case len(b.memcached) > 0:
		b.name = "memcached " + strings.Join(b.memcached, ",")
		if b.redis != "" {
			b.name += " (local tier's bus: Redis " + b.redis + ")"
		}
	case b.redis != "":
		b.name = "Redis " + b.redis
	default:
		mr, err := miniredis.Run()
		if err != nil {
			return nil, fmt.Errorf("start the embedded Redis: %w", err)
		}
		b.mr, b.redis, b.name = mr, mr.Addr(), "embedded miniredis"
	}
	if err := b.ping(ctx); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// ping checks that every server answers.
func (b *backend) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if b.redis != "" {
		// One try: a server that is not there fails at once.
		c := redis.NewClient(&redis.Options{Addr: b.redis, DialerRetries: 1, MaxRetries: -1})
		err := c.Ping(ctx).Err()
		c.Close()
		if err != nil {
			return fmt.Errorf("redis %s: %w", b.redis, err)
		}
	}
	if len(b.cluster) > 0 {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: b.cluster, DialerRetries: 1, MaxRetries: -1})
		err := c.ForEachShard(ctx, func(ctx context.Context, s *redis.Client) error { return s.Ping(ctx).Err() })
		c.Close()
		if err != nil {
			return fmt.Errorf("redis cluster %s: %w", strings.Join(b.cluster, ","), err)
		}
	}
	if len(b.memcached) > 0 {
		c := b.memcacheClient()
		err := c.Ping()
		c.Close()
		if err != nil {
			return fmt.Errorf("memcached %s: %w", strings.Join(b.memcached, ","), err)
		}
	}
	return nil
}

func (b *backend) close() {
	if b.mr != nil {
		b.mr.Close()
	}
}

func (b *backend) redisClient() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: b.redis, PoolSize: b.pool, ContextTimeoutEnabled: true})
}

func (b *backend) clusterClient() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: b.cluster, PoolSize: b.pool, ContextTimeoutEnabled: true})
}

func (b *backend) memcacheClient() *memcache.Client {
	c := memcache.New(b.memcached...)
	c.MaxIdleConns = b.pool // gomemcache's default (2) would open and close connections all the time
	c.Timeout = opTimeout
	return c
}

// client is one instance's connection to the backend: its store, the
// invalidation bus its local tier would use (nil when there is none), and
// what to close when the instance is done.
type client struct {
	store   cache.Store
	bus     cache.Bus
	noBus   string // why bus is nil
	closers []func() error
}

func (c *client) close() error {
	var err error
	for i := len(c.closers) - 1; i >= 0; i-- {
		err = errors.Join(err, c.closers[i]())
	}
	return err
}

// localSkip returns why memo+local cannot run on the backend at all, or "".
func (b *backend) localSkip() string {
	if len(b.memcached) > 0 && b.redis == "" {
		return "memcached has no invalidation bus: give -redis ADDR too, for the local tier's"
	}
	return ""
}

// client returns a new client, as a new process would open.
func (b *backend) client() *client {
	var c client
	switch {
	case len(b.cluster) > 0:
		rc := b.clusterClient()
		s := redisstore.New(rc, nil)
		c.store, c.closers = s, []func() error{rc.Close, s.Close}
	case len(b.memcached) > 0:
		mc := b.memcacheClient()
		s := memcachestore.New(mc, &memcachestore.Options{Servers: b.memcached})
		c.store, c.closers = s, []func() error{mc.Close, s.Close}
		if b.redis == "" {
			c.noBus = b.localSkip()
			return &c
		}
		rc := b.redisClient()
		rs := redisstore.New(rc, nil)
		c.closers = append(c.closers, rc.Close, rs.Close)
		c.bus, _ = any(rs).(cache.Bus)
		if c.bus == nil {
			c.noBus = "the Redis store (the bus for memcached) has no invalidation bus (cache.Bus) yet"
		}
		return &c
	default:
		rc := b.redisClient()
		s := redisstore.New(rc, nil)
		c.store, c.closers = s, []func() error{rc.Close, s.Close}
	}
	c.bus, _ = c.store.(cache.Bus)
	if c.bus == nil {
		c.noBus = "the Redis store has no invalidation bus (cache.Bus) yet"
	}
	return &c
}
