package memo_test

import (
	"context"
	"fmt"
	"time"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/memo"
)

func ExampleGetOrCompute() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	c := cache.New[string, string](store, &cache.Options[string, string]{TTL: time.Minute})

	load := func(ctx context.Context) (string, error) {
		fmt.Println("loading")
		return "profile of ada", nil
	}
	for range 2 {
		v, err := memo.GetOrCompute(ctx, c, "ada", load, &memo.Options{Lease: 5 * time.Second})
		fmt.Println(v, err)
	}
	// Output:
	// loading
	// profile of ada <nil>
	// profile of ada <nil>
}

func ExampleGetOrComputeMulti() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	c := cache.New[int, string](store, nil)
	c.Set(ctx, 1, "one")

	got, err := memo.GetOrComputeMulti(ctx, c, []int{1, 2, 3}, func(ctx context.Context, missing []int) (map[int]string, error) {
		fmt.Println("computing", missing)
		return map[int]string{2: "two"}, nil // 3 does not exist
	}, nil)
	fmt.Println(got[1], got[2], err)
	// Output:
	// computing [2 3]
	// one two memo: no value for 1 of the keys: 3: cache: get-or-compute 3: memo: not found
}

func ExampleFunc() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	c := cache.New[int, string](store, &cache.Options[int, string]{Namespace: "squares", TTL: time.Hour})

	square := memo.Func(c, func(ctx context.Context, n int) (string, error) {
		fmt.Println("computing", n)
		return fmt.Sprint(n * n), nil
	}, &memo.Options{NegativeTTL: time.Minute})
	defer square.Close()

	v, _ := square.Get(ctx, 12)
	fmt.Println(v)
	v, _ = square.Get(ctx, 12) // from the cache
	fmt.Println(v)
	square.Invalidate(ctx, 12)
	v, _ = square.Get(ctx, 12) // computed again
	fmt.Println(v)
	// Output:
	// computing 12
	// 144
	// 144
	// computing 12
	// 144
}
