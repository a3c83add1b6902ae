package otel_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/typedcache/typedcache/cache"
	typedotel "github.com/typedcache/typedcache/otel"
)

// traceGetOrCompute does what memo does for a GetOrCompute of key under
// the span in ctx: a span for the call, and from its context a lease wait,
// a computation that fails with computeErr, and a write.
func traceGetOrCompute(ctx context.Context, obs *typedotel.Observer, key string, computeErr error) {
	gctx, endCall := obs.Start(ctx, cache.OpGetOrCompute, "users", key)
	_, end := obs.Start(gctx, cache.OpLeaseWait, "users", key)
	end(nil)
	_, end = obs.Start(gctx, cache.OpCompute, "users", key)
	end(computeErr)
	_, end = obs.Start(gctx, cache.OpSet, "users", key)
	end(nil)
	endCall(computeErr)
}

func spanAttrs(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, a := range s.Attributes() {
		m[a.Key] = a.Value.Emit()
	}
	return m
}

// Spans nest under the span in the caller's context, carry cache.name and
// cache.op but not the key, and a failure is recorded without the key.
func TestSpans(t *testing.T) {
	h := newHarness(t, nil, nil)
	ctx, parent := h.tp.Tracer("test").Start(context.Background(), "GET /users/1")
	failure := &cache.OpError{Pkg: "memo", Op: "compute", Key: "users:1", Err: errors.New("db down")}
	traceGetOrCompute(ctx, h.obs, "users:1", failure)
	parent.End()

	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range h.spans.Ended() {
		byName[s.Name()] = s
	}
	if len(byName) != 5 {
		t.Fatalf("got spans %v; want 5", byName)
	}
	call := byName["cache.get_or_compute"]
	if call == nil {
		t.Fatalf("no cache.get_or_compute span in %v", byName)
	}
	tests := []struct {
		name   string
		op     string
		parent sdktrace.ReadOnlySpan
		failed bool
	}{
		{"cache.get_or_compute", "get_or_compute", byName["GET /users/1"], true},
		{"cache.lease_wait", "lease_wait", call, false},
		{"cache.compute", "compute", call, true},
		{"cache.set", "set", call, false},
	}
	for _, tt := range tests {
		s := byName[tt.name]
		if s == nil {
			t.Errorf("no span %s", tt.name)
			continue
		}
		if s.Parent().SpanID() != tt.parent.SpanContext().SpanID() || s.SpanContext().TraceID() != tt.parent.SpanContext().TraceID() {
			t.Errorf("%s: parent %v; want %s", tt.name, s.Parent().SpanID(), tt.parent.Name())
		}
		a := spanAttrs(s)
		if a[typedotel.AttrName] != "users" || a[typedotel.AttrOp] != tt.op {
			t.Errorf("%s: attributes %v; want cache.name=users cache.op=%s", tt.name, a, tt.op)
		}
		if _, ok := a[typedotel.AttrKey]; ok {
			t.Errorf("%s: has the key without Options.SpanKeys: %v", tt.name, a)
		}
		if !tt.failed {
			if s.Status().Code != codes.Unset || len(s.Events()) != 0 {
				t.Errorf("%s: status %v, events %v; want neither", tt.name, s.Status(), s.Events())
			}
			continue
		}
		if s.Status().Code != codes.Error || a[typedotel.AttrErrorType] != "_OTHER" {
			t.Errorf("%s: status %v, error.type %q; want Error, _OTHER", tt.name, s.Status(), a[typedotel.AttrErrorType])
		}
		if want := "memo: compute <key>: db down"; s.Status().Description != want {
			t.Errorf("%s: status description %q; want %q", tt.name, s.Status().Description, want)
		}
		ev := s.Events()
		if len(ev) != 1 || ev[0].Name != "exception" {
			t.Fatalf("%s: events %v; want one exception", tt.name, ev)
		}
		for _, a := range ev[0].Attributes {
			if strings.Contains(a.Value.Emit(), "users:1") {
				t.Errorf("%s: the exception event has the key: %v", tt.name, a)
			}
			if a.Key == "exception.type" && a.Value.AsString() != "*cache.OpError" {
				t.Errorf("%s: exception.type %q; want *cache.OpError", tt.name, a.Value.AsString())
			}
		}
	}
}

// With Options.SpanKeys, spans carry the key, and errors keep it.
func TestSpanKeys(t *testing.T) {
	h := newHarness(t, &typedotel.Options{SpanKeys: true}, nil)
	traceGetOrCompute(context.Background(), h.obs, "users:1", errors.New("fetch users:1: db down"))
	spans := h.spans.Ended()
	if len(spans) != 4 {
		t.Fatalf("got %d spans; want 4", len(spans))
	}
	for _, s := range spans {
		if k := spanAttrs(s)[typedotel.AttrKey]; k != "users:1" {
			t.Errorf("%s: cache.key %q; want users:1", s.Name(), k)
		}
		if s.Name() == "cache.compute" && s.Status().Description != "fetch users:1: db down" {
			t.Errorf("%s: status description %q; want the error's message", s.Name(), s.Status().Description)
		}
	}
}

// Spans that are not sampled record nothing, and ending them is safe.
func TestSpansNotSampled(t *testing.T) {
	h := newHarness(t, nil, sdktrace.NeverSample())
	traceGetOrCompute(context.Background(), h.obs, "users:1", errors.New("db down"))
	if n := len(h.spans.Ended()); n != 0 {
		t.Fatalf("got %d spans; want none", n)
	}
}
