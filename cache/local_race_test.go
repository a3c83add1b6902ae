package cache_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// pausingStore is a store whose next read (Get, GetMulti) or write (Set,
// Add, SetMulti, CompareAndSwap), once armed, pauses after the inner store
// has answered: it reports that on the channel arm returned, and returns
// only when released. It is how a test puts an invalidation between a
// store call and what the local tier does with its result.
type pausingStore struct {
	cache.Store

	mu      sync.Mutex
	reads   bool // pause the next read (else the next write)
	armed   bool
	paused  chan struct{}
	release chan struct{}
}

// arm makes the next read (reads) or write pause; paused is closed when
// it has reached the store, and release lets it return.
func (s *pausingStore) arm(reads bool) (paused <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads, s.armed = reads, true
	s.paused, s.release = make(chan struct{}), make(chan struct{})
	return s.paused, sync.OnceFunc(func() { close(s.release) })
}

// pause pauses the calling operation if it is the armed one.
func (s *pausingStore) pause(read bool) {
	s.mu.Lock()
	if !s.armed || s.reads != read {
		s.mu.Unlock()
		return
	}
	s.armed = false
	paused, release := s.paused, s.release
	s.mu.Unlock()
	close(paused)
	<-release
}

func (s *pausingStore) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := s.Store.Get(ctx, key)
	s.pause(true)
	return v, err
}

func (s *pausingStore) GetMulti(ctx context.Context, keys []string) ([][]byte, error) {
	v, err := s.Store.GetMulti(ctx, keys)
	s.pause(true)
	return v, err
}

func (s *pausingStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	err := s.Store.Set(ctx, key, value, ttl)
	s.pause(false)
	return err
}

func (s *pausingStore) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	err := s.Store.Add(ctx, key, value, ttl)
	s.pause(false)
	return err
}

func (s *pausingStore) SetMulti(ctx context.Context, items []cache.Item) error {
	err := s.Store.SetMulti(ctx, items)
	s.pause(false)
	return err
}

func (s *pausingStore) CompareAndSwap(ctx context.Context, key string, value []byte, token cache.Token, ttl time.Duration) error {
	err := s.Store.CompareAndSwap(ctx, key, value, token, ttl)
	s.pause(false)
	return err
}

// invalidations is an Observer that reports the invalidations a Cache's
// local tier receives from others, by store key.
type invalidations chan string

func (o invalidations) Observe(_ context.Context, ev cache.Event) {
	if ev.Op == cache.OpInvalidationReceived {
		o <- ev.Key
	}
}

// await waits until the invalidation of key has been received.
func (o invalidations) await(t *testing.T, key string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case k := <-o:
			if k == key {
				return
			}
		case <-timeout:
			t.Fatalf("the invalidation of %s never arrived", key)
		}
	}
}

// racingCaches returns two Caches with local tiers over one memory store
// and its bus, in namespace "n": paused, whose store is p, and other. The
// invalidations paused receives arrive on inv.
func racingCaches(t *testing.T) (paused, other *cache.Cache[string, string], p *pausingStore, inv invalidations) {
	t.Helper()
	s := newStore(t)
	p = &pausingStore{Store: s}
	inv = make(invalidations, 16)
	paused = cache.New[string, string](p, &cache.Options[string, string]{Namespace: "n", Observer: inv, Local: &cache.LocalOptions{Bus: s}})
	t.Cleanup(func() { closeLocal(paused) })
	waitLocalOn(t, paused)
	other = localCache(t, s, s, cache.LocalOptions{})
	return paused, other, p, inv
}

// A fill that read the store before an invalidation of its key arrived is
// never installed: the caller whose read raced with the write may get the
// old value, but the next read goes to the store and gets the new one. The
// reader is paused after its store read until the other Cache has written
// and the invalidation has reached the reader's tier.
func TestLocalFillRacesInvalidation(t *testing.T) {
	for _, read := range []struct {
		name string
		run  func(ctx context.Context, c *cache.Cache[string, string]) (string, error)
	}{
		{"Get", func(ctx context.Context, c *cache.Cache[string, string]) (string, error) {
			v, _, err := c.Get(ctx, "k")
			return v, err
		}},
		{"GetMulti", func(ctx context.Context, c *cache.Cache[string, string]) (string, error) {
			m, err := c.GetMulti(ctx, []string{"k"})
			return m["k"], err
		}},
		{"Door.Load", func(ctx context.Context, c *cache.Cache[string, string]) (string, error) {
			e, err := c.Door().Load(ctx, "k", c.Key("k"))
			return e.Value, err
		}},
	} {
		t.Run(read.name, func(t *testing.T) {
			ctx := context.Background()
			reader, writer, p, inv := racingCaches(t)
			if err := p.Store.Set(ctx, "n:k", []byte("v1"), 0); err != nil {
				t.Fatal(err)
			}
			paused, release := p.arm(true)
			defer release()
			got := make(chan string, 1)
			go func() {
				v, err := read.run(ctx, reader)
				if err != nil {
					t.Error(err)
				}
				got <- v
			}()
			<-paused // the reader has read v1 and not yet installed it
			if err := writer.Set(ctx, "k", "v2"); err != nil {
				t.Fatal(err)
			}
			inv.await(t, "n:k")
			release()
			if v := <-got; v != "v1" && v != "v2" {
				t.Fatalf("the racing %s = %q; want v1 (what it read) or v2", read.name, v)
			}
			local := reader.Stats().LocalHits
			if v, _, err := reader.Get(ctx, "k"); err != nil || v != "v2" {
				t.Fatalf("Get after the racing %s = %q, %v; want v2: the fill that read v1 before the invalidation was installed", read.name, v, err)
			}
			if n := reader.Stats().LocalHits - local; n != 0 {
				t.Fatalf("Get after the racing %s: %d local hits; want a store read", read.name, n)
			}
		})
	}
}

// A writer keeps its own copy of what it wrote, unless an invalidation of
// the key arrived between its store write and the copy: another Cache
// wrote after it, and the store holds that newer value. The writer is
// paused after its store write until the other Cache has written and the
// invalidation has reached the writer's tier.
func TestLocalOwnCopyRacesInvalidation(t *testing.T) {
	for _, write := range []struct {
		name string
		run  func(ctx context.Context, c *cache.Cache[string, string]) error
	}{
		{"Set", func(ctx context.Context, c *cache.Cache[string, string]) error { return c.Set(ctx, "k", "v1") }},
		{"Add", func(ctx context.Context, c *cache.Cache[string, string]) error { return c.Add(ctx, "k", "v1") }},
		{"SetMulti", func(ctx context.Context, c *cache.Cache[string, string]) error {
			return c.SetMulti(ctx, map[string]string{"k": "v1"})
		}},
		{"CompareAndSwap", func(ctx context.Context, c *cache.Cache[string, string]) error {
			return c.CompareAndSwap(ctx, "k", "v1", cache.AbsentToken())
		}},
	} {
		t.Run(write.name, func(t *testing.T) {
			ctx := context.Background()
			writer, other, p, inv := racingCaches(t)
			paused, release := p.arm(false)
			defer release()
			done := make(chan error, 1)
			go func() { done <- write.run(ctx, writer) }()
			<-paused // v1 is in the store; the writer has not kept its copy yet
			if err := other.Set(ctx, "k", "v2"); err != nil {
				t.Fatal(err)
			}
			inv.await(t, "n:k")
			release()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if v, _, err := writer.Get(ctx, "k"); err != nil || v != "v2" {
				t.Fatalf("the writer's Get after its %s raced with a newer write = %q, %v; want the store's v2", write.name, v, err)
			}
		})
	}
}

// downBus is a bus whose connection fails as soon as a subscription is in
// place, before Subscribe returns; up restores it.
type downBus struct {
	*testBus
	mu     sync.Mutex
	states []func(bool)
}

func (b *downBus) Subscribe(ctx context.Context, channel string, handle func([]byte), state func(bool)) (func(), error) {
	stop, err := b.testBus.Subscribe(ctx, channel, handle, state)
	if err == nil {
		b.mu.Lock()
		b.states = append(b.states, state)
		b.mu.Unlock()
		state(false)
	}
	return stop, err
}

func (b *downBus) up() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, state := range b.states {
		state(true)
	}
}

// A bus that goes down before Subscribe returns keeps the tier off until
// it says it is connected again: a tier that turned on then would miss the
// invalidations of the outage, for as long as it lasts.
func TestLocalBusDownBeforeSubscribed(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	bus := &downBus{testBus: newTestBus()}
	c := cache.New[string, string](s, &cache.Options[string, string]{Namespace: "n", Local: &cache.LocalOptions{Bus: bus}})
	t.Cleanup(func() { closeLocal(c) })
	<-cache.LocalSubscribed(c)
	if cache.LocalOn(c) {
		t.Fatal("the local tier is on while its bus is down")
	}
	if err := s.Set(ctx, "n:k", []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	c.Get(ctx, "k")
	if n := c.Stats().LocalHits; n != 0 {
		t.Fatalf("local hits with the bus down: %d; want 0", n)
	}
	bus.up()
	if !cache.LocalOn(c) {
		t.Fatal("the local tier is off once its bus is up")
	}
}
