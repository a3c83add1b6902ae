package typedcache_test

// Benchmarks of the local tier (cache.Options.Local) beside otter's own
// GetIfPresent, the floor of an in-process hit, in one run:
//
//	go test -run '^$' -bench 'BenchmarkLocalHit' -benchmem -count 6 . > local.txt
//	benchstat -col /impl local.txt

import (
	"context"
	"testing"

	"github.com/maypok86/otter/v2"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/cache"
)

type localBenchValue struct {
	ID   int
	Name string
	Tags []string
}

// BenchmarkLocalHit measures a hit of the local tier (impl=local) beside
// a GetIfPresent of a raw otter cache holding the same value (impl=otter),
// for a []byte and a small struct, serially and in parallel.
func BenchmarkLocalHit(b *testing.B) {
	b.Run("value=bytes", func(b *testing.B) { benchLocalHit(b, []byte("a cached value of some thirty bytes")) })
	b.Run("value=struct", func(b *testing.B) {
		benchLocalHit(b, localBenchValue{ID: 42, Name: "ada", Tags: []string{"a", "b"}})
	})
}

func benchLocalHit[V any](b *testing.B, value V) {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	c := cache.New[string, V](store, &cache.Options[string, V]{Namespace: "bench", Local: &cache.LocalOptions{}})
	b.Cleanup(func() { c.Close() })
	if err := c.Set(ctx, "k", value); err != nil {
		b.Fatal(err)
	}
	if _, found, err := c.Get(ctx, "k"); !found || err != nil {
		b.Fatal(found, err)
	}
	raw := otter.Must(&otter.Options[string, V]{MaximumSize: 10_000})
	b.Cleanup(func() { raw.StopAllGoroutines() })
	raw.Set("k", value)

	run := func(b *testing.B, get func() bool) {
		b.Run("mode=serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !get() {
					b.Fatal("miss")
				}
			}
		})
		b.Run("mode=parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !get() {
						b.Error("miss")
						return
					}
				}
			})
		})
	}
	b.Run("impl=otter", func(b *testing.B) {
		run(b, func() bool { _, ok := raw.GetIfPresent("k"); return ok })
	})
	b.Run("impl=local", func(b *testing.B) {
		run(b, func() bool { _, found, err := c.Get(ctx, "k"); return found && err == nil })
	})
}
