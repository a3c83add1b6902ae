package memstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/cache"
)

func Example() {
	store, err := memstore.New(&memstore.Options{MaxEntries: 10_000})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	greetings := cache.New[string, string](store, &cache.Options[string, string]{Namespace: "greetings"})
	ctx := context.Background()
	if err := greetings.Set(ctx, "en", "hello"); err != nil {
		log.Fatal(err)
	}
	v, found, err := greetings.Get(ctx, "en")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v, found)
	// Output: hello true
}
