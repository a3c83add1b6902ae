package memo_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/memo"
)

func ExampleGetOrCompute() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
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

func ExampleGetOrCompute_notFound() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, &cache.Options[string, string]{TTL: time.Hour})

	// The computation says "no such user" with ErrNotFound; NegativeTTL
	// caches that answer too, so that unknown keys do not hit the database.
	lookup := func(ctx context.Context) (string, error) {
		fmt.Println("looking up")
		return "", memo.ErrNotFound
	}
	opts := &memo.Options{NegativeTTL: time.Minute}
	for range 2 {
		_, err := memo.GetOrCompute(ctx, c, "nobody", lookup, opts)
		fmt.Println(errors.Is(err, memo.ErrNotFound))
	}
	// A plain read sees a miss.
	_, found, err := c.Get(ctx, "nobody")
	fmt.Println(found, err)
	// Output:
	// looking up
	// true
	// true
	// false <nil>
}

func ExampleGetOrComputeMulti() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[int, string](store, nil)
	if err := c.Set(ctx, 1, "one"); err != nil {
		log.Fatal(err)
	}

	got, err := memo.GetOrComputeMulti(ctx, c, []int{1, 2, 3}, func(ctx context.Context, missing []int) (map[int]string, error) {
		fmt.Println("computing", missing)
		return map[int]string{2: "two"}, nil // 3 does not exist
	}, nil)
	fmt.Println(got[1], got[2])
	fmt.Println(err)
	// Output:
	// computing [2 3]
	// one two
	// memo: no value for 1 of the keys: 3: memo: get-or-compute 3: memo: not found
}

func ExampleKeyErrors() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[int, string](store, nil)

	errDown := errors.New("shard down")
	got, err := memo.GetOrComputeMulti(ctx, c, []int{1, 2, 3}, func(ctx context.Context, missing []int) (map[int]string, error) {
		// 1 is found, 2 fails, 3 does not exist.
		return map[int]string{1: "one"}, memo.KeyErrors[int]{2: errDown}
	}, nil)
	fmt.Println(len(got), got[1])

	var failed memo.KeyErrors[int]
	if errors.As(err, &failed) {
		for _, k := range slices.Sorted(maps.Keys(failed)) {
			fmt.Println(k, errors.Is(failed[k], errDown), errors.Is(failed[k], memo.ErrNotFound))
		}
	}
	// Output:
	// 1 one
	// 2 true false
	// 3 false true
}

func ExampleFunc() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[int, string](store, &cache.Options[int, string]{Namespace: "squares", TTL: time.Hour})

	square := memo.Func(c, func(ctx context.Context, n int) (string, error) {
		fmt.Println("computing", n)
		return fmt.Sprint(n * n), nil
	}, nil)
	defer square.Close() // runs before store.Close

	for range 2 {
		v, err := square.Get(ctx, 12) // the second from the cache
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(v)
	}
	// What the Memo did is counted in the cache's Stats.
	st := c.Stats()
	fmt.Println(st.Hits, st.Misses, st.Computations)
	// Output:
	// computing 12
	// 144
	// 144
	// 1 1 1
}

func ExampleMemo_Get() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, int](store, &cache.Options[string, int]{Namespace: "ages", TTL: time.Hour})

	ages := map[string]int{"ada": 36}
	age := memo.Func(c, func(ctx context.Context, name string) (int, error) {
		fmt.Println("querying", name)
		a, ok := ages[name]
		if !ok {
			return 0, memo.ErrNotFound
		}
		return a, nil
	}, &memo.Options{NegativeTTL: time.Minute})
	defer age.Close()

	for _, name := range []string{"ada", "ada", "bob", "bob"} {
		a, err := age.Get(ctx, name)
		switch {
		case errors.Is(err, memo.ErrNotFound):
			fmt.Println(name, "not found")
		case err != nil:
			log.Fatal(err)
		default:
			fmt.Println(name, a)
		}
	}
	// Output:
	// querying ada
	// ada 36
	// ada 36
	// querying bob
	// bob not found
	// bob not found
}

func ExampleMemo_GetMulti() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[int, int](store, &cache.Options[int, int]{Namespace: "squares"})

	// fn runs once per missing key, concurrently.
	square := memo.Func(c, func(ctx context.Context, n int) (int, error) {
		return n * n, nil
	}, nil)
	defer square.Close()

	if _, err := square.Get(ctx, 2); err != nil {
		log.Fatal(err)
	}
	// One read of all three keys; fn runs for 1 and 3 only.
	got, err := square.GetMulti(ctx, []int{1, 2, 3})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got[1], got[2], got[3])
	// Output: 1 4 9
}

func ExampleMemo_Invalidate() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, &cache.Options[string, string]{Namespace: "names", TTL: time.Hour})

	names := map[string]string{"u1": "Ada"}
	name := memo.Func(c, func(ctx context.Context, id string) (string, error) {
		return names[id], nil
	}, nil)
	defer name.Close()

	v, err := name.Get(ctx, "u1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v)

	// The source changes. Invalidate removes the cached value, and would
	// also drop the value of a computation running meanwhile rather than
	// let it write the old name back.
	names["u1"] = "Ada Lovelace"
	if err := name.Invalidate(ctx, "u1"); err != nil {
		log.Fatal(err)
	}
	v, err = name.Get(ctx, "u1") // computed again
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v)
	// Output:
	// Ada
	// Ada Lovelace
}

func ExampleMemo_Refresh() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, int](store, &cache.Options[string, int]{TTL: time.Hour})

	version := 0
	config := memo.Func(c, func(ctx context.Context, name string) (int, error) {
		version++
		return version, nil
	}, nil)
	defer config.Close()

	v, err := config.Get(ctx, "flags")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v)
	v, err = config.Refresh(ctx, "flags") // recomputed, whatever the cache holds
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v)
	v, err = config.Get(ctx, "flags") // the refreshed value, from the cache
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v)
	// Output:
	// 1
	// 2
	// 2
}

func ExampleMemo_Close() {
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	c := cache.New[int, int](store, &cache.Options[int, int]{TTL: time.Hour})
	m := memo.Func(c, func(ctx context.Context, n int) (int, error) { return n, nil },
		&memo.Options{RefreshAhead: 0.8}) // refreshes run in the background

	if _, err := m.Get(context.Background(), 1); err != nil {
		log.Fatal(err)
	}
	// At shutdown: first stop the Memo's goroutines (Close cancels them,
	// then waits for them to return), then close the store.
	m.Close()
	if err := store.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("closed")
	// Output: closed
}

// Options turn on negative caching (a not-found answer is cached too) and
// refresh-ahead (past a fraction of the TTL, callers still get the cached
// value at once while one of them recomputes it in the background).
func ExampleOptions() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, int](store, &cache.Options[string, int]{TTL: time.Second})

	var mu sync.Mutex
	versions := map[string]int{"flags": 1}
	config := memo.Func(c, func(ctx context.Context, name string) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		v, ok := versions[name]
		if !ok {
			return 0, memo.ErrNotFound
		}
		return v, nil
	}, &memo.Options{
		NegativeTTL:  time.Minute, // "no such config" is cached for a minute
		RefreshAhead: 0.01,        // recompute 10ms (1% of the TTL) after a write
	})
	defer config.Close()

	v, err := config.Get(ctx, "flags") // computed
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v)

	mu.Lock()
	versions["flags"] = 2 // the source changes
	mu.Unlock()
	time.Sleep(20 * time.Millisecond) // past the refresh point
	v, err = config.Get(ctx, "flags") // the cached value at once; a refresh starts
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v)
	for v != 2 { // wait for the refresh to store the new value
		time.Sleep(time.Millisecond)
		if v, _, err = c.Get(ctx, "flags"); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(v)

	for range 2 {
		_, err = config.Get(ctx, "nope") // the second from the cache
		fmt.Println(errors.Is(err, memo.ErrNotFound))
	}
	st := c.Stats()
	fmt.Println(st.Refreshes, st.NegativeHits)
	// Output:
	// 1
	// 1
	// 2
	// true
	// true
	// 1 1
}

// A batch loader: Memo.GetMulti calls it once for all the keys it misses,
// as one query (SELECT ... WHERE id IN (...)), and Memo.Get with one key.
func ExampleFuncBatch() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[int, string](store, &cache.Options[int, string]{Namespace: "products", TTL: time.Hour})

	db := map[int]string{1: "apple", 2: "pear", 3: "plum"}
	products := memo.FuncBatch(c, func(ctx context.Context, ids []int) (map[int]string, error) {
		fmt.Println("query", ids)
		found := make(map[int]string, len(ids))
		for _, id := range ids {
			if name, ok := db[id]; ok {
				found[id] = name
			}
		}
		return found, nil // an id it does not return does not exist
	}, &memo.Options{NegativeTTL: time.Minute})
	defer products.Close()

	p, err := products.Get(ctx, 2) // the loader with one key
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p)

	// One read of the four keys, one call of the loader for the three missing.
	got, err := products.GetMulti(ctx, []int{1, 2, 3, 4})
	fmt.Println(got[1], got[2], got[3], len(got))
	var failed memo.KeyErrors[int]
	fmt.Println(errors.As(err, &failed) && errors.Is(failed[4], memo.ErrNotFound))
	// Output:
	// query [2]
	// pear
	// query [1 3 4]
	// apple pear plum 3
	// true
}

// Fail-safe: when the computation that would replace an expired value
// fails, callers get that value instead of the error, and the failing
// source is asked again only after FailSafeThrottle.
func ExampleOptions_failSafe() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, &cache.Options[string, string]{TTL: 50 * time.Millisecond})

	var down atomic.Bool
	rates := memo.Func(c, func(ctx context.Context, pair string) (string, error) {
		if down.Load() {
			return "", errors.New("rates service down")
		}
		return "1.08", nil
	}, &memo.Options{
		FailSafeMax:      time.Hour,   // keep a value up to an hour past its TTL
		FailSafeThrottle: time.Minute, // serve it as fresh for a minute after a failure
	})
	defer rates.Close()

	v, err := rates.Get(ctx, "EURUSD")
	fmt.Println(v, err)

	down.Store(true)
	time.Sleep(100 * time.Millisecond) // past the TTL
	v, err = rates.Get(ctx, "EURUSD")  // the computation fails: the stale value
	fmt.Println(v, err)
	fmt.Println(c.Stats().StaleServed)
	// Output:
	// 1.08 <nil>
	// 1.08 <nil>
	// 1
}

// The computation decides about the value it returns: its own TTL, or not
// to store it at all.
func ExampleCallFrom() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, &cache.Options[string, string]{Namespace: "pages", TTL: time.Hour})

	pages := memo.Func(c, func(ctx context.Context, path string) (string, error) {
		switch path {
		case "/news":
			memo.CallFrom(ctx).SetTTL(time.Minute) // changes often
		case "/account":
			memo.CallFrom(ctx).DontCache() // private: returned, not stored
		}
		return "the page " + path, nil
	}, nil)
	defer pages.Close()

	for _, path := range []string{"/news", "/account", "/about"} {
		if _, err := pages.Get(ctx, path); err != nil {
			log.Fatal(err)
		}
		ttl, err := c.TTL(ctx, path)
		if errors.Is(err, cache.ErrNotFound) {
			fmt.Println(path, "not stored")
			continue
		}
		fmt.Println(path, ttl.Round(time.Minute))
	}
	// Output:
	// /news 1m0s
	// /account not stored
	// /about 1h0m0s
}
