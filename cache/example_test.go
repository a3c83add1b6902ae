package cache_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/codec"
)

type User struct {
	Name  string
	Email string
}

func Example() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()

	users := cache.New[int, User](store, &cache.Options[int, User]{
		Namespace: "users",
		TTL:       10 * time.Minute,
	})
	if err := users.Set(ctx, 42, User{Name: "Ada", Email: "ada@example.com"}); err != nil {
		panic(err)
	}
	u, found, err := users.Get(ctx, 42)
	fmt.Println(u.Name, found, err)

	_, found, err = users.Get(ctx, 7)
	fmt.Println(found, err)
	fmt.Println(users.Key(42))
	// Output:
	// Ada true <nil>
	// false <nil>
	// users:42
}

func ExampleNew() {
	store, _ := memstore.New(nil)
	defer store.Close()
	// Every option has a default: nil options are fine.
	plain := cache.New[string, string](store, nil)
	// A namespace, a key function, a codec, a TTL and a timeout.
	custom := cache.New[int, []string](store, &cache.Options[int, []string]{
		Namespace: "tags",
		Key:       func(id int) string { return fmt.Sprintf("post-%d", id) },
		Codec:     codec.JSON[[]string](),
		TTL:       time.Hour,
		Timeout:   100 * time.Millisecond,
	})
	fmt.Println(plain.Key("a"), custom.Key(7))
	// Output: a tags:post-7
}

func ExampleCache_Get() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	c := cache.New[string, int](store, nil)

	c.Set(ctx, "zero", 0)
	v, found, err := c.Get(ctx, "zero")
	fmt.Println(v, found, err) // a cached zero value is a hit
	_, found, err = c.Get(ctx, "missing")
	fmt.Println(found, err) // a miss is not an error
	// Output:
	// 0 true <nil>
	// false <nil>
}

func ExampleCache_GetMulti() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	c := cache.New[string, string](store, nil)
	c.SetMulti(ctx, map[string]string{"a": "1", "b": "2"})
	got, _ := c.GetMulti(ctx, []string{"a", "b", "c"})
	fmt.Println(len(got), got["a"], got["b"])
	// Output: 2 1 2
}

func ExampleCache_Add() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	c := cache.New[string, string](store, nil)
	fmt.Println(c.Add(ctx, "k", "first"))
	err := c.Add(ctx, "k", "second")
	fmt.Println(errors.Is(err, cache.ErrExists))
	// Output:
	// <nil>
	// true
}

func ExampleCache_WithTTL() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	c := cache.New[string, string](store, &cache.Options[string, string]{TTL: time.Minute})
	c.Set(ctx, "default", "v")              // expires in a minute
	c.WithTTL(0).Set(ctx, "forever", "v")   // never expires
	c.WithTTL(time.Hour).Set(ctx, "h", "v") // in an hour
	ttl, _ := c.TTL(ctx, "forever")
	fmt.Println(ttl == cache.NoExpiration)
	// Output: true
}

func ExampleCache_Increment() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	hits := cache.New[string, int64](store, &cache.Options[string, int64]{Namespace: "hits"})
	hits.Increment(ctx, "home", 5)
	hits.Increment(ctx, "home", -8)
	n, _, _ := hits.Get(ctx, "home") // Increment and Get agree
	fmt.Println(n)
	// Output: -3
}

func ExampleCache_Clear() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	a := cache.New[string, string](store, &cache.Options[string, string]{Namespace: "a"})
	b := cache.New[string, string](store, &cache.Options[string, string]{Namespace: "b"})
	a.Set(ctx, "k", "a")
	b.Set(ctx, "k", "b")
	a.Clear(ctx) // only namespace a
	_, foundA, _ := a.Get(ctx, "k")
	_, foundB, _ := b.Get(ctx, "k")
	fmt.Println(foundA, foundB)
	// Output: false true
}

func ExampleCache_GetOrCompute() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	c := cache.New[string, string](store, nil)
	load := func(ctx context.Context) (string, error) {
		fmt.Println("computing")
		return "value", nil
	}
	v, _ := c.GetOrCompute(ctx, "k", load)
	fmt.Println(v)
	v, _ = c.GetOrCompute(ctx, "k", load) // cached: no computation
	fmt.Println(v)
	// Output:
	// computing
	// value
	// value
}

func ExampleCache_CompareAndSwap() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	c := cache.New[string, int](store, nil)
	c.Set(ctx, "n", 1)
	v, _, token, _ := c.Gets(ctx, "n")
	c.Set(ctx, "n", 5) // someone else writes
	err := c.CompareAndSwap(ctx, "n", v+1, token)
	fmt.Println(errors.Is(err, cache.ErrConflict))
	// Output: true
}

func ExampleCache_Stats() {
	ctx := context.Background()
	store, _ := memstore.New(nil)
	defer store.Close()
	c := cache.New[string, string](store, nil)
	c.Set(ctx, "k", "v")
	c.Get(ctx, "k")
	c.Get(ctx, "missing")
	st := c.Stats()
	fmt.Println(st.Hits, st.Misses, st.Sets)
	// Output: 1 1 1
}
