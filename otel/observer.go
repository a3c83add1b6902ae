package otel

import (
	"context"
	"fmt"

	globalotel "go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/typedcache/typedcache/cache"
)

// ScopeName is the instrumentation scope of the Observer's meter and
// tracer.
const ScopeName = "github.com/typedcache/typedcache/otel"

// The metrics of an Observer.
const (
	// MetricOperationDuration is a histogram, in seconds, of every event
	// that takes time: reads, writes, deletes, computations, lease waits,
	// refreshes and invalidations sent. Its count is the number of such
	// events, so it also serves as the operation counter.
	MetricOperationDuration = "cache.operation.duration"

	// MetricEvents is a counter of the events that take no time of their
	// own: stale values served, invalidations received, background
	// failures.
	MetricEvents = "cache.events"
)

// The attributes of the Observer's metrics and spans.
const (
	AttrName      attribute.Key = "cache.name"   // Options.Name of the Cache (default its namespace)
	AttrOp        attribute.Key = "cache.op"     // cache.Op.String(): "get", "set", "lease_wait"...
	AttrLayer     attribute.Key = "cache.layer"  // cache.Layer.String(): "local" or "store"; absent when empty
	AttrResult    attribute.Key = "cache.result" // cache.Result.String(): "hit", "miss", "ok", "error"...
	AttrErrorType attribute.Key = "error.type"   // with the result "error" only: see the package documentation
	AttrKey       attribute.Key = "cache.key"    // spans only, and only with Options.SpanKeys
)

// Options configure an Observer. A nil *Options, and every zero field,
// means the default.
type Options struct {
	// MeterProvider makes the Observer's instruments; default the global
	// otel.GetMeterProvider(). A noop.MeterProvider turns metrics off.
	MeterProvider metric.MeterProvider

	// TracerProvider makes the Observer's spans; default the global
	// otel.GetTracerProvider(). A noop.TracerProvider turns spans off.
	TracerProvider trace.TracerProvider

	// SpanKeys adds each span's store key as the attribute cache.key. Keys
	// can be personal data (an e-mail address in a key) and are as many as
	// the cache's entries: they are off by default, and never a metric
	// attribute whatever this says.
	SpanKeys bool
}

// Observer turns a Cache's events into OpenTelemetry metrics and its traced
// operations into spans: give it to cache.Options.Observer. It implements
// cache.Observer and cache.Tracer, holds no goroutine, and is safe for
// concurrent use; one Observer may serve every Cache of a process (each
// Cache's events carry its Options.Name).
type Observer struct {
	duration metric.Float64Histogram
	events   metric.Int64Counter
	sets     attrSets

	tracer   trace.Tracer
	spanKeys bool
}

var (
	_ cache.Observer = (*Observer)(nil)
	_ cache.Tracer   = (*Observer)(nil)
)

// durationBuckets are the histogram's bucket boundaries, in seconds: from
// a microsecond (a local hit takes less) to ten seconds (a slow
// computation), in 1-2.5-5 steps.
var durationBuckets = []float64{
	0.000001, 0.0000025, 0.000005,
	0.00001, 0.000025, 0.00005,
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2.5, 5, 10,
}

// NewObserver returns an Observer that records with opts's providers. It
// fails only if an instrument cannot be created.
func NewObserver(opts *Options) (*Observer, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MeterProvider == nil {
		o.MeterProvider = globalotel.GetMeterProvider()
	}
	if o.TracerProvider == nil {
		o.TracerProvider = globalotel.GetTracerProvider()
	}
	meter := o.MeterProvider.Meter(ScopeName)
	duration, err := meter.Float64Histogram(MetricOperationDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Duration of cache operations: reads, writes, deletes, computations, lease waits, refreshes, invalidations sent."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	if err != nil {
		return nil, fmt.Errorf("typedcache/otel: %s: %w", MetricOperationDuration, err)
	}
	events, err := meter.Int64Counter(MetricEvents,
		metric.WithUnit("{event}"),
		metric.WithDescription("Cache events without a duration: stale values served, invalidations received, background failures."))
	if err != nil {
		return nil, fmt.Errorf("typedcache/otel: %s: %w", MetricEvents, err)
	}
	return &Observer{
		duration: duration,
		events:   events,
		tracer:   o.TracerProvider.Tracer(ScopeName),
		spanKeys: o.SpanKeys,
	}, nil
}

// Observe records ev: a point of cache.operation.duration, or one of
// cache.events for the events that take no time of their own. The key of
// ev is never recorded.
func (o *Observer) Observe(ctx context.Context, ev cache.Event) {
	p := o.sets.of(ev.Cache, ev.Op, ev.Layer, ev.Result, errorType(ev))
	if instant(ev.Op) {
		o.events.Add(ctx, 1, p.add...)
		return
	}
	o.duration.Record(ctx, ev.Duration.Seconds(), p.record...)
}

// instant reports whether events of op take no time of their own.
func instant(op cache.Op) bool {
	switch op {
	case cache.OpStaleServed, cache.OpInvalidationReceived, cache.OpBackground:
		return true
	}
	return false
}
