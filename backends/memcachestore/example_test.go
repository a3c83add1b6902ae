package memcachestore_test

import (
	"context"
	"fmt"
	"log"

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
