package otel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/codec"
	typedotel "github.com/typedcache/typedcache/otel"
)

// harness is an Observer over in-memory SDK providers.
type harness struct {
	obs    *typedotel.Observer
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
}

// newHarness returns an Observer made with opts (its providers replaced by
// in-memory ones). Its metric reader reports deltas: each collect sees
// what happened since the previous one.
func newHarness(t testing.TB, opts *typedotel.Options, sampler sdktrace.Sampler) *harness {
	t.Helper()
	h := &harness{
		reader: sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(
			func(sdkmetric.InstrumentKind) metricdata.Temporality { return metricdata.DeltaTemporality })),
		spans: tracetest.NewSpanRecorder(),
	}
	if sampler == nil {
		sampler = sdktrace.AlwaysSample()
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	h.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans), sdktrace.WithSampler(sampler))
	t.Cleanup(func() {
		mp.Shutdown(context.Background())
		h.tp.Shutdown(context.Background())
	})
	var o typedotel.Options
	if opts != nil {
		o = *opts
	}
	o.MeterProvider, o.TracerProvider = mp, h.tp
	obs, err := typedotel.NewObserver(&o)
	if err != nil {
		t.Fatal(err)
	}
	h.obs = obs
	return h
}

// collect returns the points recorded since the last collect: by metric
// name, then by attributes ("k=v" pairs, sorted, space-separated), the
// histogram's count or the counter's sum. It fails the test on a point of
// cache.operation.duration with other bucket boundaries than the
// documented ones.
func (h *harness) collect(t testing.TB) map[string]map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != typedotel.ScopeName {
			t.Fatalf("scope %q; want %q", sm.Scope.Name, typedotel.ScopeName)
		}
		for _, m := range sm.Metrics {
			series := map[string]int64{}
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				if m.Unit != "s" {
					t.Fatalf("%s: unit %q; want s", m.Name, m.Unit)
				}
				for _, p := range d.DataPoints {
					if len(p.Bounds) != 22 || p.Bounds[0] != 1e-6 || p.Bounds[21] != 10 {
						t.Fatalf("%s: bounds %v; want 1µs .. 10s", m.Name, p.Bounds)
					}
					if p.Count > 0 {
						series[attrs(p.Attributes)] += int64(p.Count)
					}
				}
			case metricdata.Sum[int64]:
				if !d.IsMonotonic {
					t.Fatalf("%s is not a counter", m.Name)
				}
				for _, p := range d.DataPoints {
					if p.Value > 0 {
						series[attrs(p.Attributes)] += p.Value
					}
				}
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
			if len(series) > 0 {
				got[m.Name] = series
			}
		}
	}
	return got
}

func attrs(s attribute.Set) string {
	var kv []string
	for _, a := range s.ToSlice() {
		kv = append(kv, string(a.Key)+"="+a.Value.Emit())
	}
	slices.Sort(kv)
	return strings.Join(kv, " ")
}

// checkSeries compares every series of got with want.
func checkSeries(t *testing.T, got, want map[string]map[string]int64) {
	t.Helper()
	for name, w := range want {
		for s, n := range w {
			if got[name][s] != n {
				t.Errorf("%s{%s} = %d; want %d", name, s, got[name][s], n)
			}
		}
		for s, n := range got[name] {
			if _, ok := w[s]; !ok {
				t.Errorf("%s{%s} = %d; want none", name, s, n)
			}
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected metric %s: %v", name, got[name])
		}
	}
}

// Reads (local hit, store hit, miss, failure), writes, deletes and
// invalidations of two caches sharing a store and a bus give the
// documented series, and their counts agree with Stats.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil, nil)
	s, b := newStore(t), newBus()
	users := newCache(t, s, "users", h.obs, b)
	other := newCache(t, s, "users-b", h.obs, b) // another process's Cache of the same keys
	h.collect(t)                                 // forget the warm-up
	before := users.Stats()

	users.Get(ctx, "missing") // store miss
	users.Set(ctx, "k", "v")  // the writer keeps its copy; users-b drops its copy
	users.Get(ctx, "k")       // local hit
	s.Set(ctx, "n:other", []byte("o"), 0)
	users.Get(ctx, "other")                             // store hit, kept locally
	users.GetMulti(ctx, []string{"k", "other", "none"}) // two local hits, a store miss
	if n, err := users.Delete(ctx, "k"); n != 1 || err != nil {
		t.Fatalf("Delete = %d, %v; want 1, nil", n, err)
	}
	if _, _, err := users.Get(ctx, ""); !errors.Is(err, cache.ErrInvalidKey) {
		t.Fatalf("Get of an empty key: %v; want ErrInvalidKey", err)
	}
	other.Set(ctx, "x", "1") // users drops x
	b.setDown(true)
	if err := users.Set(ctx, "y", "2"); !errors.Is(err, cache.ErrNotInvalidated) {
		t.Fatalf("Set with the bus down: %v; want ErrNotInvalidated", err)
	}
	b.setDown(false)

	got := h.collect(t)
	const u, ub = "cache.name=users ", "cache.name=users-b "
	checkSeries(t, got, map[string]map[string]int64{
		typedotel.MetricOperationDuration: {
			"cache.layer=store " + u + "cache.op=get cache.result=miss":                         2,
			"cache.layer=local " + u + "cache.op=get cache.result=hit":                          3,
			"cache.layer=store " + u + "cache.op=get cache.result=hit":                          1,
			"cache.layer=store " + u + "cache.op=get cache.result=error error.type=invalid_key": 1,
			u + "cache.op=set cache.result=ok":                                                  1,
			u + "cache.op=set cache.result=error error.type=not_invalidated":                    1,
			u + "cache.op=delete cache.result=ok":                                               1,
			u + "cache.op=invalidation_sent cache.result=ok":                                    2,
			u + "cache.op=invalidation_sent cache.result=error error.type=_OTHER":               1,
			ub + "cache.op=set cache.result=ok":                                                 1,
			ub + "cache.op=invalidation_sent cache.result=ok":                                   1,
		},
		typedotel.MetricEvents: {
			u + "cache.op=invalidation_received cache.result=ok":           1,
			u + "cache.op=background cache.result=error error.type=_OTHER": 1,
			ub + "cache.op=invalidation_received cache.result=ok":          2,
		},
	})

	// The same counts as Stats.
	st := users.Stats()
	d := got[typedotel.MetricOperationDuration]
	checks := []struct {
		name      string
		got, want int64
	}{
		{"local hits", d["cache.layer=local "+u+"cache.op=get cache.result=hit"], st.LocalHits - before.LocalHits},
		{"hits", d["cache.layer=local "+u+"cache.op=get cache.result=hit"] + d["cache.layer=store "+u+"cache.op=get cache.result=hit"], st.Hits - before.Hits},
		{"misses", d["cache.layer=store "+u+"cache.op=get cache.result=miss"], st.Misses - before.Misses},
		// A write whose invalidation was not sent is written.
		{"sets", d[u+"cache.op=set cache.result=ok"] + d[u+"cache.op=set cache.result=error error.type=not_invalidated"], st.Sets - before.Sets},
		{"deletes", d[u+"cache.op=delete cache.result=ok"], st.Deletes - before.Deletes},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: the metrics say %d; Stats say %d", c.name, c.got, c.want)
		}
	}
}

// A failed event's error.type is the typedcache sentinel its error
// matches, the context's error, or _OTHER.
func TestErrorType(t *testing.T) {
	h := newHarness(t, nil, nil)
	tests := []struct {
		err  error
		want string
	}{
		{&cache.OpError{Op: "get", Key: "k", Err: context.DeadlineExceeded}, "timeout"},
		{context.Canceled, "canceled"},
		{&cache.OpError{Op: "get", Key: "k", Err: fmt.Errorf("%w: bad", codec.ErrDecode)}, "decode"},
		{cache.ErrUncertain, "uncertain"},
		{errors.Join(cache.ErrNotInvalidated, context.DeadlineExceeded), "not_invalidated"},
		{cache.ErrExists, "exists"},
		{cache.ErrConflict, "conflict"},
		{cache.ErrTooLarge, "too_large"},
		{cache.ErrClosed, "closed"},
		{&cache.PanicError{Value: "boom"}, "panic"},
		{errors.New("connection refused"), "_OTHER"},
		{nil, "_OTHER"},
	}
	for _, tt := range tests {
		h.obs.Observe(context.Background(), cache.Event{Cache: "c", Op: cache.OpGet, Layer: cache.LayerStore,
			Result: cache.ResultError, Err: tt.err, Duration: time.Millisecond})
		got := h.collect(t)[typedotel.MetricOperationDuration]
		want := "cache.layer=store cache.name=c cache.op=get cache.result=error error.type=" + tt.want
		if len(got) != 1 || got[want] != 1 {
			t.Errorf("error %v: series %v; want {%s: 1}", tt.err, got, want)
		}
	}
}

// An event of an op the Observer does not know yet (one added to cache
// later) is recorded all the same.
func TestUnknownOp(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.obs.Observe(context.Background(), cache.Event{Cache: "c", Op: cache.Op(200), Result: cache.Result(100), Duration: time.Millisecond})
	got := h.collect(t)[typedotel.MetricOperationDuration]
	if want := "cache.name=c cache.op=unknown cache.result=unknown"; got[want] != 1 {
		t.Fatalf("series %v; want {%s: 1}", got, want)
	}
}

// NewObserver(nil) works with the global providers (no-ops by default).
func TestNewObserverDefaults(t *testing.T) {
	obs, err := typedotel.NewObserver(nil)
	if err != nil {
		t.Fatal(err)
	}
	obs.Observe(context.Background(), cache.Event{Op: cache.OpGet, Result: cache.ResultHit})
	ctx, end := obs.Start(context.Background(), cache.OpGet, "c", "k")
	if ctx == nil {
		t.Fatal("Start returned a nil context")
	}
	end(errors.New("x"))
}

// Observe allocates nothing once a series exists: no attribute set is built
// per event, also with a sampled span in the context (the SDK's exemplars)
// and for a failure with an error.type.
func TestObserveAllocs(t *testing.T) {
	h := newHarness(t, nil, nil)
	sampled, span := h.tp.Tracer("test").Start(context.Background(), "parent")
	defer span.End()
	tests := []struct {
		name string
		ctx  context.Context
		ev   cache.Event
	}{
		{"local hit", context.Background(), cache.Event{Cache: "users", Op: cache.OpGet, Layer: cache.LayerLocal, Result: cache.ResultHit, Key: "users:1", Duration: time.Microsecond}},
		{"under a sampled span", sampled, cache.Event{Cache: "users", Op: cache.OpSet, Result: cache.ResultOK, Key: "users:1", Duration: time.Millisecond}},
		{"background failure", context.Background(), cache.Event{Cache: "users", Op: cache.OpBackground, Result: cache.ResultError, Key: "users:1", Err: cache.ErrTooLarge}},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, func() { h.obs.Observe(tt.ctx, tt.ev) }); n != 0 {
			t.Errorf("%s: %v allocations per Observe; want 0", tt.name, n)
		}
	}
}

// Every cache name gets its series, past the names whose attribute sets
// the Observer keeps (a list, then a map, then none).
func TestManyNames(t *testing.T) {
	h := newHarness(t, nil, nil)
	const names = 1100
	for range 2 {
		for i := range names {
			h.obs.Observe(context.Background(), cache.Event{Cache: fmt.Sprint("c", i), Op: cache.OpSet, Duration: time.Millisecond})
		}
	}
	got := h.collect(t)[typedotel.MetricOperationDuration]
	if len(got) != names {
		t.Fatalf("%d series; want %d", len(got), names)
	}
	for _, i := range []int{0, 15, 16, 1023, 1024, names - 1} {
		if s := fmt.Sprintf("cache.name=c%d cache.op=set cache.result=ok", i); got[s] != 2 {
			t.Errorf("%s: %d; want 2", s, got[s])
		}
	}
}

// A point recorded under a sampled span carries it as an exemplar (the
// SDK's default trace-based filter), so that a slow read leads to its
// trace.
func TestExemplars(t *testing.T) {
	h := newHarness(t, nil, nil)
	users := newCache(t, newStore(t), "users", h.obs, nil)
	ctx, span := h.tp.Tracer("test").Start(context.Background(), "GET /users/1")
	users.Get(ctx, "1")
	span.End()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var points []metricdata.HistogramDataPoint[float64]
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			points = append(points, m.Data.(metricdata.Histogram[float64]).DataPoints...)
		}
	}
	if len(points) != 1 {
		t.Fatalf("%d histogram points; want 1 (a miss)", len(points))
	}
	tid := span.SpanContext().TraceID()
	if ex := points[0].Exemplars; len(ex) != 1 || !bytes.Equal(ex[0].TraceID, tid[:]) {
		t.Fatalf("exemplars %+v; want one of trace %s", ex, tid)
	}
}
