package cache_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/typedcache/typedcache/cache"
)

// recorder is an Observer that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []cache.Event
}

func (r *recorder) Observe(_ context.Context, ev cache.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *recorder) count(op cache.Op, layer cache.Layer, res cache.Result) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, ev := range r.events {
		if ev.Op == op && ev.Layer == layer && ev.Result == res {
			n++
		}
	}
	return n
}

// The Observer sees every read, write and delete, with its layer, result,
// key and the cache's name, and agrees with Stats.
func TestObserver(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	s := newStore(t)
	c := cache.New[string, string](s, &cache.Options[string, string]{
		Namespace: "n", Name: "users", Observer: rec,
		Local: &cache.LocalOptions{Bus: newTestBus()},
	})
	t.Cleanup(func() { cache.CloseLocal(c) })
	waitLocalOn(t, c)
	c.Get(ctx, "missing")
	c.Set(ctx, "k", "v") // the writer keeps its copy locally
	c.Get(ctx, "k")      // a local hit
	s.Set(ctx, "n:other", []byte("o"), 0)
	c.Get(ctx, "other") // a store hit
	c.GetMulti(ctx, []string{"k", "other", "none"})
	c.Delete(ctx, "k")
	st := c.Stats()
	checks := []struct {
		name string
		got  int64
		want int64
	}{
		{"local hits", rec.count(cache.OpGet, cache.LayerLocal, cache.ResultHit), st.LocalHits},
		{"store hits", rec.count(cache.OpGet, cache.LayerStore, cache.ResultHit), st.Hits - st.LocalHits},
		{"misses", rec.count(cache.OpGet, cache.LayerStore, cache.ResultMiss), st.Misses},
		{"sets", rec.count(cache.OpSet, cache.LayerNone, cache.ResultOK), st.Sets},
		{"deletes", rec.count(cache.OpDelete, cache.LayerNone, cache.ResultOK), 1},
		{"invalidations sent", rec.count(cache.OpInvalidationSent, cache.LayerNone, cache.ResultOK), 2},
	}
	for _, c := range checks {
		if c.got != c.want || c.want == 0 {
			t.Errorf("%s: the Observer saw %d; Stats (or the test) say %d", c.name, c.got, c.want)
		}
	}
	for _, ev := range rec.events {
		if ev.Cache != "users" {
			t.Fatalf("event %+v: Cache %q; want users", ev, ev.Cache)
		}
		if ev.Key == "" {
			t.Fatalf("event %+v has no key", ev)
		}
	}
}

// Background failures are logged once per cause a minute, with the key.
func TestLoggerOncePerCause(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	bus := newTestBus()
	s := newStore(t)
	c := cache.New[string, string](s, &cache.Options[string, string]{Namespace: "n", Logger: log, Local: &cache.LocalOptions{Bus: bus}})
	t.Cleanup(func() { cache.CloseLocal(c) })
	waitLocalOn(t, c)
	bus.mu.Lock()
	bus.down = true // publishes fail; the subscription stays
	bus.mu.Unlock()
	for range 3 {
		err := c.Set(ctx, "k", "v")
		if !errors.Is(err, cache.ErrNotInvalidated) {
			t.Fatalf("Set with the bus failing: %v; want ErrNotInvalidated", err)
		}
	}
	if v, _, _ := c.Get(ctx, "k"); v != "v" {
		t.Fatalf("the value was not written: %q", v)
	}
	if n := strings.Count(buf.String(), "background failure"); n != 1 {
		t.Fatalf("logged %d times for one cause; want once:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "key=n:k") {
		t.Fatalf("the log line does not name the key:\n%s", buf.String())
	}
}

// Without an Observer, a hit allocates only what the store's read does:
// the copy of the bytes a memory store hands out (and nothing for a []byte
// value, which is those bytes). The Observer's machinery costs a Cache
// without one nothing on the hot path.
func TestGetWithoutObserverAllocs(t *testing.T) {
	ctx := context.Background()
	c := cache.New[string, []byte](newStore(t), nil)
	if err := c.Set(ctx, "k", []byte("value")); err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(200, func() {
		if _, found, err := c.Get(ctx, "k"); err != nil || !found {
			t.Fatalf("Get = %v, %v; want a hit", found, err)
		}
	})
	if n > 1 {
		t.Fatalf("a hit without an Observer allocates %v times; want 1 (the store's copy)", n)
	}
}
