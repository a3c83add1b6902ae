package lock_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/lock"
)

func ExampleNewRedLock() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	c := cache.New[string, string](store, &cache.Options[string, string]{Namespace: "reports"})

	l := lock.NewRedLock(c, "daily", 30*time.Second, nil)
	if err := l.Acquire(ctx); err != nil {
		panic(err)
	}
	fmt.Println("held:", l.Key())
	// ... build the report; Extend the lease if it takes longer ...
	if err := l.Release(ctx); err != nil {
		fmt.Println("lease lost:", err)
	}
	// Output: held: reports:daily-lock
}

func ExampleRedLock_Do() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	c := cache.New[string, string](store, nil)

	err := lock.NewRedLock(c, "job", time.Minute, nil).Do(ctx, func(ctx context.Context) error {
		fmt.Println("only one holder runs this at a time")
		return nil
	})
	fmt.Println(err)
	// Output:
	// only one holder runs this at a time
	// <nil>
}

func ExampleRedLock_AcquireOrWait() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	c := cache.New[string, string](store, nil)

	// The read-through pattern: the holder computes, the others wait for
	// it (at most the lease) and read what it stored.
	l := lock.NewRedLock(c, "k", 5*time.Second, nil)
	held, err := l.AcquireOrWait(ctx)
	if err != nil {
		panic(err)
	}
	if held {
		defer l.Release(ctx)
		c.Set(ctx, "k", "computed")
	}
	v, _, _ := c.Get(ctx, "k")
	fmt.Println(held, v)
	// Output: true computed
}

func ExampleRedLock_Fence() {
	ctx := context.Background()
	// Fencing tokens need a store that hands them out: Redis or memory.
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	c := cache.New[string, string](redisstore.New(client, nil), nil)

	l := lock.NewRedLock(c, "ledger", 10*time.Second, nil)
	if err := l.Acquire(ctx); err != nil {
		return
	}
	defer l.Release(ctx)
	if fence, ok := l.Fence(); ok {
		// Send fence with every write; the resource rejects a fence
		// smaller than the largest it has seen.
		_ = fence
	}
}

func ExampleNewOptimisticLock() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	c := cache.New[string, int](store, nil)
	c.Set(ctx, "stock", 10)

	ol, err := lock.NewOptimisticLock(ctx, c, "stock")
	if err != nil {
		panic(err)
	}
	n, _ := ol.Value()
	c.Set(ctx, "stock", 7) // another writer gets there first
	err = ol.CAS(ctx, n-1)
	fmt.Println(errors.Is(err, lock.ErrConflict))
	// Output: true
}

func ExampleUpdate() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	type cart struct{ Items []string }
	c := cache.New[string, cart](store, nil)

	v, err := lock.Update(ctx, c, "cart:1", func(old cart, found bool) (cart, error) {
		old.Items = append(old.Items, "book")
		return old, nil
	}, nil)
	fmt.Println(v.Items, err)
	// Output: [book] <nil>
}
