package typedcache_test

// Benchmarks of memo.GetOrCompute, each beside a baseline measured in the
// same run, on every store's real server. Names end in /impl=<name> so that
// benchstat can set them side by side, one family at a time:
//
//	go test -run '^$' -bench 'Memo' -benchmem -count 3 . > memo.txt
//	benchstat -filter .name:MemoHit -col /impl memo.txt
//	benchstat -filter .name:MemoStampede -col /impl memo.txt
//
// Helpers of this file start with memoBench.

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/memo"
)

// memoBenchValue is the value the benchmarks compute and cache (about 50
// bytes in msgpack).
type memoBenchValue struct {
	ID    int64
	Name  string
	Tags  []string
	Score float64
}

var memoBenchWant = memoBenchValue{ID: 42, Name: "Ada Lovelace", Tags: []string{"math", "engines"}, Score: 99.5}

// memoBenchCache returns a cache over s in namespace ns, with a TTL.
func memoBenchCache(s cache.Store, ns string) *cache.Cache[string, memoBenchValue] {
	return cache.New[string, memoBenchValue](s, &cache.Options[string, memoBenchValue]{Namespace: ns, TTL: time.Hour})
}

// BenchmarkMemoHit measures the hit path of memo.GetOrCompute beside
// Cache.Get of the same key on the same kind of store (impl=get), on every
// store (memory, Redis, Redis Cluster, memcached): with default options
// (impl=memo), with NegativeTTL and RefreshAhead on
// (impl=memo-neg-refresh), and with fail-safe and a soft timeout on
// (impl=memo-failsafe: FailSafeMax, SoftTimeout), so that "a fail-safe hit
// costs what a hit costs" is measured in the same run. Each reads one key
// with one store command: the value's entry carries what the options need
// (fail-safe's logical expiry included).
func BenchmarkMemoHit(b *testing.B) {
	ctx := context.Background()
	compute := func(context.Context) (memoBenchValue, error) { return memoBenchWant, nil }
	impls := []struct {
		name string
		opts *memo.Options // nil for Cache.Get
	}{
		{"get", nil},
		{"memo", &memo.Options{}},
		{"memo-neg-refresh", &memo.Options{NegativeTTL: time.Minute, RefreshAhead: 0.5}},
		{"memo-failsafe", &memo.Options{FailSafeMax: time.Hour, SoftTimeout: 100 * time.Millisecond}},
	}
	for _, name := range []string{"memory", "redis", "cluster", "memcached"} {
		b.Run("store="+name, func(b *testing.B) {
			backend := teststores.Get(b, name)
			for _, impl := range impls {
				b.Run("impl="+impl.name, func(b *testing.B) {
					c := memoBenchCache(backend.New(b), teststores.Namespace("memobench"))
					// Fill the key through memo, so that it holds the entry
					// memo reads (with its time of writing: RefreshAhead
					// 0.5 of an hour is far off).
					fill := impl.opts
					if fill == nil {
						fill = &memo.Options{}
					}
					_, err := memo.GetOrCompute(ctx, c, "k", compute, fill)
					memoBenchCheck(b, err)
					call := func() (memoBenchValue, error) {
						v, found, err := c.Get(ctx, "k")
						if err == nil && !found {
							b.Fatal("Get: got a miss; want a hit")
						}
						return v, err
					}
					if impl.opts != nil {
						call = func() (memoBenchValue, error) { return memo.GetOrCompute(ctx, c, "k", compute, impl.opts) }
					}
					rec := lockBenchNewRecorder(1 << 16)
					b.ReportAllocs()
					for b.Loop() {
						t0 := time.Now()
						v, err := call()
						rec.add(time.Since(t0))
						if err != nil || v.ID != memoBenchWant.ID {
							b.Fatalf("got %v, %v; want %v, nil", v, err, memoBenchWant)
						}
					}
					rec.report(b)
					if got := c.Stats().Computations; got != 1 {
						b.Fatalf("got %d computations; want 1 (the fill): the hits were not hits", got)
					}
				})
			}
		})
	}
}

// memoBenchProcesses and memoBenchCallers shape the stampede: that many
// "processes" (store instances, each with its own client), each with that
// many goroutines calling at once.
const (
	memoBenchProcesses = 2
	memoBenchCallers   = 25
	memoBenchCompute   = 20 * time.Millisecond
)

// memoBenchGetter is one way of reading a key through a cache, computing
// it on a miss.
type memoBenchGetter func(ctx context.Context, c *cache.Cache[string, memoBenchValue], key string, compute func(context.Context) (memoBenchValue, error)) (memoBenchValue, error)

// BenchmarkMemoStampede measures a stampede on one cold key: 2 "processes"
// (store instances) x 25 goroutines call at once (start barrier), the
// computation takes 20ms, and each iteration uses a fresh key. It reports
// the computations per cold key and the callers' p50/p99 latency, for:
//   - impl=unprotected: Get; on a miss compute and Set (about 50
//     computations per key);
//   - impl=singleflight: Cache.GetOrCompute, one flight per process (about
//     2);
//   - impl=memo: memo.GetOrCompute, one flight per process and the lease
//     in the key's entry across processes (1).
//
// On memory, both "processes" share one store: a memory store cannot be
// shared between processes, and two would be two independent caches.
func BenchmarkMemoStampede(b *testing.B) {
	impls := []struct {
		name string
		get  memoBenchGetter
	}{
		{"unprotected", func(ctx context.Context, c *cache.Cache[string, memoBenchValue], key string, compute func(context.Context) (memoBenchValue, error)) (memoBenchValue, error) {
			v, found, err := c.Get(ctx, key)
			if err != nil || found {
				return v, err
			}
			if v, err = compute(ctx); err != nil {
				return v, err
			}
			return v, c.Set(ctx, key, v)
		}},
		{"singleflight", func(ctx context.Context, c *cache.Cache[string, memoBenchValue], key string, compute func(context.Context) (memoBenchValue, error)) (memoBenchValue, error) {
			return c.GetOrCompute(ctx, key, compute)
		}},
		{"memo", func(ctx context.Context, c *cache.Cache[string, memoBenchValue], key string, compute func(context.Context) (memoBenchValue, error)) (memoBenchValue, error) {
			return memo.GetOrCompute(ctx, c, key, compute, nil)
		}},
	}
	for _, name := range lockBenchStores {
		b.Run("store="+name, func(b *testing.B) {
			backend := teststores.Get(b, name)
			for _, impl := range impls {
				b.Run("impl="+impl.name, func(b *testing.B) {
					ns := teststores.Namespace("memobench")
					procs := make([]*cache.Cache[string, memoBenchValue], memoBenchProcesses)
					s := backend.New(b)
					for i := range procs {
						if i > 0 && backend.Shared {
							s = backend.New(b)
						}
						procs[i] = memoBenchCache(s, ns)
					}
					memoBenchStampede(b, procs, impl.get)
				})
			}
		})
	}
}

// memoBenchStampede runs b.N stampedes, one per fresh key, and reports the
// computations per key and the callers' latency percentiles.
func memoBenchStampede(b *testing.B, procs []*cache.Cache[string, memoBenchValue], get memoBenchGetter) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	callers := len(procs) * memoBenchCallers
	rec := lockBenchNewRecorder(max(b.N, 1) * callers)
	var computations atomic.Int64
	compute := func(ctx context.Context) (memoBenchValue, error) {
		computations.Add(1)
		t := time.NewTimer(memoBenchCompute)
		defer t.Stop()
		select {
		case <-t.C:
			return memoBenchWant, nil
		case <-ctx.Done():
			return memoBenchValue{}, ctx.Err()
		}
	}
	lat := make([]time.Duration, callers)
	errs := make([]error, callers)
	// stampede runs one stampede on key and checks every caller's result.
	stampede := func(key string) {
		var ready, done sync.WaitGroup
		start := make(chan struct{})
		for g := range callers {
			c := procs[g%len(procs)]
			ready.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				ready.Done()
				<-start
				t0 := time.Now()
				v, err := get(ctx, c, key, compute)
				lat[g] = time.Since(t0)
				if err == nil && v.ID != memoBenchWant.ID {
					err = fmt.Errorf("got %v; want %v", v, memoBenchWant)
				}
				errs[g] = err
			}()
		}
		ready.Wait()
		close(start)
		done.Wait()
		for g := range callers {
			memoBenchCheck(b, errs[g])
		}
	}
	// A first stampede, not counted, opens the clients' connections and
	// loads the scripts.
	stampede("warm-up")
	computations.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		stampede("cold-" + strconv.Itoa(i))
		for _, d := range lat {
			rec.add(d)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(computations.Load())/float64(b.N), "computations/key")
	rec.report(b)
}

// memoBenchCheck fails the benchmark on an error.
func memoBenchCheck(b *testing.B, err error) {
	if err != nil {
		b.Helper() // only here: Helper is costly on the hot path
		b.Fatal(err)
	}
}
