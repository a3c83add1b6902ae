package otel

import (
	"context"
	"reflect"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/typedcache/typedcache/cache"
)

// Start begins a span named "cache." + op ("cache.get_or_compute",
// "cache.compute", "cache.lease_wait", "cache.get"...), a child of the
// span in ctx, with the attributes cache.name and cache.op (and cache.key
// with Options.SpanKeys). It returns ctx with the span, for the
// operation's children, and the function that ends the span: a non-nil
// error is recorded on it (an exception event, the status Error and
// error.type). Without Options.SpanKeys, the key is cut out of the error's
// message ("cache: get <key>: ...") before it is recorded.
func (o *Observer) Start(ctx context.Context, op cache.Op, name, key string) (context.Context, func(err error)) {
	attrs := make([]attribute.KeyValue, 2, 3)
	attrs[0] = AttrName.String(name)
	attrs[1] = AttrOp.String(op.String())
	if o.spanKeys && key != "" {
		attrs = append(attrs, AttrKey.String(key))
	}
	ctx, span := o.tracer.Start(ctx, spanName(op), trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	if !span.IsRecording() {
		return ctx, endNothing // not sampled: ending it does nothing
	}
	return ctx, func(err error) {
		if err != nil {
			msg := err.Error()
			if !o.spanKeys && key != "" {
				msg = redact(msg, key)
			}
			// span.RecordError, with the message redacted.
			span.AddEvent(semconv.ExceptionEventName, trace.WithAttributes(
				semconv.ExceptionTypeKey.String(typeName(err)),
				semconv.ExceptionMessageKey.String(msg)))
			span.SetStatus(codes.Error, msg)
			span.SetAttributes(AttrErrorType.String(errorType(cache.Event{Result: cache.ResultError, Err: err})))
		}
		span.End()
	}
}

// redact replaces key in an error message, as it is and as OpError prints
// a key with control bytes, by "<key>".
func redact(msg, key string) string {
	msg = strings.ReplaceAll(msg, key, "<key>")
	if q := strconv.Quote(key); q[1:len(q)-1] != key {
		msg = strings.ReplaceAll(msg, q[1:len(q)-1], "<key>")
	}
	return msg
}

// typeName is the exception.type of err, as span.RecordError names it:
// "*cache.OpError", "*errors.errorString"; a named type that is not a
// pointer with its package path.
func typeName(err error) string {
	t := reflect.TypeOf(err)
	if t.PkgPath() == "" && t.Name() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}

func endNothing(error) {}

// spanNames are the span names of the known ops, built once.
var spanNames = func() []string {
	names := make([]string, tableOps)
	for op := range names {
		names[op] = "cache." + cache.Op(op).String()
	}
	return names
}()

func spanName(op cache.Op) string {
	if int(op) < len(spanNames) {
		return spanNames[op]
	}
	return "cache." + op.String()
}
