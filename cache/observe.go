package cache

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Observer receives what a Cache, and the packages built on it (memo,
// lock), do: for metrics, traces and logs. Give one in Options.Observer; a
// nil Observer costs nothing (the hit path checks one pointer). Package
// typedcache/otel turns the events into OpenTelemetry metrics and spans.
//
// Observe is called once per event, after it happened, from the goroutine
// that did it; it must be safe for concurrent use and return quickly.
// Stats counts the same events: the two always agree.
type Observer interface {
	Observe(ctx context.Context, ev Event)
}

// Tracer is an optional interface of an Observer that wants to follow
// operations as they run (an OpenTelemetry span per operation): Start is
// called when an operation of op begins, and returns the context it goes
// on with (its children, such as memo's compute and lease wait under a
// GetOrCompute, start from it) and the function to call when it ends.
type Tracer interface {
	Start(ctx context.Context, op Op, cache, key string) (context.Context, func(err error))
}

// Event is one thing a Cache did.
type Event struct {
	Cache    string        // Options.Name
	Op       Op            // what was done
	Layer    Layer         // where a read was answered (OpGet)
	Result   Result        // how it ended
	Key      string        // the store key, when the event is about one
	Duration time.Duration // how long it took, for operations (0 for instant events)
	Err      error         // the failure, with ResultError
}

// Op is the kind of an Event.
type Op uint8

// The operations of Events.
const (
	OpGet                  Op = iota + 1 // a read of a key (Get, GetMulti per key, memo's read; not Gets)
	OpSet                                // a write (Set, SetMulti per key, Add, CompareAndSwap, Increment, memo's value)
	OpDelete                             // a delete (Delete per key, memo's Invalidate)
	OpCompute                            // a computation of memo or GetOrCompute
	OpLeaseWait                          // a wait for another caller's computation (memo)
	OpRefresh                            // a refresh-ahead recomputation (memo)
	OpStaleServed                        // a stale value served (memo's fail-safe)
	OpInvalidationSent                   // the local tier published an invalidation
	OpInvalidationReceived               // the local tier dropped a key for another process's write
	OpBackground                         // work no caller waits for failed (a refresh, a value's write)
	OpGetOrCompute                       // a whole memo.GetOrCompute call (Tracer spans)
)

var opNames = [...]string{"", "get", "set", "delete", "compute", "lease_wait", "refresh", "stale_served",
	"invalidation_sent", "invalidation_received", "background", "get_or_compute"}

// String returns the op's name as metrics label it: "get", "lease_wait"...
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "unknown"
}

// Layer is where a read was answered.
type Layer uint8

// The layers of a read.
const (
	LayerNone  Layer = iota // not a read
	LayerLocal              // the local tier
	LayerStore              // the store
)

// String returns "local", "store" or "".
func (l Layer) String() string {
	switch l {
	case LayerLocal:
		return "local"
	case LayerStore:
		return "store"
	}
	return ""
}

// Result is how an Event ended.
type Result uint8

// The results of Events.
const (
	ResultOK       Result = iota // done (writes, computations, waits)
	ResultHit                    // a read found a fresh value
	ResultMiss                   // a read found nothing usable
	ResultStale                  // a read was answered with a stale value (fail-safe)
	ResultNegative               // a read found a cached "not found"
	ResultError                  // it failed (Event.Err)
)

var resultNames = [...]string{"ok", "hit", "miss", "stale", "negative", "error"}

// String returns the result's name: "hit", "miss", "error"...
func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "unknown"
}

// observer is the part of a Cache that reports events: to its Observer,
// and background failures to its Logger, once per cause.
type observer struct {
	name   string
	obs    Observer
	tracer Tracer
	log    *slog.Logger

	mu     sync.Mutex
	logged map[string]time.Time // cause -> when it was last logged
}

// emit reports ev, stamped with the cache's name.
func (o *observer) emit(ctx context.Context, ev Event) {
	if o.obs == nil {
		return
	}
	ev.Cache = o.name
	o.obs.Observe(ctx, ev)
}

// logEvery is how often the same cause of background failures is logged
// again while it lasts.
const logEvery = time.Minute

// background reports a failure of work no caller waits for: an Event, and
// a log line unless the same cause was logged less than a minute ago.
func (o *observer) background(ctx context.Context, what, key string, err error) {
	o.emit(ctx, Event{Op: OpBackground, Result: ResultError, Key: key, Err: err})
	if o.log == nil || err == nil {
		return
	}
	cause := what + ": " + err.Error()
	now := time.Now()
	o.mu.Lock()
	last, seen := o.logged[cause]
	if !seen || now.Sub(last) >= logEvery {
		if o.logged == nil {
			o.logged = make(map[string]time.Time)
		}
		if len(o.logged) > 1000 {
			clear(o.logged) // causes that change with every failure: bound the map
		}
		o.logged[cause] = now
	}
	o.mu.Unlock()
	if seen && now.Sub(last) < logEvery {
		return
	}
	o.log.LogAttrs(ctx, slog.LevelWarn, "typedcache: background failure",
		slog.String("cache", o.name), slog.String("what", what), slog.String("key", key), slog.Any("error", err))
}

// start begins a traced operation, where the Observer is a Tracer.
func (o *observer) start(ctx context.Context, op Op, key string) (context.Context, func(error)) {
	if o.tracer == nil {
		return ctx, nil
	}
	return o.tracer.Start(ctx, op, o.name, key)
}
