package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
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
		log.Fatal(err)
	}
	defer store.Close()

	users := cache.New[int, User](store, &cache.Options[int, User]{
		Namespace: "users",
		TTL:       10 * time.Minute,
	})
	if err := users.Set(ctx, 42, User{Name: "Ada", Email: "ada@example.com"}); err != nil {
		log.Fatal(err)
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
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
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
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, int](store, nil)

	if err := c.Set(ctx, "zero", 0); err != nil {
		log.Fatal(err)
	}
	v, found, err := c.Get(ctx, "zero")
	fmt.Println(v, found, err) // a cached zero value is a hit
	_, found, err = c.Get(ctx, "missing")
	fmt.Println(found, err) // a miss is not an error
	// Output:
	// 0 true <nil>
	// false <nil>
}

func ExampleCache_Set() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	sessions := cache.New[string, User](store, &cache.Options[string, User]{
		Namespace: "sessions",
		TTL:       30 * time.Minute, // every Set expires after 30 minutes
	})

	if err := sessions.Set(ctx, "s1", User{Name: "Ada"}); err != nil {
		log.Fatal(err)
	}
	u, found, err := sessions.Get(ctx, "s1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(u.Name, found)
	// Output: Ada true
}

func ExampleCache_SetMulti() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	prices := cache.New[string, int](store, &cache.Options[string, int]{Namespace: "prices"})

	// One call, pipelined where the store allows.
	err = prices.SetMulti(ctx, map[string]int{"apple": 3, "pear": 4})
	if err != nil {
		log.Fatal(err)
	}
	pear, found, err := prices.Get(ctx, "pear")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pear, found)
	// Output: 4 true
}

func ExampleCache_GetMulti() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, nil)
	if err := c.SetMulti(ctx, map[string]string{"a": "1", "b": "2"}); err != nil {
		log.Fatal(err)
	}

	got, err := c.GetMulti(ctx, []string{"a", "b", "c"})
	if err != nil {
		log.Fatal(err)
	}
	_, found := got["c"] // misses are absent from the map
	fmt.Println(len(got), got["a"], got["b"], found)
	// Output: 2 1 2 false
}

func ExampleCache_Add() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, nil)
	fmt.Println(c.Add(ctx, "k", "first"))
	err = c.Add(ctx, "k", "second")
	fmt.Println(errors.Is(err, cache.ErrExists))
	// Output:
	// <nil>
	// true
}

func ExampleCache_Delete() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, nil)
	if err := c.SetMulti(ctx, map[string]string{"a": "1", "b": "2"}); err != nil {
		log.Fatal(err)
	}

	n, err := c.Delete(ctx, "a", "b", "never-set")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n) // only the keys that existed count
	// Output: 2
}

func ExampleCache_Exists() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, nil)
	if err := c.Set(ctx, "k", ""); err != nil {
		log.Fatal(err)
	}

	for _, k := range []string{"k", "missing"} {
		ok, err := c.Exists(ctx, k)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(k, ok)
	}
	// Output:
	// k true
	// missing false
}

func ExampleCache_Expire() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, &cache.Options[string, string]{TTL: time.Minute})
	if err := c.Set(ctx, "session", "ada"); err != nil {
		log.Fatal(err)
	}

	// Push the expiry back to an hour from now.
	ok, err := c.Expire(ctx, "session", time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	ttl, err := c.TTL(ctx, "session")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ok, ttl.Round(time.Minute))

	// A ttl of 0 removes the expiry.
	if _, err := c.Expire(ctx, "session", 0); err != nil {
		log.Fatal(err)
	}
	ttl, err = c.TTL(ctx, "session")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ttl == cache.NoExpiration)

	// A missing key is not an error: Expire reports that it did not exist.
	ok, err = c.Expire(ctx, "missing", time.Hour)
	fmt.Println(ok, err)
	// Output:
	// true 1h0m0s
	// true
	// false <nil>
}

func ExampleCache_TTL() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, &cache.Options[string, string]{TTL: 10 * time.Minute})
	if err := c.Set(ctx, "k", "v"); err != nil {
		log.Fatal(err)
	}
	if err := c.WithTTL(0).Set(ctx, "forever", "v"); err != nil {
		log.Fatal(err)
	}

	ttl, err := c.TTL(ctx, "k")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ttl.Round(time.Minute))

	ttl, err = c.TTL(ctx, "forever")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ttl == cache.NoExpiration)

	_, err = c.TTL(ctx, "missing")
	fmt.Println(errors.Is(err, cache.ErrNotFound))
	// Output:
	// 10m0s
	// true
	// true
}

func ExampleCache_WithTTL() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, &cache.Options[string, string]{TTL: time.Minute})

	if err := c.Set(ctx, "default", "v"); err != nil { // expires in a minute
		log.Fatal(err)
	}
	if err := c.WithTTL(0).Set(ctx, "forever", "v"); err != nil { // never expires
		log.Fatal(err)
	}
	if err := c.WithTTL(time.Hour).Set(ctx, "hour", "v"); err != nil { // in an hour
		log.Fatal(err)
	}
	for _, k := range []string{"default", "forever", "hour"} {
		ttl, err := c.TTL(ctx, k)
		if err != nil {
			log.Fatal(err)
		}
		if ttl == cache.NoExpiration {
			fmt.Println(k, "never expires")
		} else {
			fmt.Println(k, "expires in", ttl.Round(time.Minute))
		}
	}
	// Output:
	// default expires in 1m0s
	// forever never expires
	// hour expires in 1h0m0s
}

func ExampleCache_WriteTTL() {
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, &cache.Options[string, string]{TTL: time.Minute})
	fmt.Println(c.WriteTTL(), c.WithTTL(time.Hour).WriteTTL())
	// Output: 1m0s 1h0m0s
}

func ExampleCache_Increment() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	hits := cache.New[string, int64](store, &cache.Options[string, int64]{Namespace: "hits"})

	if _, err := hits.Increment(ctx, "home", 5); err != nil {
		log.Fatal(err)
	}
	n, err := hits.Increment(ctx, "home", -8)
	if err != nil {
		log.Fatal(err)
	}
	v, found, err := hits.Get(ctx, "home") // Increment and Get agree
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, v, found)
	// Output: -3 -3 true
}

func ExampleCache_Clear() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	a := cache.New[string, string](store, &cache.Options[string, string]{Namespace: "a"})
	b := cache.New[string, string](store, &cache.Options[string, string]{Namespace: "b"})
	if err := a.Set(ctx, "k", "a"); err != nil {
		log.Fatal(err)
	}
	if err := b.Set(ctx, "k", "b"); err != nil {
		log.Fatal(err)
	}

	if err := a.Clear(ctx); err != nil { // only namespace a
		log.Fatal(err)
	}
	_, foundA, _ := a.Get(ctx, "k")
	_, foundB, _ := b.Get(ctx, "k")
	fmt.Println(foundA, foundB)
	// Output: false true
}

func ExampleCache_GetOrCompute() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, nil)
	load := func(ctx context.Context) (string, error) {
		fmt.Println("computing")
		return "value", nil
	}

	for range 2 { // the second call finds the value: no computation
		v, err := c.GetOrCompute(ctx, "k", load)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(v)
	}
	// Output:
	// computing
	// value
	// value
}

func ExampleCache_Gets() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, int](store, nil)

	// A read-modify-write that loses no update: read with a token, write
	// back only if nobody wrote since, else read again.
	incr := func() {
		for {
			n, found, token, err := c.Gets(ctx, "visits")
			if err != nil {
				log.Fatal(err)
			}
			// On a miss, n is 0 and the token is the absent token: the
			// write then succeeds only if the key is still absent.
			err = c.CompareAndSwap(ctx, "visits", n+1, token)
			if err == nil {
				fmt.Println(found, n+1)
				return
			}
			if !errors.Is(err, cache.ErrConflict) {
				log.Fatal(err)
			}
		}
	}
	incr()
	incr()
	// Output:
	// false 1
	// true 2
}

func ExampleCache_CompareAndSwap() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, int](store, nil)
	if err := c.Set(ctx, "n", 1); err != nil {
		log.Fatal(err)
	}

	v, _, token, err := c.Gets(ctx, "n")
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Set(ctx, "n", 5); err != nil { // someone else writes
		log.Fatal(err)
	}
	err = c.CompareAndSwap(ctx, "n", v+1, token)
	fmt.Println(errors.Is(err, cache.ErrConflict))
	// Output: true
}

func ExampleCache_Key() {
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	users := cache.New[int, User](store, &cache.Options[int, User]{Namespace: "users"})
	type point struct{ X, Y int }
	tiles := cache.New[point, []byte](store, &cache.Options[point, []byte]{
		Namespace: "tiles",
		Key:       func(p point) string { return fmt.Sprintf("%d/%d", p.X, p.Y) },
	})

	// The keys as the store (and redis-cli) sees them.
	fmt.Println(users.Key(42))
	fmt.Println(tiles.Key(point{3, 4}))
	// Output:
	// users:42
	// tiles:3/4
}

// A package built on the Cache reaches the store through its Door: store
// keys checked as every operation checks them, and records kept beside a
// value's key that no key of any Cache can name.
func ExampleCache_Door() {
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	users := cache.New[string, User](store, &cache.Options[string, User]{Namespace: "users"})
	door := users.Door()

	key, err := door.Key("ada")
	fmt.Println(key, err)
	_, err = door.Key("") // the empty key is refused, as by every operation
	fmt.Println(errors.Is(err, cache.ErrInvalidKey))
	rec, err := door.Record("ada", "lock")
	fmt.Printf("%q %v\n", rec.Key(), err)
	// Output:
	// users:ada <nil>
	// true
	// "users:ada\x00lock" <nil>
}

func ExampleCache_Namespace() {
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	users := cache.New[int, User](store, &cache.Options[int, User]{Namespace: "users"})
	plain := cache.New[int, User](store, nil)
	fmt.Printf("%q %q\n", users.Namespace(), plain.Namespace())
	// Output: "users:" ""
}

func ExampleCache_Close() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	c := cache.New[string, string](store, nil)

	// Close closes the store under the cache (here the memstore; a store
	// over a client never closes the client).
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}
	err = c.Set(ctx, "k", "v")
	fmt.Println(errors.Is(err, cache.ErrClosed))
	fmt.Println(err)
	// Output:
	// true
	// cache: set k: cache: store closed
}

func ExampleCache_Check() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, &cache.Options[string, string]{Timeout: 2 * time.Second})

	// Once, when the service starts: log the settings under which the
	// store cannot keep its guarantees (docs/operations.md). Each finding
	// is a *cache.SettingError matching cache.ErrUnsafeConfig; any other
	// error says what could not be checked (a server that refuses CONFIG).
	// A memory store has nothing to report.
	err = c.Check(ctx)
	if err != nil {
		log.Printf("cache settings (unsafe: %v): %v", errors.Is(err, cache.ErrUnsafeConfig), err)
	}
	fmt.Println(err)
	// Output: <nil>
}

func ExampleCache_Stats() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, nil)
	if err := c.Set(ctx, "k", "v"); err != nil {
		log.Fatal(err)
	}
	for _, k := range []string{"k", "missing"} {
		if _, _, err := c.Get(ctx, k); err != nil {
			log.Fatal(err)
		}
	}

	st := c.Stats()
	fmt.Println(st.Hits, st.Misses, st.Sets)
	// Output: 1 1 1
}

func ExampleOpError() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	users := cache.New[string, User](store, &cache.Options[string, User]{Namespace: "users"})

	_, err = users.TTL(ctx, "bob")
	fmt.Println(err)
	// Match the cause with errors.Is; read the operation and key with errors.As.
	var op *cache.OpError
	if errors.As(err, &op) {
		fmt.Println(op.Op, op.Key, errors.Is(err, cache.ErrNotFound))
	}
	// Output:
	// cache: ttl users:bob: cache: not found
	// ttl users:bob true
}

func ExampleRecover() {
	v, err := cache.Recover(func() (int, error) { return 42, nil })
	fmt.Println(v, err)

	// A panic comes back as an error: a *PanicError matching ErrPanic, with
	// the panic's value and stack.
	_, err = cache.Recover(func() (int, error) { panic("boom") })
	fmt.Println(err)
	var pe *cache.PanicError
	if errors.As(err, &pe) {
		fmt.Println(errors.Is(err, cache.ErrPanic), pe.Value, len(pe.Stack) > 0)
	}
	// Output:
	// 42 <nil>
	// cache: computation panicked: boom
	// true boom true
}

// Large values compressed in the store: here a 64 KiB text.
func ExampleCompression() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	pages := cache.New[string, string](store, &cache.Options[string, string]{
		Namespace:   "pages",
		Compression: &cache.Compression{Threshold: 4096}, // S2 above 4 KiB
	})
	page := strings.Repeat("<p>cached page</p>", 3641)
	if err := pages.Set(ctx, "home", page); err != nil {
		log.Fatal(err)
	}
	stored, _ := store.Get(ctx, "pages:home")
	got, _, _ := pages.Get(ctx, "home")
	fmt.Println(len(page), len(stored) < len(page)/10, got == page)
	// Output: 65538 true true
}

// A local tier in each process, kept coherent by the store's bus: two
// Caches over one store stand for two instances of a service (over Redis,
// each process has its own client and the bus is pub/sub).
func ExampleLocalOptions() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	opts := &cache.Options[int, string]{
		Namespace: "products",
		TTL:       10 * time.Minute,
		Local:     &cache.LocalOptions{MaxEntries: 10_000, TTL: time.Minute},
	}
	a := cache.New[int, string](store, opts)
	b := cache.New[int, string](store, opts)
	defer a.Close() // stops the tier's subscription, and closes the store
	defer b.Close()

	if err := a.Set(ctx, 1, "apple"); err != nil {
		log.Fatal(err)
	}
	// b's tier is on once its bus subscription is in place; from then on
	// it serves what it read from memory: no round trip, no decoding.
	for b.Stats().LocalHits == 0 {
		if _, _, err := b.Get(ctx, 1); err != nil {
			log.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}

	// A write through a: the bus drops b's copy, and b reads the store again.
	if err := a.Set(ctx, 1, "green apple"); err != nil {
		log.Fatal(err)
	}
	for {
		v, _, err := b.Get(ctx, 1)
		if err != nil {
			log.Fatal(err)
		}
		if v == "green apple" {
			fmt.Println(v)
			break
		}
		time.Sleep(time.Millisecond)
	}
	// Output: green apple
}
