package otel_test

import (
	"context"
	"strconv"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/typedcache/typedcache/cache"
	typedotel "github.com/typedcache/typedcache/otel"
)

// BenchmarkGetHit measures a Cache hit on memory, from the store and from
// the local tier, without an Observer and with this one over the SDK (a
// ManualReader nobody collects from), in the same run: compare each
// observer=otel figure with its observer=none neighbour.
//
//	go test -run '^$' -bench GetHit -count 6 . | benchstat -col /observer -
func BenchmarkGetHit(b *testing.B) {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	for _, layer := range []string{"store", "local"} {
		for _, mode := range []string{"serial", "parallel"} {
			for _, observer := range []string{"none", "otel"} {
				b.Run("layer="+layer+"/mode="+mode+"/observer="+observer, func(b *testing.B) {
					var obs cache.Observer
					if observer == "otel" {
						mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
						tp := sdktrace.NewTracerProvider()
						b.Cleanup(func() {
							mp.Shutdown(context.Background())
							tp.Shutdown(context.Background())
						})
						o, err := typedotel.NewObserver(&typedotel.Options{MeterProvider: mp, TracerProvider: tp})
						if err != nil {
							b.Fatal(err)
						}
						obs = o
					}
					var bus *bus
					if layer == "local" {
						bus = newBus()
					}
					c := newCache(b, newStore(b), "bench", obs, bus)
					ctx := context.Background()
					for _, k := range keys {
						if err := c.Set(ctx, k, "value of "+k); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportAllocs()
					if mode == "serial" {
						i := 0
						for b.Loop() {
							if _, found, err := c.Get(ctx, keys[i%len(keys)]); !found || err != nil {
								b.Fatalf("Get = %v, %v; want a hit", found, err)
							}
							i++
						}
						return
					}
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						i := 0
						for pb.Next() {
							if _, found, err := c.Get(ctx, keys[i%len(keys)]); !found || err != nil {
								b.Errorf("Get = %v, %v; want a hit", found, err)
								return
							}
							i++
						}
					})
				})
			}
		}
	}
}
