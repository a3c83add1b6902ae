package cache_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// testBus is an in-process cache.Bus whose connection the test can cut.
type testBus struct {
	mu   sync.Mutex
	subs map[string][]*testSub
	down bool
}

type testSub struct {
	handle func([]byte)
	state  func(bool)
	mu     sync.Mutex // one call at a time, as the contract says
}

func newTestBus() *testBus { return &testBus{subs: map[string][]*testSub{}} }

func (b *testBus) Publish(ctx context.Context, channel string, msg []byte) error {
	b.mu.Lock()
	if b.down {
		b.mu.Unlock()
		return errors.New("bus down")
	}
	subs := append([]*testSub(nil), b.subs[channel]...)
	b.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		s.handle(append([]byte(nil), msg...))
		s.mu.Unlock()
	}
	return nil
}

func (b *testBus) Subscribe(ctx context.Context, channel string, handle func([]byte), state func(bool)) (func(), error) {
	s := &testSub{handle: handle, state: state}
	b.mu.Lock()
	b.subs[channel] = append(b.subs[channel], s)
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		list := b.subs[channel]
		for i, x := range list {
			if x == s {
				b.subs[channel] = append(list[:i], list[i+1:]...)
				break
			}
		}
	}, nil
}

// setDown cuts (or restores) every subscription's connection.
func (b *testBus) setDown(down bool) {
	b.mu.Lock()
	b.down = down
	var subs []*testSub
	for _, list := range b.subs {
		subs = append(subs, list...)
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		s.state(!down)
		s.mu.Unlock()
	}
}

func localCache(t *testing.T, s cache.Store, bus cache.Bus, lo cache.LocalOptions) *cache.Cache[string, string] {
	t.Helper()
	lo.Bus = bus
	c := cache.New[string, string](s, &cache.Options[string, string]{Namespace: "n", Local: &lo})
	t.Cleanup(func() { closeLocal(c) })
	waitLocalOn(t, c)
	return c
}

// closeLocal stops a cache's local tier without closing the shared store.
func closeLocal(c *cache.Cache[string, string]) { cache.CloseLocal(c) }

// waitLocalOn waits until the local tier has subscribed to its bus.
func waitLocalOn(t *testing.T, c *cache.Cache[string, string]) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cache.LocalOn(c) {
		if time.Now().After(deadline) {
			t.Fatal("the local tier never subscribed to its bus")
		}
		time.Sleep(time.Millisecond)
	}
}

// A write through one Cache invalidates the local copy of another that
// shares the store and the bus; the writer keeps its own fresh copy.
func TestLocalCoherent(t *testing.T) {
	ctx := context.Background()
	s, bus := newStore(t), newTestBus()
	a := localCache(t, s, bus, cache.LocalOptions{})
	b := localCache(t, s, bus, cache.LocalOptions{})
	if err := a.Set(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := b.Get(ctx, "k"); v != "v1" {
		t.Fatalf("b.Get = %q; want v1", v)
	}
	// b now serves k locally: a store write behind its back is not seen...
	if err := s.Set(ctx, "n:k", []byte("behind"), 0); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := b.Get(ctx, "k"); v != "v1" {
		t.Fatalf("b.Get after a write that published nothing = %q; want its local v1", v)
	}
	// ... a write through a Cache is.
	if err := a.Set(ctx, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := b.Get(ctx, "k"); v != "v2" {
		t.Fatalf("b.Get after a.Set = %q; want v2", v)
	}
	if v, _, _ := a.Get(ctx, "k"); v != "v2" {
		t.Fatalf("a.Get after its own Set = %q; want v2", v)
	}
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"Delete", func() error { _, err := a.Delete(ctx, "k"); return err }},
		{"Clear", func() error { return a.Clear(ctx) }},
		{"Expire", func() error { _, err := a.Expire(ctx, "k", time.Nanosecond); return err }},
	} {
		if err := a.Set(ctx, "k", "v3"); err != nil {
			t.Fatal(err)
		}
		if v, _, _ := b.Get(ctx, "k"); v != "v3" {
			t.Fatalf("before %s: b.Get = %q; want v3", op.name, v)
		}
		if err := op.run(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // Expire's nanosecond
		if v, found, _ := b.Get(ctx, "k"); found {
			t.Fatalf("after a.%s: b.Get = %q; want a miss", op.name, v)
		}
	}
}

// While the bus is down, local values are served at most MaxStaleness
// after the tier learns of it (this bus tells it at once), then the tier
// is bypassed; when it is back, it starts empty. The bound allows 400ms
// for the timer and the scheduling of a loaded 2-core machine under the
// race detector, against a tier that would serve its copy for the local
// TTL (a minute).
func TestLocalDisconnected(t *testing.T) {
	ctx := context.Background()
	s, bus := newStore(t), newTestBus()
	const stale = 100 * time.Millisecond
	b := localCache(t, s, bus, cache.LocalOptions{MaxStaleness: stale})
	if err := s.Set(ctx, "n:k", []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := b.Get(ctx, "k"); v != "v1" {
		t.Fatalf("Get = %q", v)
	}
	const allowance = 400 * time.Millisecond
	down := time.Now()
	bus.setDown(true)
	if err := s.Set(ctx, "n:k", []byte("v2"), 0); err != nil { // its invalidation is lost
		t.Fatal(err)
	}
	for {
		v, _, _ := b.Get(ctx, "k")
		if v == "v2" {
			break
		}
		if since := time.Since(down); since > stale+allowance {
			t.Fatalf("still %q %v after the bus went down; want the store's value after MaxStaleness %v (+%v)", v, since, stale, allowance)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Down: nothing is kept locally.
	if err := s.Set(ctx, "n:k", []byte("v3"), 0); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := b.Get(ctx, "k"); v != "v3" {
		t.Fatalf("with the bus down past MaxStaleness: Get = %q; want the store's v3", v)
	}
	bus.setDown(false)
	if v, _, _ := b.Get(ctx, "k"); v != "v3" {
		t.Fatalf("after the bus is back: Get = %q; want v3", v)
	}
}

// A local hit allocates nothing (without a Clone hook).
func TestLocalHitAllocs(t *testing.T) {
	ctx := context.Background()
	c := localCache(t, newStore(t), newTestBus(), cache.LocalOptions{})
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { c.Get(ctx, "k") }); n != 0 {
		t.Fatalf("a local hit allocates %v times; want 0", n)
	}
}

// cloningCache returns a Cache of []string over s with a local tier whose
// Clone hook copies the slice, subscribed to a bus of its own.
func cloningCache(t *testing.T, s cache.Store) *cache.Cache[string, []string] {
	t.Helper()
	c := cache.New[string, []string](s, &cache.Options[string, []string]{Local: &cache.LocalOptions{
		Bus:   newTestBus(),
		Clone: func(v any) any { return append([]string(nil), v.([]string)...) },
	}})
	t.Cleanup(func() { cache.CloseLocal(c) })
	deadline := time.Now().Add(5 * time.Second)
	for !cache.LocalOn(c) {
		if time.Now().After(deadline) {
			t.Fatal("the local tier never subscribed to its bus")
		}
		time.Sleep(time.Millisecond)
	}
	return c
}

func TestLocalClone(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := cloningCache(t, s)
	if err := c.Set(ctx, "k", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	v, _, _ := c.Get(ctx, "k")
	v[0] = "changed"
	if w, _, _ := c.Get(ctx, "k"); w[0] != "a" {
		t.Fatalf("a caller's change reached the local tier: %q", w[0])
	}
}

// stuckBus is a bus whose Publish never gets an answer: it returns only
// when its context ends.
type stuckBus struct{ *testBus }

func (b stuckBus) Publish(ctx context.Context, channel string, msg []byte) error {
	<-ctx.Done()
	return ctx.Err()
}

// The Timeout bounds the publication of an invalidation as it bounds
// every store call: a write over a bus that never answers returns, with
// ErrNotInvalidated, once the Timeout has passed. (The bound of the
// wait is one of a hang, not of speed.)
func TestLocalPublishBoundedByTimeout(t *testing.T) {
	ctx := context.Background()
	c := cache.New[string, string](newStore(t), &cache.Options[string, string]{
		Namespace: "n",
		Timeout:   50 * time.Millisecond,
		Local:     &cache.LocalOptions{Bus: stuckBus{newTestBus()}},
	})
	t.Cleanup(func() { closeLocal(c) })
	waitLocalOn(t, c)
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"Set", func() error { return c.Set(ctx, "k", "v") }},
		{"Delete", func() error { _, err := c.Delete(ctx, "k"); return err }},
		{"Clear", func() error { return c.Clear(ctx) }},
	} {
		done := make(chan error, 1)
		go func() { done <- op.run() }()
		select {
		case err := <-done:
			if !errors.Is(err, cache.ErrNotInvalidated) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s over a bus that never answers: %v; want ErrNotInvalidated and DeadlineExceeded", op.name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s over a bus that never answers, with a Timeout of 50ms, has not returned after 10s", op.name)
		}
	}
}
