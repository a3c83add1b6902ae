package redisstore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/lock"
)

// Example builds a Cache over a Redis server. It needs a server, so it is
// only compiled.
func Example() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{
		Addr:                  "127.0.0.1:6379",
		ContextTimeoutEnabled: true, // the Cache's Timeout bounds each call (see Timeouts)
	})
	defer rdb.Close() // the store never closes the client

	store := redisstore.New(rdb, nil)
	defer store.Close()

	type user struct {
		Name string
		Age  int
	}
	users := cache.New[int, user](store, &cache.Options[int, user]{
		Namespace: "users",
		TTL:       10 * time.Minute,
		Timeout:   time.Second,
	})
	if err := users.Set(ctx, 42, user{Name: "Ada", Age: 36}); err != nil {
		log.Fatal(err)
	}
	u, found, err := users.Get(ctx, 42)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(u.Name, found)
}

// ExampleNew_cluster builds a store over a Redis Cluster: the same code
// serves a single node, a Cluster, a Ring and a failover client. It needs
// servers, so it is only compiled.
func ExampleNew_cluster() {
	ctx := context.Background()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"},
	})
	defer rdb.Close()

	// Every process that shares the keys uses the same channel prefix.
	store := redisstore.New(rdb, &redisstore.Options{ChannelPrefix: "myapp:release:"})
	defer store.Close()

	counters := cache.New[string, int64](store, &cache.Options[string, int64]{Namespace: "views"})
	n, err := counters.Increment(ctx, "home", 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n)
}

// ExampleStore_Watch shows what package lock does with Watch: a waiter in
// one process wakes as soon as a holder in any process releases the lock.
// It needs a server, so it is only compiled.
func ExampleStore_Watch() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	store := redisstore.New(rdb, nil)
	defer store.Close() // stops the pub/sub connection that Watch opened

	key := "jobs:nightly-lock"
	released, stop, err := store.Watch(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	select {
	case <-released: // DeleteIfEqual of key, by any client of this Redis
		fmt.Println("released: try to take it")
	case <-time.After(10 * time.Second):
		fmt.Println("still held")
	}
}

// ExampleStore_Subscribe shows the bus that a local tier uses for its
// invalidations: every process subscribes to a channel and publishes on
// it. state(false) says that messages may be lost from then on, until
// state(true). It needs a server, so it is only compiled.
func ExampleStore_Subscribe() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()
	store := redisstore.New(rdb, nil)
	defer store.Close() // stops the pub/sub connection and calls state(false)

	stop, err := store.Subscribe(ctx, "myapp:invalidate",
		func(msg []byte) { fmt.Printf("drop %s\n", msg) },
		func(connected bool) {
			if !connected {
				fmt.Println("messages may be lost: stop trusting local copies")
			}
		})
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	// Any process, this one included, invalidates a key.
	if err := store.Publish(ctx, "myapp:invalidate", []byte("users:42")); err != nil {
		log.Fatal(err)
	}
}

// A lock's release is published on a channel that redis-cli can watch:
// SUBSCRIBE typedcache:release:reports:daily-lock. Channel does not use the
// server.
func ExampleStore_Channel() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	store := redisstore.New(rdb, nil)
	defer store.Close()

	reports := cache.New[string, string](store, &cache.Options[string, string]{Namespace: "reports"})
	l, err := lock.NewRedLock(reports, "daily", time.Minute, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", store.Channel(l.Key()))
	// Output: "typedcache:release:reports:daily\x00lock"
}

// ExampleStore_Client runs a command that the Store does not offer on the
// client it was built with. It needs a server, so it is only compiled.
func ExampleStore_Client() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	store := redisstore.New(rdb, nil)
	defer store.Close()

	size, err := store.Client().DBSize(ctx).Result()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(size, "keys")
}
