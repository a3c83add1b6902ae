package typedcache_test

// Benchmarks of every store through cache.Cache, each beside its raw
// client doing the same work in the same run. Names end in /impl=raw or
// /impl=cache so that benchstat can set them side by side:
//
//	go test -run '^$' -bench . -benchmem -count 6 . > new.txt
//	benchstat -col /impl new.txt

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/typedcache/typedcache/backends/memcachestore"
	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// benchUser is the small struct of the benchmarks (about 60 bytes in
// msgpack).
type benchUser struct {
	ID     int64
	Name   string
	Email  string
	Active bool
	Score  float64
}

const benchKeys = 10_000

var (
	benchValue = benchUser{ID: 42, Name: "Ada Lovelace", Email: "ada@example.com", Active: true, Score: 99.5}
	benchBytes = []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") // 64 B
	benchNames = func() []string {
		names := make([]string, benchKeys)
		for i := range names {
			names[i] = "bench:" + strconv.Itoa(i)
		}
		return names
	}()
	// benchOrder is a zipf-distributed sequence of key indexes: a few keys
	// are hot, most are cold, as in a real cache.
	benchOrder = func() []int {
		z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, benchKeys-1)
		order := make([]int, 1<<16)
		for i := range order {
			order[i] = int(z.Uint64())
		}
		return order
	}()
)

// keyAt returns the i-th key of the zipf sequence.
func keyAt(i int) string { return benchNames[benchOrder[i&(len(benchOrder)-1)]] }

// parallel runs f in b.RunParallel, giving each goroutine its own
// position in the key sequence.
// An error of f fails the benchmark (with Error: FailNow is not allowed in
// RunParallel's goroutines).
func parallel(b *testing.B, f func(i int) error) {
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(benchOrder))
		for pb.Next() {
			if err := f(i); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func serial(b *testing.B, f func(i int) error) {
	i := 0
	for b.Loop() {
		if err := f(i); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// errMiss is what a benchmark body returns when a pre-filled key is missing.
var errMiss = errors.New("miss")

// hit returns nil for a hit, errMiss for a miss, or err.
func hit(found bool, err error) error {
	if err != nil {
		return err
	}
	if !found {
		return errMiss
	}
	return nil
}

// modes runs f serially and in parallel.
func modes(b *testing.B, name string, f func(i int) error) {
	b.Run(name+"/mode=serial", func(b *testing.B) { b.ReportAllocs(); serial(b, f) })
	b.Run(name+"/mode=parallel", func(b *testing.B) { b.ReportAllocs(); parallel(b, f) })
}

func mustEncode(b *testing.B, v benchUser) []byte {
	data, err := msgpack.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// encodeUser is mustEncode for benchmark bodies, which may run in
// RunParallel's goroutines: benchValue always encodes.
func encodeUser(v benchUser) []byte {
	data, err := msgpack.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}

func check(b *testing.B, err error) {
	if err != nil {
		b.Fatal(err)
	}
}

// --- memory -------------------------------------------------------------

func BenchmarkMemory(b *testing.B) {
	ctx := context.Background()
	// The raw engine, configured as memstore configures it.
	raw := otter.Must(&otter.Options[string, []byte]{
		MaximumWeight:    memstore.DefaultMaxEntries,
		Weigher:          func(string, []byte) uint32 { return 1 },
		ExpiryCalculator: otter.ExpiryWriting[string, []byte](time.Hour),
	})
	defer raw.StopAllGoroutines()
	store, err := memstore.New(nil)
	check(b, err)
	defer store.Close()
	bytesCache := cache.New[string, []byte](store, &cache.Options[string, []byte]{TTL: time.Hour})
	users := cache.New[string, benchUser](store, &cache.Options[string, benchUser]{Namespace: "u", TTL: time.Hour})
	encoded := mustEncode(b, benchValue)
	for _, k := range benchNames {
		raw.Set(k, benchBytes)
		raw.Set("u:"+k, encoded)
		check(b, bytesCache.Set(ctx, k, benchBytes))
		check(b, users.Set(ctx, k, benchValue))
	}

	modes(b, "GetBytes/impl=raw", func(i int) error {
		if _, ok := raw.GetIfPresent(keyAt(i)); !ok {
			return errMiss
		}
		return nil
	})
	// What the Store contract asks of any store's Get: the caller owns the
	// slice, so the engine's value is copied.
	modes(b, "GetBytes/impl=raw-copy", func(i int) error {
		v, ok := raw.GetIfPresent(keyAt(i))
		if !ok {
			return errMiss
		}
		_ = append([]byte(nil), v...)
		return nil
	})
	modes(b, "GetBytes/impl=cache", func(i int) error {
		_, ok, err := bytesCache.Get(ctx, keyAt(i))
		return hit(ok, err)
	})
	modes(b, "GetStruct/impl=raw", func(i int) error {
		data, ok := raw.GetIfPresent("u:" + keyAt(i))
		if !ok {
			return errMiss
		}
		var u benchUser
		return msgpack.Unmarshal(data, &u)
	})
	modes(b, "GetStruct/impl=cache", func(i int) error {
		_, ok, err := users.Get(ctx, keyAt(i))
		return hit(ok, err)
	})
	// A store keeps its own copy of what it is given, so the raw set copies
	// too.
	modes(b, "SetBytes/impl=raw", func(i int) error {
		raw.Set(keyAt(i), append([]byte(nil), benchBytes...))
		return nil
	})
	modes(b, "SetBytes/impl=cache", func(i int) error {
		return bytesCache.Set(ctx, keyAt(i), benchBytes)
	})
	modes(b, "SetStruct/impl=raw", func(i int) error {
		raw.Set("u:"+keyAt(i), encodeUser(benchValue))
		return nil
	})
	modes(b, "SetStruct/impl=cache", func(i int) error {
		return users.Set(ctx, keyAt(i), benchValue)
	})
}

// --- Redis --------------------------------------------------------------

func benchRedis(b *testing.B) *redis.Client {
	client := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(b), PoolSize: 32})
	b.Cleanup(func() { client.Close() })
	return client
}

func BenchmarkRedis(b *testing.B) {
	ctx := context.Background()
	client := benchRedis(b)
	store := redisstore.New(client, nil)
	defer store.Close()
	users := cache.New[string, benchUser](store, &cache.Options[string, benchUser]{TTL: time.Hour})
	encoded := mustEncode(b, benchValue)
	pipe := client.Pipeline()
	for _, k := range benchNames {
		pipe.Set(ctx, k, encoded, time.Hour)
	}
	_, err := pipe.Exec(ctx)
	check(b, err)

	modes(b, "GetStruct/impl=raw", func(i int) error {
		data, err := client.Get(ctx, keyAt(i)).Bytes()
		if err := err; err != nil {
			return err
		}
		var u benchUser
		return msgpack.Unmarshal(data, &u)
	})
	modes(b, "GetStruct/impl=cache", func(i int) error {
		_, ok, err := users.Get(ctx, keyAt(i))
		return hit(ok, err)
	})
	modes(b, "SetStruct/impl=raw", func(i int) error {
		return client.Set(ctx, keyAt(i), encodeUser(benchValue), time.Hour).Err()
	})
	modes(b, "SetStruct/impl=cache", func(i int) error {
		return users.Set(ctx, keyAt(i), benchValue)
	})

	keys := benchNames[:100]
	b.Run("GetMulti100/impl=raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			vals, err := client.MGet(ctx, keys...).Result()
			check(b, err)
			for _, v := range vals {
				var u benchUser
				check(b, msgpack.Unmarshal([]byte(v.(string)), &u))
			}
		}
	})
	b.Run("GetMulti100/impl=cache", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := users.GetMulti(ctx, keys)
			if err != nil || len(got) != 100 {
				b.Fatal(len(got), err)
			}
		}
	})
	b.Run("GetMulti100/impl=cache-100-gets", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, k := range keys {
				if _, ok, err := users.Get(ctx, k); !ok || err != nil {
					b.Fatal("miss", err)
				}
			}
		}
	})
}

func BenchmarkRedisCluster(b *testing.B) {
	ctx := context.Background()
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: testenv.RedisClusterAddrs(b)})
	defer client.Close()
	store := redisstore.New(client, nil)
	defer store.Close()
	users := cache.New[string, benchUser](store, &cache.Options[string, benchUser]{TTL: time.Hour})
	keys := benchNames[:100]
	for _, k := range keys {
		check(b, users.Set(ctx, k, benchValue))
	}
	b.Run("GetMulti100/impl=raw-pipeline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			pipe := client.Pipeline()
			cmds := make([]*redis.StringCmd, len(keys))
			for i, k := range keys {
				cmds[i] = pipe.Get(ctx, k)
			}
			_, err := pipe.Exec(ctx)
			check(b, err)
			for _, c := range cmds {
				var u benchUser
				data, _ := c.Bytes()
				check(b, msgpack.Unmarshal(data, &u))
			}
		}
	})
	b.Run("GetMulti100/impl=cache", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := users.GetMulti(ctx, keys)
			if err != nil || len(got) != 100 {
				b.Fatal(len(got), err)
			}
		}
	})
}

// --- Memcached ----------------------------------------------------------

func BenchmarkMemcached(b *testing.B) {
	ctx := context.Background()
	client := memcache.New(testenv.MemcachedAddrs(b)...)
	client.MaxIdleConns = 64
	defer client.Close()
	store := memcachestore.New(client, nil)
	defer store.Close()
	users := cache.New[string, benchUser](store, &cache.Options[string, benchUser]{TTL: time.Hour})
	encoded := mustEncode(b, benchValue)
	for _, k := range benchNames {
		check(b, client.Set(&memcache.Item{Key: k, Value: encoded, Expiration: 3600}))
	}

	modes(b, "GetStruct/impl=raw", func(i int) error {
		it, err := client.Get(keyAt(i))
		if err := err; err != nil {
			return err
		}
		var u benchUser
		return msgpack.Unmarshal(it.Value, &u)
	})
	modes(b, "GetStruct/impl=cache", func(i int) error {
		_, ok, err := users.Get(ctx, keyAt(i))
		return hit(ok, err)
	})
	// With a Cache Timeout, each call carries a deadline. At least twice the
	// client's Timeout away, the call still runs in the calling goroutine;
	// closer, it runs in a goroutine of its own (see the package doc).
	for _, tc := range []struct {
		name    string
		timeout time.Duration
	}{
		{"cache-timeout-inline", 4 * memcache.DefaultTimeout},
		{"cache-timeout-goroutine", memcache.DefaultTimeout},
	} {
		bounded := cache.New[string, benchUser](store, &cache.Options[string, benchUser]{TTL: time.Hour, Timeout: tc.timeout})
		modes(b, "GetStruct/impl="+tc.name, func(i int) error {
			_, ok, err := bounded.Get(ctx, keyAt(i))
			return hit(ok, err)
		})
	}
	modes(b, "SetStruct/impl=raw", func(i int) error {
		return client.Set(&memcache.Item{Key: keyAt(i), Value: encodeUser(benchValue), Expiration: 3600})
	})
	modes(b, "SetStruct/impl=cache", func(i int) error {
		return users.Set(ctx, keyAt(i), benchValue)
	})
	keys := benchNames[:100]
	b.Run("GetMulti100/impl=raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			items, err := client.GetMulti(keys)
			check(b, err)
			for _, it := range items {
				var u benchUser
				check(b, msgpack.Unmarshal(it.Value, &u))
			}
		}
	})
	b.Run("GetMulti100/impl=cache", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := users.GetMulti(ctx, keys)
			if err != nil || len(got) != 100 {
				b.Fatal(len(got), err)
			}
		}
	})

	// gomemcache keeps 2 idle connections per server by default: under
	// parallel load it dials and closes connections all the time.
	for _, idle := range []int{memcache.DefaultMaxIdleConns, 64} {
		c := memcache.New(testenv.MemcachedAddrs(b)...)
		c.MaxIdleConns = idle
		u := cache.New[string, benchUser](memcachestore.New(c, nil), nil)
		b.Run("ParallelGet/maxidle="+strconv.Itoa(idle)+"/impl=cache", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			parallel(b, func(i int) error {
				_, ok, err := u.Get(ctx, keyAt(i))
				return hit(ok, err)
			})
		})
		c.Close()
	}
}
