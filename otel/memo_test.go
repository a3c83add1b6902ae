package otel_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/memo"
)

// A memo.GetOrCompute miss, traced through the Observer: one
// cache.get_or_compute span under the caller's, with the read, the lease,
// the computation and the write of the value as its children.
func TestMemoSpans(t *testing.T) {
	h := newHarness(t, nil, nil)
	store, err := memstore.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	c := cache.New[string, string](store, &cache.Options[string, string]{Name: "users", TTL: time.Minute, Observer: h.obs})
	ctx, parent := h.tp.Tracer("test").Start(context.Background(), "GET /users/1")
	v, err := memo.GetOrCompute(ctx, c, "1", func(context.Context) (string, error) { return "ada", nil }, nil)
	parent.End()
	if err != nil || v != "ada" {
		t.Fatalf("GetOrCompute = %q, %v", v, err)
	}
	var call sdktrace.ReadOnlySpan
	names := map[string]int{}
	for _, s := range h.spans.Ended() {
		names[s.Name()]++
		if s.Name() == "cache.get_or_compute" {
			call = s
		}
	}
	if call == nil || call.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("spans %v: want cache.get_or_compute under the caller's span", names)
	}
	children := map[string]int{}
	for _, s := range h.spans.Ended() {
		if s.Parent().SpanID() == call.SpanContext().SpanID() {
			children[s.Name()]++
		}
	}
	// The read of the first caller is the call's child; the flight's own
	// steps (lease, computation, value) run on a context detached from the
	// caller but keep its span.
	for name, want := range map[string]int{"cache.get": 1, "cache.compute": 1, "cache.set": 2} {
		if children[name] < want {
			t.Errorf("children of cache.get_or_compute: %v; want at least %d %s", children, want, name)
		}
	}
}
