package memcachestore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/typedcache/typedcache/backends/memcachestore"
	"github.com/typedcache/typedcache/cache"
)

// This example needs memcached servers on the addresses below, so it is only
// compiled.
func Example() {
	client := memcache.New("127.0.0.1:11211", "127.0.0.1:11212")
	client.MaxIdleConns = 64 // about the expected number of concurrent calls
	defer client.Close()     // the store never closes the client

	store := memcachestore.New(client, nil)
	greetings := cache.New[string, string](store, &cache.Options[string, string]{Namespace: "greetings"})
	defer greetings.Close()

	ctx := context.Background()
	if err := greetings.Set(ctx, "en", "hello"); err != nil {
		log.Fatal(err)
	}
	v, found, err := greetings.Get(ctx, "en")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v, found)
}

// ExampleNew configures the client and the store for batches: SetMulti and
// Delete of many keys run up to Options.Concurrency calls at once, as many
// as the client keeps idle connections. It needs a server, so it is only
// compiled.
func ExampleNew() {
	client := memcache.New("127.0.0.1:11211")
	client.Timeout = 200 * time.Millisecond // each read or write
	client.MaxIdleConns = 16
	defer client.Close()

	store := memcachestore.New(client, &memcachestore.Options{Concurrency: 16})
	defer store.Close()

	ctx := context.Background()
	views := cache.New[string, int64](store, &cache.Options[string, int64]{Namespace: "views"})
	err := views.SetMulti(ctx, map[string]int64{"home": 0, "about": 0, "blog": 0})
	if err != nil {
		log.Fatal(err)
	}
	n, err := views.Increment(ctx, "home", 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n)
}

// Memcached cannot report a key's remaining time to live: TTL fails with
// cache.ErrUnsupported, without asking the server, so this example runs
// without one.
func ExampleStore_TTL() {
	client := memcache.New("127.0.0.1:11211")
	defer client.Close()
	c := cache.New[string, string](memcachestore.New(client, nil), nil)
	defer c.Close()

	_, err := c.TTL(context.Background(), "k")
	fmt.Println(errors.Is(err, cache.ErrUnsupported))
	// Output: true
}

// Memcached cannot list keys, so a namespaced cache cannot be cleared: Clear
// fails with cache.ErrUnsupported, without asking the server, so this example
// runs without one. Clear of a cache without namespace flushes every server.
func ExampleStore_Clear() {
	client := memcache.New("127.0.0.1:11211")
	defer client.Close()
	users := cache.New[int, string](memcachestore.New(client, nil), &cache.Options[int, string]{Namespace: "users"})
	defer users.Close()

	err := users.Clear(context.Background())
	fmt.Println(errors.Is(err, cache.ErrUnsupported))
	// Output: true
}

// A value too large for memcached's item size limit (Options.MaxItemSize,
// 1 MiB by default, as memcached's -I) is refused before it is sent, so the
// key's old value stays and this example runs without a server.
func ExampleStore_Set() {
	client := memcache.New("127.0.0.1:11211")
	defer client.Close()
	store := memcachestore.New(client, &memcachestore.Options{MaxItemSize: 1 << 20})
	files := cache.New[string, []byte](store, nil)
	defer files.Close()

	err := files.Set(context.Background(), "big", make([]byte, 2<<20))
	fmt.Println(errors.Is(err, cache.ErrTooLarge))
	// Output: true
}

// Check reads each server's settings and reports those under which the
// store cannot keep its guarantees. It needs servers, so it is only
// compiled.
func ExampleStore_Check() {
	addrs := []string{"127.0.0.1:11211", "127.0.0.1:11212"}
	client := memcache.New(addrs...)
	defer client.Close()
	store := memcachestore.New(client, &memcachestore.Options{Servers: addrs})

	err := store.Check(context.Background())
	switch {
	case errors.Is(err, cache.ErrUnsafeConfig):
		log.Printf("memcached settings: %v", err) // such as evictions=on: start memcached with -M
	case err != nil:
		log.Fatal(err) // a server could not be reached
	}
}
