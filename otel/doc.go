// Package otel turns the events of typedcache's caches into OpenTelemetry
// metrics and spans. It is a module of its own
// (github.com/typedcache/typedcache/otel), so that the core module never
// depends on OpenTelemetry.
//
// Its name is the last element of its import path, as Go expects, and it
// is usually imported beside go.opentelemetry.io/otel: import it as
// typedotel.
//
//	import typedotel "github.com/typedcache/typedcache/otel"
//
//	obs, err := typedotel.NewObserver(nil) // the global MeterProvider and TracerProvider
//	if err != nil { ... }
//	users := cache.New[int, User](store, &cache.Options[int, User]{
//		Namespace: "users",
//		Observer:  obs,
//	})
//
// docs/observability.md in the repository lists every metric, span and
// attribute, with Prometheus and cardinality advice.
//
// # Metrics
//
// cache.operation.duration (a histogram, in seconds, with buckets from a
// microsecond to ten seconds) has a point for every event that takes time:
// each key read (op "get": layer "local" or "store"; result "hit", "miss",
// "negative", "stale" or "error"), written ("set") or deleted ("delete"),
// each computation ("compute"), lease wait ("lease_wait"), refresh
// ("refresh") and invalidation sent ("invalidation_sent"). Its count is the
// number of those events. GetMulti, SetMulti and Delete of several keys
// record one point per key, each with the duration of the whole call.
//
// cache.events (a counter) counts the events that take no time of their
// own: "stale_served", "invalidation_received" and "background" (a
// failure of work no caller waits for).
//
// Their attributes are cache.name (cache.Options.Name, default the
// namespace), cache.op, cache.layer (reads only), cache.result and, when
// the result is "error", error.type: the typedcache sentinel the error
// matches ("timeout", "decode", "not_invalidated", "uncertain"...) or
// "_OTHER". Keys are never metric attributes: there are as many as
// entries.
//
// # Spans
//
// The Observer is also a cache.Tracer: operations that are traced (memo's
// GetOrCompute and its lease wait, computation and store calls) get a span
// named "cache." + op, a child of the span in the caller's context, with
// cache.name and cache.op; the key only with Options.SpanKeys. A failed
// operation's span records the error and has the status Error.
//
// # Goroutines
//
// An Observer starts none: it records on the goroutine of the event, with
// the SDK's instruments.
//
// # Contexts
//
// Observe passes the event's context to the instruments (an SDK with
// trace-based exemplars links a point to the span in it); Start makes the
// span a child of the span in ctx and returns ctx with the new span.
package otel
