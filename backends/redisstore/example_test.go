package redisstore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/cache"
)

// Example builds a Cache over a Redis server. It needs a server, so it is
// only compiled.
func Example() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
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
