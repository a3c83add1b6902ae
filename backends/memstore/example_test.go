package memstore_test

import (
	"context"
	"fmt"
	"log"
	"time"

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

func ExampleNew() {
	// nil options: at most DefaultMaxEntries entries.
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close() // stops the store's background goroutine

	// The bounds are exclusive: choose entries or bytes.
	_, err = memstore.New(&memstore.Options{MaxEntries: 1000, MaxBytes: 1 << 20})
	fmt.Println(err)
	// Output: memstore: MaxEntries and MaxBytes are mutually exclusive
}

func ExampleNew_maxEntries() {
	// At most 1000 entries, whatever their size; past it, the entries least
	// likely to be used again are evicted.
	store, err := memstore.New(&memstore.Options{MaxEntries: 1000})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	ctx := context.Background()
	squares := cache.New[int, int](store, &cache.Options[int, int]{Namespace: "squares"})
	for i := range 10 {
		if err := squares.Set(ctx, i, i*i); err != nil {
			log.Fatal(err)
		}
	}
	v, found, err := squares.Get(ctx, 7)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v, found)
	// Output: 49 true
}

func ExampleNew_maxBytes() {
	// At most 64 MiB of entries, for values of very different sizes. An
	// entry weighs its key, its value and 128 bytes of bookkeeping.
	store, err := memstore.New(&memstore.Options{MaxBytes: 64 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	ctx := context.Background()
	pages := cache.New[string, []byte](store, &cache.Options[string, []byte]{
		Namespace: "pages",
		TTL:       time.Minute,
	})
	if err := pages.Set(ctx, "/", make([]byte, 300_000)); err != nil {
		log.Fatal(err)
	}
	page, found, err := pages.Get(ctx, "/")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(page), found)
	// Output: 300000 true
}

func ExampleStore_Watch() {
	// Package lock waits this way for a lock key to be released; a
	// memstore wakes the watchers of its own process.
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	token := []byte("holder-1")
	if err := store.Add(ctx, "job-lock", token, time.Minute); err != nil {
		log.Fatal(err)
	}

	released, stop, err := store.Watch(ctx, "job-lock")
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	// The holder releases the lock.
	if _, err := store.DeleteIfEqual(ctx, "job-lock", token); err != nil {
		log.Fatal(err)
	}
	select {
	case <-released:
		fmt.Println("released")
	case <-time.After(time.Second):
		fmt.Println("still held")
	}
	// Output: released
}

// ExampleStore_Subscribe carries messages between the users of one Store,
// within the process: what a local tier in front of it does with its
// invalidations.
func ExampleStore_Subscribe() {
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close() // stops the subscriptions

	ctx := context.Background()
	received := make(chan string, 1)
	stop, err := store.Subscribe(ctx, "invalidate",
		func(msg []byte) { received <- string(msg) },
		nil) // a memory store never disconnects
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	if err := store.Publish(ctx, "invalidate", []byte("users:42")); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-received)
	// Output: users:42
}
