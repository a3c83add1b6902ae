package typedcache_test

// Benchmarks of lock.RedLock, each beside a baseline measured in the same
// run, on every store's real server. Names end in /impl=<name> so that
// benchstat can set them side by side, one family at a time:
//
//	go test -run '^$' -bench 'Lock' -benchmem -count 3 . > lock.txt
//	benchstat -filter .name:LockAcquireRelease -col /impl lock.txt
//	benchstat -filter .name:LockHandoff -col /impl lock.txt
//
// Helpers of this file start with lockBench; the p50-ns/p99-ns recorder is
// shared with bench_memo_test.go.

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/bsm/redislock"
	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/lock"
)

// lockBenchLease is the lease of every lock of the benchmarks: long enough
// never to run out during one.
const lockBenchLease = 10 * time.Second

// lockBenchStores are the stores the lock benchmarks run on.
var lockBenchStores = []string{"memory", "redis", "cluster", "memcached"}

// lockBenchRecorder collects latencies for percentiles. It keeps the last
// len(samples) of them in a ring allocated up front, so that recording
// inside a b.Loop allocates nothing.
type lockBenchRecorder struct {
	samples []time.Duration
	n       int
}

func lockBenchNewRecorder(size int) *lockBenchRecorder {
	return &lockBenchRecorder{samples: make([]time.Duration, size)}
}

func (r *lockBenchRecorder) add(d time.Duration) {
	r.samples[r.n%len(r.samples)] = d
	r.n++
}

// report reports the 50th and 99th percentiles as p50-ns and p99-ns.
func (r *lockBenchRecorder) report(b *testing.B) {
	b.Helper()
	s := slices.Clone(r.samples[:min(r.n, len(r.samples))])
	if len(s) == 0 {
		return
	}
	slices.Sort(s)
	at := func(p float64) float64 { return float64(s[int(p*float64(len(s)-1))].Nanoseconds()) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
}

// lockBenchCache returns a cache over s in namespace ns.
func lockBenchCache(s cache.Store, ns string) *cache.Cache[string, string] {
	return cache.New[string, string](s, &cache.Options[string, string]{Namespace: ns})
}

// lockBenchCheck fails the benchmark on an error.
func lockBenchCheck(b *testing.B, err error) {
	if err != nil {
		b.Helper() // only here: Helper is costly on the hot path
		b.Fatal(err)
	}
}

// lockBenchRedisClient returns a new go-redis client of the backend name
// ("redis" or "cluster"), closed when b ends.
func lockBenchRedisClient(b *testing.B, name string) redis.UniversalClient {
	b.Helper()
	var c redis.UniversalClient
	if name == "cluster" {
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: testenv.RedisClusterAddrs(b)})
	} else {
		c = redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(b)})
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// lockBenchRawRelease is the compare-and-delete of the raw baseline: the
// release script of bsm/redislock (GET, compare, DEL; no PUBLISH, which
// our release adds to wake waiters in other processes).
var lockBenchRawRelease = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)

// BenchmarkLockAcquireRelease measures one uncontended TryAcquire and
// Release of a RedLock (impl=typedcache), and one uncontended Acquire and
// Release (impl=typedcache-acquire: Acquire starts a watch only when the
// lock is busy, so it should cost what TryAcquire does), beside the raw
// client doing the same round trips:
//   - redis, cluster: SET key token NX PX lease, then the compare-and-delete
//     Lua script (impl=raw), and bsm/redislock's Obtain (no retry) and
//     Release (impl=redislock);
//   - memcached: gomemcache Add, then a plain Delete (impl=raw; not a
//     compare-and-delete: memcached has none), and Add, then gets and a
//     cas that expires the item (impl=raw-cas: what ours does);
//   - memory: no baseline.
//
// Ours on Redis is SET NX PX, then DeleteIfEqual (a script: GET, DEL,
// PUBLISH); with Options.Fencing (impl=typedcache-fenced) the acquire is the
// AddFenced script (EXISTS, TIME, INCR of the fencing counter, SET PX).
func BenchmarkLockAcquireRelease(b *testing.B) {
	ctx := context.Background()
	for _, name := range lockBenchStores {
		b.Run("store="+name, func(b *testing.B) {
			backend := teststores.Get(b, name)
			switch name {
			case "redis", "cluster":
				b.Run("impl=raw", func(b *testing.B) {
					client := lockBenchRedisClient(b, name)
					key := teststores.Namespace("lockbench") + ":k-lock"
					token := "6f1c7a9e-2d4b-4c8a-9e1f-3b5d7a9c1e2f" // a UUID's length
					pair := func() {
						ok, err := client.SetNX(ctx, key, token, lockBenchLease).Result()
						if err != nil || !ok {
							b.Fatalf("SET NX: got %v, %v; want true, nil", ok, err)
						}
						n, err := lockBenchRawRelease.Run(ctx, client, []string{key}, token).Int()
						if err != nil || n != 1 {
							b.Fatalf("release: got %v, %v; want 1, nil", n, err)
						}
					}
					pair() // loads the script
					lockBenchLoop(b, pair)
				})
				b.Run("impl=redislock", func(b *testing.B) {
					client := redislock.New(lockBenchRedisClient(b, name))
					key := teststores.Namespace("lockbench") + ":k-lock"
					pair := func() {
						l, err := client.Obtain(ctx, key, lockBenchLease, nil)
						lockBenchCheck(b, err)
						lockBenchCheck(b, l.Release(ctx))
					}
					pair()
					lockBenchLoop(b, pair)
				})
			case "memcached":
				b.Run("impl=raw", func(b *testing.B) {
					client := memcache.New(testenv.MemcachedAddrs(b)...)
					client.MaxIdleConns = 64
					b.Cleanup(func() { client.Close() })
					key := teststores.Namespace("lockbench") + ":k-lock"
					value := []byte("6f1c7a9e-2d4b-4c8a-9e1f-3b5d7a9c1e2f")
					pair := func() {
						lockBenchCheck(b, client.Add(&memcache.Item{Key: key, Value: value, Expiration: int32(lockBenchLease / time.Second)}))
						lockBenchCheck(b, client.Delete(key))
					}
					pair()
					lockBenchLoop(b, pair)
				})
				b.Run("impl=raw-cas", func(b *testing.B) {
					client := memcache.New(testenv.MemcachedAddrs(b)...)
					client.MaxIdleConns = 64
					b.Cleanup(func() { client.Close() })
					key := teststores.Namespace("lockbench") + ":k-lock"
					value := []byte("6f1c7a9e-2d4b-4c8a-9e1f-3b5d7a9c1e2f")
					pair := func() {
						lockBenchCheck(b, client.Add(&memcache.Item{Key: key, Value: value, Expiration: int32(lockBenchLease / time.Second)}))
						it, err := client.Get(key)
						lockBenchCheck(b, err)
						if !bytes.Equal(it.Value, value) {
							b.Fatalf("got value %q; want %q", it.Value, value)
						}
						it.Expiration = -1 // a cas that expires the item: a delete if unchanged
						lockBenchCheck(b, client.CompareAndSwap(it))
					}
					pair()
					lockBenchLoop(b, pair)
				})
			}
			for _, impl := range []struct {
				name    string
				opts    *lock.Options
				acquire bool // Acquire rather than TryAcquire
			}{
				{"typedcache", nil, false},
				{"typedcache-acquire", nil, true},
				{"typedcache-fenced", &lock.Options{Fencing: true}, false},
			} {
				b.Run("impl="+impl.name, func(b *testing.B) {
					c := lockBenchCache(backend.New(b), teststores.Namespace("lockbench"))
					l, err := lock.NewRedLock(c, "k", lockBenchLease, impl.opts)
					if err != nil {
						b.Fatal(err)
					}
					pair := func() {
						if impl.acquire {
							lockBenchCheck(b, l.Acquire(ctx))
						} else if ok, err := l.TryAcquire(ctx); err != nil || !ok {
							b.Fatalf("TryAcquire: got %v, %v; want true, nil", ok, err)
						}
						lockBenchCheck(b, l.Release(ctx))
					}
					pair() // loads the scripts
					lockBenchLoop(b, pair)
				})
			}
		})
	}
}

// lockBenchLoop runs pair in a b.Loop and reports its latency percentiles.
func lockBenchLoop(b *testing.B, pair func()) {
	b.Helper()
	rec := lockBenchNewRecorder(1 << 16)
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		pair()
		rec.add(time.Since(t0))
	}
	rec.report(b)
}

// lockBenchHandoffImpl is one lock implementation in the handoff
// benchmark, seen from a holder and a waiter in different processes.
type lockBenchHandoffImpl struct {
	hold    func(ctx context.Context) error // holder: take the free lock at once
	release func(ctx context.Context) error // holder: release it
	wait    func(ctx context.Context) error // waiter: block until holding it
	done    func(ctx context.Context) error // waiter: release it
}

// BenchmarkLockHandoff measures the latency from the holder's Release to
// the return of Acquire in a waiter of another process (another store
// instance, with its own client and connections), blocked in Acquire
// before the release. Each iteration is one handoff: the holder takes the
// lock, the waiter starts Acquire, the holder releases after a random 5-15
// ms (the same sequence for every impl), and the latency from just before
// Release to Acquire's return is recorded; p50-ns and p99-ns are the
// figures (ns/op is dominated by the sleep).
//
// On memory, the two RedLocks share one store (a memory store cannot be
// shared across processes): it is the in-process handoff. On Redis the
// waiter wakes on the release's pub/sub message; on memcached it polls
// with jittered exponential backoff (2ms to 100ms). Beside ours on Redis,
// bsm/redislock's Obtain with a retry strategy: LinearBackoff(10ms) and
// ExponentialBackoff(1ms, 64ms) (which retries after 4, 8, 16, 32, 64 ms).
func BenchmarkLockHandoff(b *testing.B) {
	for _, name := range lockBenchStores {
		b.Run("store="+name, func(b *testing.B) {
			backend := teststores.Get(b, name)
			b.Run("impl=typedcache", func(b *testing.B) {
				ns := teststores.Namespace("lockbench")
				holderStore := backend.New(b)
				waiterStore := holderStore
				if backend.Shared {
					waiterStore = backend.New(b)
				}
				holder, err := lock.NewRedLock(lockBenchCache(holderStore, ns), "k", lockBenchLease, nil)
				if err != nil {
					b.Fatal(err)
				}
				waiter, err := lock.NewRedLock(lockBenchCache(waiterStore, ns), "k", lockBenchLease, nil)
				if err != nil {
					b.Fatal(err)
				}
				lockBenchHandoff(b, lockBenchHandoffImpl{
					hold: func(ctx context.Context) error {
						ok, err := holder.TryAcquire(ctx)
						if err == nil && !ok {
							b.Fatal("holder: TryAcquire of a free lock: got false; want true")
						}
						return err
					},
					release: holder.Release,
					wait:    waiter.Acquire,
					done:    waiter.Release,
				})
			})
			if name != "redis" && name != "cluster" {
				return
			}
			strategies := []struct {
				name string
				new  func() redislock.RetryStrategy
			}{
				{"linear10ms", func() redislock.RetryStrategy { return redislock.LinearBackoff(10 * time.Millisecond) }},
				// ExponentialBackoff counts its retries: one per Obtain.
				{"exp1ms-64ms", func() redislock.RetryStrategy {
					return redislock.ExponentialBackoff(time.Millisecond, 64*time.Millisecond)
				}},
			}
			for _, st := range strategies {
				b.Run("impl=redislock-"+st.name, func(b *testing.B) {
					key := teststores.Namespace("lockbench") + ":k-lock"
					holderClient := redislock.New(lockBenchRedisClient(b, name))
					waiterClient := redislock.New(lockBenchRedisClient(b, name))
					var held, waited *redislock.Lock
					lockBenchHandoff(b, lockBenchHandoffImpl{
						hold: func(ctx context.Context) (err error) {
							held, err = holderClient.Obtain(ctx, key, lockBenchLease, nil)
							return err
						},
						release: func(ctx context.Context) error { return held.Release(ctx) },
						wait: func(ctx context.Context) (err error) {
							waited, err = waiterClient.Obtain(ctx, key, lockBenchLease, &redislock.Options{RetryStrategy: st.new()})
							return err
						},
						done: func(ctx context.Context) error { return waited.Release(ctx) },
					})
				})
			}
		})
	}
}

// lockBenchHandoff runs b.N handoffs of impl and reports the latency
// percentiles.
func lockBenchHandoff(b *testing.B, impl lockBenchHandoffImpl) {
	b.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2)) // the same delays for every impl
	rec := lockBenchNewRecorder(max(b.N, 1))
	type result struct {
		at  time.Time
		err error
	}
	// handoff runs one handoff and returns its latency.
	handoff := func() time.Duration {
		lockBenchCheck(b, impl.hold(ctx))
		ready := make(chan struct{})
		acquired := make(chan result, 1)
		go func() {
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			close(ready)
			err := impl.wait(wctx)
			acquired <- result{time.Now(), err}
		}()
		<-ready
		time.Sleep(5*time.Millisecond + time.Duration(rng.Int64N(int64(10*time.Millisecond))))
		t0 := time.Now()
		lockBenchCheck(b, impl.release(ctx))
		r := <-acquired
		lockBenchCheck(b, r.err)
		lockBenchCheck(b, impl.done(ctx))
		return r.at.Sub(t0)
	}
	handoff() // not counted: opens the connections, loads the scripts
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rec.add(handoff())
	}
	b.StopTimer()
	rec.report(b)
}
