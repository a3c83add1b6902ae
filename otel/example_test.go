package otel_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/cache"
	typedotel "github.com/typedcache/typedcache/otel"
)

// A service gives its caches one Observer made with its OpenTelemetry
// providers (here an in-memory reader, where a service has an OTLP or
// Prometheus exporter), and a Logger for the failures no caller sees.
func Example() {
	ctx := context.Background()

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tp := sdktrace.NewTracerProvider()
	defer mp.Shutdown(ctx)
	defer tp.Shutdown(ctx)

	obs, err := typedotel.NewObserver(&typedotel.Options{
		MeterProvider:  mp, // default otel.GetMeterProvider()
		TracerProvider: tp, // default otel.GetTracerProvider()
	})
	if err != nil {
		panic(err)
	}
	store, err := memstore.New(nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	users := cache.New[int, string](store, &cache.Options[int, string]{
		Namespace: "users",        // also the name in metrics, unless Name says otherwise
		Observer:  obs,            // metrics, and spans for traced operations
		Logger:    slog.Default(), // background failures, once per cause a minute
	})

	users.Set(ctx, 1, "Ada")
	users.Get(ctx, 1)
	users.Get(ctx, 2)

	// What an exporter would send.
	var rm metricdata.ResourceMetrics
	reader.Collect(ctx, &rm)
	for _, line := range histogramCounts(rm) {
		fmt.Println(line)
	}
	// Output:
	// cache.operation.duration{cache.layer=store cache.name=users cache.op=get cache.result=hit} 1
	// cache.operation.duration{cache.layer=store cache.name=users cache.op=get cache.result=miss} 1
	// cache.operation.duration{cache.name=users cache.op=set cache.result=ok} 1
}

// histogramCounts returns the count of each series of the histograms in
// rm, sorted.
func histogramCounts(rm metricdata.ResourceMetrics) []string {
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
				for _, p := range h.DataPoints {
					lines = append(lines, fmt.Sprintf("%s{%s} %d", m.Name, attrs(p.Attributes), p.Count))
				}
			}
		}
	}
	slices.Sort(lines)
	return lines
}

// The spans of a traced operation nest under the caller's span: memo's
// GetOrCompute starts one for the call, and from its context one for the
// lease wait, the computation and the write. Here the Observer is called
// as memo calls it.
func ExampleObserver_Start() {
	ctx := context.Background()

	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(ctx)
	obs, err := typedotel.NewObserver(&typedotel.Options{TracerProvider: tp})
	if err != nil {
		panic(err)
	}

	ctx, request := tp.Tracer("service").Start(ctx, "GET /users/{id}")
	callCtx, endCall := obs.Start(ctx, cache.OpGetOrCompute, "users", "users:1")
	_, endCompute := obs.Start(callCtx, cache.OpCompute, "users", "users:1")
	endCompute(errors.New("db down"))
	_, endSet := obs.Start(callCtx, cache.OpSet, "users", "users:1")
	endSet(nil)
	endCall(nil)
	request.End()

	names := map[[8]byte]string{}
	for _, s := range spans.Ended() {
		names[s.SpanContext().SpanID()] = s.Name()
	}
	for _, s := range spans.Ended() {
		if s.Parent().IsValid() {
			fmt.Printf("%s under %s, status %s\n", s.Name(), names[s.Parent().SpanID()], s.Status().Code)
		}
	}
	// Output:
	// cache.compute under cache.get_or_compute, status Error
	// cache.set under cache.get_or_compute, status Unset
	// cache.get_or_compute under GET /users/{id}, status Unset
}

// The OpenTelemetry Prometheus exporter serves the metrics at /metrics,
// here from a test server; cache.operation.duration becomes
// cache_operation_duration_seconds.
func Example_prometheus() {
	ctx := context.Background()

	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		panic(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer mp.Shutdown(ctx)
	obs, err := typedotel.NewObserver(&typedotel.Options{MeterProvider: mp})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))

	store, err := memstore.New(nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	users := cache.New[int, string](store, &cache.Options[int, string]{Namespace: "users", Observer: obs})
	users.Get(ctx, 1)

	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "cache_operation_duration_seconds_count") {
			fmt.Println(sc.Text())
		}
	}
	// Output:
	// cache_operation_duration_seconds_count{cache_layer="store",cache_name="users",cache_op="get",cache_result="miss",otel_scope_name="github.com/typedcache/typedcache/otel",otel_scope_schema_url="",otel_scope_version=""} 1
}

// An SDK View changes what is kept of the Observer's metrics: here fewer
// buckets, for a service whose caches answer in milliseconds, and no
// error.type, for fewer series.
func Example_view() {
	ctx := context.Background()

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithView(sdkmetric.NewView(
		sdkmetric.Instrument{Name: typedotel.MetricOperationDuration},
		sdkmetric.Stream{
			Aggregation:     sdkmetric.AggregationExplicitBucketHistogram{Boundaries: []float64{0.001, 0.01, 0.1, 1}},
			AttributeFilter: attribute.NewDenyKeysFilter(typedotel.AttrErrorType),
		},
	)))
	defer mp.Shutdown(ctx)
	obs, err := typedotel.NewObserver(&typedotel.Options{MeterProvider: mp})
	if err != nil {
		panic(err)
	}

	store, err := memstore.New(nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	users := cache.New[string, string](store, &cache.Options[string, string]{Namespace: "users", Observer: obs})
	users.Get(ctx, "") // an invalid key: the result "error", error.type "invalid_key"

	var rm metricdata.ResourceMetrics
	reader.Collect(ctx, &rm)
	for _, line := range histogramCounts(rm) {
		fmt.Println(line)
	}
	fmt.Println(rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Histogram[float64]).DataPoints[0].Bounds)
	// Output:
	// cache.operation.duration{cache.layer=store cache.name=users cache.op=get cache.result=error} 1
	// [0.001 0.01 0.1 1]
}
