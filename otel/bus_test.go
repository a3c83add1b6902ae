package otel_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/cache"
)

// bus is an in-process cache.Bus (memstore has none on this branch) whose
// publications the test can make fail.
type bus struct {
	mu   sync.Mutex
	subs map[string][]func([]byte)
	down bool
}

func newBus() *bus { return &bus{subs: map[string][]func([]byte){}} }

func (b *bus) Publish(ctx context.Context, channel string, msg []byte) error {
	b.mu.Lock()
	if b.down {
		b.mu.Unlock()
		return errors.New("bus down")
	}
	subs := append([]func([]byte){}, b.subs[channel]...)
	b.mu.Unlock()
	for _, handle := range subs {
		handle(append([]byte(nil), msg...))
	}
	return nil
}

func (b *bus) Subscribe(ctx context.Context, channel string, handle func([]byte), state func(bool)) (func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := len(b.subs[channel])
	b.subs[channel] = append(b.subs[channel], handle)
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.subs[channel][i] = func([]byte) {}
	}, nil
}

func (b *bus) setDown(down bool) {
	b.mu.Lock()
	b.down = down
	b.mu.Unlock()
}

// newStore returns a memory store closed with the test.
func newStore(t testing.TB) *memstore.Store {
	t.Helper()
	s, err := memstore.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newCache returns a Cache over s named name (namespace "n"), reporting
// to obs, with a local tier on b when b is not nil; it waits until the
// local tier serves values.
func newCache(t testing.TB, s cache.Store, name string, obs cache.Observer, b *bus) *cache.Cache[string, string] {
	t.Helper()
	o := &cache.Options[string, string]{Namespace: "n", Name: name, Observer: obs}
	if b != nil {
		o.Local = &cache.LocalOptions{Bus: b}
	}
	c := cache.New[string, string](s, o)
	if b == nil {
		return c
	}
	// Close stops the local tier's goroutines, and closes the store, which
	// the test is done with by then (closing it again does nothing).
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	for deadline := time.Now().Add(5 * time.Second); c.Stats().LocalHits == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the local tier never served a value")
		}
		if err := c.Set(ctx, "warm-up", "w"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Get(ctx, "warm-up"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	return c
}
