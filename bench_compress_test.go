package typedcache_test

// Benchmarks of Options.Compression: a 10 KiB JSON-like struct written and
// read through a Cache with no compression, S2 and Zstandard, on memory and
// on Redis, in one run. Each reports the bytes the store holds for the
// value (stored-B) beside the time of a Get.
//
//	go test -run '^$' -bench 'Compression' -benchmem -count 6 . > compress.txt
//	benchstat -col /impl compress.txt

import (
	"context"
	"strings"
	"testing"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/codec"
	"github.com/typedcache/typedcache/internal/testing/teststores"
)

type benchDoc struct {
	ID    int
	Title string
	Tags  []string
	Body  []benchPara
}

type benchPara struct {
	Heading string
	Text    string
	Score   float64
	Links   []string
}

// benchDocValue is about 10 KiB in MessagePack, text-heavy as JSON-like
// documents are.
func benchDocValue() benchDoc {
	d := benchDoc{ID: 42, Title: "Read-through caching for Go services", Tags: []string{"go", "redis", "memcached", "cache"}}
	words := strings.Fields("a typed read-through cache keeps the values a service reads most close to it, computes a missing one once across processes, and serves a stale one when the source fails")
	for i := range 32 {
		var text []string
		for j := range 40 {
			text = append(text, words[(i*7+j*3)%len(words)])
		}
		d.Body = append(d.Body, benchPara{
			Heading: "Section " + words[i%len(words)],
			Text:    strings.Join(text, " "),
			Score:   float64(i) * 1.25,
			Links:   []string{"https://example.com/docs/" + words[i%len(words)]},
		})
	}
	return d
}

func BenchmarkCompression(b *testing.B) {
	ctx := context.Background()
	value := benchDocValue()
	impls := []struct {
		name string
		comp *cache.Compression
	}{
		{"none", nil},
		{"s2", &cache.Compression{Compressor: codec.S2()}},
		{"zstd", &cache.Compression{Compressor: codec.Zstd()}},
	}
	for _, name := range []string{"memory", "redis"} {
		b.Run("store="+name, func(b *testing.B) {
			backend := teststores.Get(b, name)
			store := backend.New(b)
			for _, impl := range impls {
				b.Run("impl="+impl.name, func(b *testing.B) {
					c := cache.New[string, benchDoc](store, &cache.Options[string, benchDoc]{
						Namespace:   teststores.Namespace("compressbench"),
						Compression: impl.comp,
					})
					if err := c.Set(ctx, "doc", value); err != nil {
						b.Fatal(err)
					}
					raw, err := store.Get(ctx, c.Key("doc"))
					if err != nil {
						b.Fatal(err)
					}
					b.ReportAllocs()
					for b.Loop() {
						v, found, err := c.Get(ctx, "doc")
						if err != nil || !found || v.ID != value.ID {
							b.Fatalf("Get = %v, %v", found, err)
						}
					}
					b.ReportMetric(float64(len(raw)), "stored-B")
				})
			}
		})
	}
}
