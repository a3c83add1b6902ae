package memo_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"maps"
	"slices"
	"strconv"
	"strings"
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

// With fail-safe, a value stays in the store past its TTL, and when the
// computation that would replace it fails, callers get it instead of the
// error; the source is not asked again before FailSafeThrottle has passed.
func ExampleOptions_failSafe() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, nil)

	var down atomic.Bool
	var calls atomic.Int64
	price := func(ctx context.Context) (string, error) {
		calls.Add(1)
		if down.Load() {
			return "", errors.New("pricing service down")
		}
		return "42 EUR", nil
	}
	opts := &memo.Options{
		TTL:              20 * time.Millisecond, // fresh for 20ms
		FailSafeMax:      time.Hour,             // kept an hour longer, for when the source fails
		FailSafeThrottle: time.Minute,           // a stale value served is fresh again for a minute
	}
	v, err := memo.GetOrCompute(ctx, c, "book", price, opts)
	fmt.Println(v, err)

	down.Store(true)
	time.Sleep(30 * time.Millisecond) // past the TTL
	for range 2 {
		// The source fails: the stale value, and no error. The second
		// call is within the throttle: the source is not asked.
		v, err = memo.GetOrCompute(ctx, c, "book", price, opts)
		fmt.Println(v, err)
	}
	fmt.Println(calls.Load(), c.Stats().StaleServed)
	// Output:
	// 42 EUR <nil>
	// 42 EUR <nil>
	// 42 EUR <nil>
	// 2 1
}

// SoftTimeout bounds how long a caller that has a stale value waits for a
// slow computation; HardTimeout how long any caller waits. The computation
// goes on in the background and stores its value for the next callers.
func ExampleOptions_timeouts() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, nil)

	slow := make(chan struct{})
	report := func(ctx context.Context) (string, error) {
		select {
		case <-slow:
			return "new report", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	opts := &memo.Options{
		TTL:         20 * time.Millisecond,
		FailSafeMax: time.Hour,
		SoftTimeout: 50 * time.Millisecond,  // a caller with a stale value waits at most this long
		HardTimeout: 200 * time.Millisecond, // any caller waits at most this long
	}
	old := func(ctx context.Context) (string, error) { return "old report", nil }
	if _, err := memo.GetOrCompute(ctx, c, "daily", old, opts); err != nil {
		log.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond) // past the TTL

	v, err := memo.GetOrCompute(ctx, c, "daily", report, opts) // the stale value, past SoftTimeout
	fmt.Println(v, err)
	_, err = memo.GetOrCompute(ctx, c, "weekly", report, opts) // nothing stale: an error, past HardTimeout
	fmt.Println(errors.Is(err, context.DeadlineExceeded))

	close(slow) // the source answers: both computations store their values
	for _, k := range []string{"daily", "weekly"} {
		for v, _, _ = c.Get(ctx, k); v != "new report"; v, _, _ = c.Get(ctx, k) {
			time.Sleep(time.Millisecond)
		}
		fmt.Println(k, v)
	}
	// Output:
	// old report <nil>
	// true
	// daily new report
	// weekly new report
}

// A computation decides about the value it returns through CallFrom: here
// by the Cache-Control header of the HTTP response it loaded.
func ExampleCallFrom() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, &cache.Options[string, string]{TTL: time.Hour})

	cacheControl := map[string]string{"/": "max-age=60", "/account": "private"}
	fetch := func(path string) func(ctx context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			cc := cacheControl[path]
			if cc == "private" {
				memo.CallFrom(ctx).DontCache()
			} else if secs, ok := strings.CutPrefix(cc, "max-age="); ok {
				n, err := strconv.Atoi(secs)
				if err != nil {
					return "", err
				}
				memo.CallFrom(ctx).SetTTL(time.Duration(n) * time.Second)
			}
			return "page " + path, nil
		}
	}
	for _, path := range []string{"/", "/account"} {
		v, err := memo.GetOrCompute(ctx, c, path, fetch(path), nil)
		if err != nil {
			log.Fatal(err)
		}
		ttl, err := c.TTL(ctx, path)
		fmt.Println(v, ttl.Round(time.Second), errors.Is(err, cache.ErrNotFound))
	}
	// Output:
	// page / 1m0s false
	// page /account 0s true
}

func ExampleCall_SetTTL() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, &cache.Options[string, string]{TTL: time.Hour})

	token, err := memo.GetOrCompute(ctx, c, "api-token", func(ctx context.Context) (string, error) {
		// The token expires in five minutes: cache it no longer.
		memo.CallFrom(ctx).SetTTL(5 * time.Minute)
		return "tok-123", nil
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	ttl, err := c.TTL(ctx, "api-token")
	fmt.Println(token, ttl.Round(time.Minute), err)
	// Output: tok-123 5m0s <nil>
}

func ExampleCall_DontCache() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, &cache.Options[string, string]{TTL: time.Hour})

	feed := func(ctx context.Context) (string, error) {
		fmt.Println("loading")
		// A dependency was down: serve the partial answer, don't cache it.
		memo.CallFrom(ctx).DontCache()
		return "partial feed", nil
	}
	for range 2 {
		v, err := memo.GetOrCompute(ctx, c, "feed", feed, nil)
		fmt.Println(v, err)
	}
	// Output:
	// loading
	// partial feed <nil>
	// loading
	// partial feed <nil>
}

// Stale gives a recomputation the value it replaces, for a conditional
// refresh: the source answers "not modified", and the same value is stored
// fresh again.
func ExampleStale() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	type page struct {
		ETag string
		Body string
	}
	c := cache.New[string, page](store, nil)

	var current atomic.Value // the source's ETag
	current.Store("v1")
	load := func(ctx context.Context) (page, error) {
		etag := current.Load().(string)
		if old, _, ok := memo.Stale[page](ctx); ok && old.ETag == etag {
			fmt.Println("304 not modified")
			return old, nil
		}
		fmt.Println("200", etag)
		return page{ETag: etag, Body: "body " + etag}, nil
	}
	// Fail-safe keeps the value past its TTL, so that the recomputation
	// has it (RefreshAhead would too).
	opts := &memo.Options{TTL: 20 * time.Millisecond, FailSafeMax: time.Hour}
	for _, etag := range []string{"v1", "v1", "v2"} {
		current.Store(etag)
		p, err := memo.GetOrCompute(ctx, c, "/", load, opts)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(p.Body)
		time.Sleep(30 * time.Millisecond) // past the TTL
	}
	// Output:
	// 200 v1
	// body v1
	// 304 not modified
	// body v1
	// 200 v2
	// body v2
}

// FuncBatch memoizes a batch loader: GetMulti asks it once for all the
// keys it misses.
func ExampleFuncBatch() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[int, string](store, &cache.Options[int, string]{Namespace: "users", TTL: time.Hour})

	names := map[int]string{1: "ada", 2: "grace", 3: "edsger"}
	users := memo.FuncBatch(c, func(ctx context.Context, ids []int) (map[int]string, error) {
		fmt.Println("SELECT name FROM users WHERE id IN", ids)
		out := make(map[int]string, len(ids))
		for _, id := range ids {
			if n, ok := names[id]; ok {
				out[id] = n
			}
		}
		return out, nil // an id it does not return does not exist
	}, &memo.Options{NegativeTTL: time.Minute})
	defer users.Close()

	got, err := users.GetMulti(ctx, []int{1, 2})
	fmt.Println(got[1], got[2], err)
	got, err = users.GetMulti(ctx, []int{1, 2, 3, 4}) // asks for 3 and 4 only
	fmt.Println(len(got), errors.Is(err, memo.ErrNotFound))
	v, err := users.Get(ctx, 3) // cached
	fmt.Println(v, err)
	// Output:
	// SELECT name FROM users WHERE id IN [1 2]
	// ada grace <nil>
	// SELECT name FROM users WHERE id IN [3 4]
	// 3 true
	// edsger <nil>
}

// A computation whose key is invalidated while it runs loses its lease:
// its context ends with the cause ErrLeaseLost, and whatever it returns is
// not stored. A computation that watches its context stops there.
func ExampleMemo_Invalidate_leaseLost() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, &cache.Options[string, string]{TTL: time.Hour})

	started := make(chan struct{})
	report := memo.Func(c, func(ctx context.Context, quarter string) (string, error) {
		close(started)
		<-ctx.Done() // a long computation, watching its context
		if errors.Is(context.Cause(ctx), memo.ErrLeaseLost) {
			fmt.Println("lease lost: stopping")
		}
		return "", context.Cause(ctx)
	}, &memo.Options{Lease: 300 * time.Millisecond}) // renewed every 100ms
	defer report.Close()

	errc := make(chan error, 1)
	go func() {
		_, err := report.Get(ctx, "q3")
		errc <- err
	}()
	<-started
	// The data changed: the running computation's value would be stale.
	if err := report.Invalidate(ctx, "q3"); err != nil {
		log.Fatal(err)
	}
	err = <-errc
	fmt.Println(errors.Is(err, memo.ErrLeaseLost))
	// Output:
	// lease lost: stopping
	// true
}

// A batch loader: Memo.GetMulti calls it once for all the keys it misses,
// as one query (SELECT ... WHERE id IN (...)), and Memo.Get with one key.
func ExampleFuncBatch_query() {
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
func ExampleOptions_failSafeRates() {
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
func ExampleCallFrom_pages() {
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
