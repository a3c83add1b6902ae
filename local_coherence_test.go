package typedcache_test

// The local tier's coherence (cache.Options.Local): a writer changes keys
// that a reader holds in its local tier, by every kind of write, and the
// reader must stop serving the old value. Across two processes on Redis
// and on the Cluster (the reader is a child process), and between two
// Caches of one process on memory (memstore's in-process bus) and on
// memcached with a Redis bus.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/lock"
	"github.com/typedcache/typedcache/memo"
)

// changeBound bounds a reader's wait for a change it must see. It is not
// a speed target (invalidations arrive in about a millisecond): it only
// ends a test whose reader would otherwise wait for the local TTL.
const changeBound = 10 * time.Second

// localCache returns a Cache of int64 versions with a local tier over s
// in namespace ns, closed when the test ends. bus nil means the store's.
func localCache(t testing.TB, s cache.Store, ns string, lo cache.LocalOptions) *cache.Cache[string, int64] {
	t.Helper()
	c := cache.New[string, int64](s, &cache.Options[string, int64]{Namespace: ns, Local: &lo})
	t.Cleanup(func() { c.Close() })
	return c
}

// writer is what a coherence step writes through: a Cache, and a Memo
// over it whose function returns version.
type writer struct {
	c       *cache.Cache[string, int64]
	m       *memo.Memo[string, int64]
	version atomic.Int64
}

func newWriter(t testing.TB, c *cache.Cache[string, int64]) *writer {
	w := &writer{c: c}
	w.m = memo.Func(c, func(context.Context, string) (int64, error) { return w.version.Load(), nil }, nil)
	t.Cleanup(w.m.Close)
	return w
}

// What a reader must see after a step's write.
const (
	afterMiss    = 0  // the keys are gone
	afterDropped = -1 // the local copy is dropped: the next read goes to the store (the value is unchanged)
)

// coherenceStep is one change of keys that hold version 1 (after setup)
// in the reader's local tier: after write, the reader must see version
// after (> 1), a miss, or a store read.
type coherenceStep struct {
	name  string
	keys  int // the step's keys: "<step>-0", "<step>-1"...
	setup func(ctx context.Context, w *writer, keys []string) error
	write func(ctx context.Context, w *writer, keys []string) error
	after int64
	// check, when set, runs in the writer after write: what the writer's
	// own tier serves.
	check func(ctx context.Context, w *writer, keys []string) error
	clear bool // Clear of a namespace: not on Memcached
}

func setAll(v int64) func(ctx context.Context, w *writer, keys []string) error {
	return func(ctx context.Context, w *writer, keys []string) error {
		for _, k := range keys {
			if err := w.c.Set(ctx, k, v); err != nil {
				return err
			}
		}
		return nil
	}
}

var coherenceSteps = []coherenceStep{
	{name: "Set", keys: 1, setup: setAll(1), write: setAll(2), after: 2},
	{name: "Delete", keys: 1, setup: setAll(1), after: afterMiss,
		write: func(ctx context.Context, w *writer, keys []string) error {
			_, err := w.c.Delete(ctx, keys...)
			return err
		}},
	{name: "SetMulti", keys: 3, setup: setAll(1), after: 2,
		write: func(ctx context.Context, w *writer, keys []string) error {
			m := make(map[string]int64)
			for _, k := range keys {
				m[k] = 2
			}
			return w.c.SetMulti(ctx, m)
		}},
	{name: "Increment", keys: 1, setup: setAll(1), after: 2,
		write: func(ctx context.Context, w *writer, keys []string) error {
			_, err := w.c.Increment(ctx, keys[0], 1)
			return err
		}},
	{name: "Expire", keys: 1, setup: setAll(1), after: afterDropped,
		write: func(ctx context.Context, w *writer, keys []string) error {
			_, err := w.c.Expire(ctx, keys[0], time.Hour)
			return err
		}},
	{name: "Clear", keys: 2, setup: setAll(1), after: afterMiss, clear: true,
		write: func(ctx context.Context, w *writer, keys []string) error { return w.c.Clear(ctx) }},
	{name: "lock.Update", keys: 1, setup: setAll(1), after: 2,
		write: func(ctx context.Context, w *writer, keys []string) error {
			_, err := lock.Update(ctx, w.c, keys[0], func(old int64, found bool) (int64, error) {
				if !found {
					return 0, errors.New("lock.Update found no value")
				}
				return old + 1, nil
			}, nil)
			return err
		}},
	{name: "memo.Invalidate", keys: 1, setup: setAll(1), after: afterMiss,
		write: func(ctx context.Context, w *writer, keys []string) error { return w.m.Invalidate(ctx, keys...) }},
	{name: "memo.Refresh", keys: 1, after: 2,
		setup: func(ctx context.Context, w *writer, keys []string) error {
			w.version.Store(1)
			_, err := w.m.Get(ctx, keys[0]) // computed: 1
			return err
		},
		write: func(ctx context.Context, w *writer, keys []string) error {
			w.version.Store(2)
			v, err := w.m.Refresh(ctx, keys[0])
			if err == nil && v != 2 {
				err = fmt.Errorf("memo Refresh = %d; want 2", v)
			}
			return err
		}},
	{name: "WithTTL", keys: 1, setup: setAll(1), after: 2,
		write: func(ctx context.Context, w *writer, keys []string) error {
			return w.c.WithTTL(time.Hour).Set(ctx, keys[0], 2)
		},
		// The view shares its parent's tier: the parent's own copy of
		// version 1 (kept by setup's Set) is gone.
		check: func(ctx context.Context, w *writer, keys []string) error {
			if v, _, err := w.c.Get(ctx, keys[0]); err != nil || v != 2 {
				return fmt.Errorf("the parent's Get after a Set through its view = %d, %v; want 2", v, err)
			}
			return nil
		}},
}

// stepsFor returns the steps that backend supports.
func stepsFor(backend string) []coherenceStep {
	var out []coherenceStep
	for _, s := range coherenceSteps {
		if s.clear && backend == "memcached" {
			continue // memcached cannot clear a namespace
		}
		out = append(out, s)
	}
	return out
}

func (s *coherenceStep) keyNames(i int) []string {
	keys := make([]string, s.keys)
	for j := range keys {
		keys[j] = strconv.Itoa(i) + "-" + strconv.Itoa(j)
	}
	return keys
}

// rendezvous is where the writer and the reader wait for each other. A
// side that fails signals "abort", which ends the other's waits.
type rendezvous interface {
	signal(ctx context.Context, name string) error
	await(ctx context.Context, name string) error
}

var errAborted = errors.New("the other side failed")

// chanRendezvous is a rendezvous in one process.
type chanRendezvous struct {
	mu    sync.Mutex
	chans map[string]chan struct{}
}

func (r *chanRendezvous) ch(name string) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.chans == nil {
		r.chans = make(map[string]chan struct{})
	}
	c := r.chans[name]
	if c == nil {
		c = make(chan struct{})
		r.chans[name] = c
	}
	return c
}

func (r *chanRendezvous) signal(_ context.Context, name string) error {
	c := r.ch(name)
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-c:
	default:
		close(c)
	}
	return nil
}

func (r *chanRendezvous) await(ctx context.Context, name string) error {
	select {
	case <-r.ch(name):
		return nil
	case <-r.ch("abort"):
		return errAborted
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s: %w", name, ctx.Err())
	}
}

// storeRendezvous is a rendezvous between processes: keys of a Cache
// without a local tier.
type storeRendezvous struct{ c *cache.Cache[string, int64] }

func (r storeRendezvous) signal(ctx context.Context, name string) error {
	return r.c.Set(ctx, name, 1)
}

func (r storeRendezvous) await(ctx context.Context, name string) error {
	for {
		if _, found, err := r.c.Get(ctx, name); err != nil || found {
			return err
		}
		if _, found, _ := r.c.Get(ctx, "abort"); found {
			return errAborted
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", name, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// runWriter sets up and writes each step once the reader holds its keys,
// and waits for the reader to have seen the change.
func runWriter(ctx context.Context, w *writer, r rendezvous, steps []coherenceStep) (err error) {
	defer func() {
		if err != nil && !errors.Is(err, errAborted) {
			r.signal(context.WithoutCancel(ctx), "abort")
		}
	}()
	for i, s := range steps {
		keys := s.keyNames(i)
		if err := s.setup(ctx, w, keys); err != nil {
			return fmt.Errorf("%s: setup: %w", s.name, err)
		}
		if err := r.signal(ctx, "setup:"+strconv.Itoa(i)); err != nil {
			return err
		}
		if err := r.await(ctx, "ready:"+strconv.Itoa(i)); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if err := s.write(ctx, w, keys); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if s.check != nil {
			if err := s.check(ctx, w, keys); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
		if err := r.await(ctx, "done:"+strconv.Itoa(i)); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// localRead reads k and reports whether the local tier answered.
func localRead(ctx context.Context, c *cache.Cache[string, int64], k string) (v int64, found, local bool, err error) {
	before := c.Stats().LocalHits
	v, found, err = c.Get(ctx, k)
	return v, found, c.Stats().LocalHits > before, err
}

// runReader, for each step, reads the keys until its local tier serves
// version 1, lets the writer write, then reads until it sees the change,
// bounded by changeBound, and checks that it never sees the old version
// again.
func runReader(ctx context.Context, c *cache.Cache[string, int64], r rendezvous, steps []coherenceStep) (err error) {
	defer func() {
		if err != nil && !errors.Is(err, errAborted) {
			r.signal(context.WithoutCancel(ctx), "abort")
		}
	}()
	for i, s := range steps {
		if err := r.await(ctx, "setup:"+strconv.Itoa(i)); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		keys := s.keyNames(i)
		for _, k := range keys {
			if err := readUntil(ctx, c, k, "the local tier serves 1", func(v int64, found, local bool) (bool, error) {
				return found && v == 1 && local, nil
			}); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
		if err := r.signal(ctx, "ready:"+strconv.Itoa(i)); err != nil {
			return err
		}
		for _, k := range keys {
			if err := awaitChange(ctx, c, k, s.after); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
		if err := r.signal(ctx, "done:"+strconv.Itoa(i)); err != nil {
			return err
		}
	}
	return nil
}

// readUntil reads k until done says so, bounded by changeBound.
func readUntil(ctx context.Context, c *cache.Cache[string, int64], k, what string, done func(v int64, found, local bool) (bool, error)) error {
	deadline := time.Now().Add(changeBound)
	for {
		v, found, local, err := localRead(ctx, c, k)
		if err != nil {
			return err
		}
		ok, err := done(v, found, local)
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: still %d (found %v, local %v) after %v; want %s", k, v, found, local, changeBound, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// awaitChange reads k, which held version 1, until the change after (a
// version, afterMiss or afterDropped) shows, then reads it some more: no
// read returns the old version once the new one was seen, nor anything
// else.
func awaitChange(ctx context.Context, c *cache.Cache[string, int64], k string, after int64) error {
	// seen reports whether a read shows the change; any read that is
	// neither the old version nor the change is an error.
	seen := func(v int64, found, local bool) (bool, error) {
		switch {
		case after == afterDropped && found && v != 1:
			return false, fmt.Errorf("%s = %d; want 1, unchanged", k, v)
		case after == afterDropped:
			return !local, nil
		case found && v == 1:
			return false, nil // the old version, not yet invalidated
		case after == afterMiss && !found, after > 0 && found && v == after:
			return true, nil
		}
		return false, fmt.Errorf("%s = %d (found %v); want 1 until it changes to %d (0: a miss)", k, v, found, after)
	}
	want := "the change to " + strconv.FormatInt(after, 10)
	if after == afterDropped {
		want = "a read from the store (the local copy dropped)"
	}
	if err := readUntil(ctx, c, k, want, seen); err != nil {
		return err
	}
	for range 20 {
		v, found, _, err := localRead(ctx, c, k)
		if err != nil {
			return err
		}
		switch {
		case after > 0 && (!found || v != after):
			return fmt.Errorf("%s = %d (found %v) after %d was seen; want %d", k, v, found, after, after)
		case after == afterMiss && found:
			return fmt.Errorf("%s = %d after the miss was seen; want a miss", k, v)
		case after == afterDropped && found && v != 1:
			return fmt.Errorf("%s = %d; want 1, unchanged", k, v)
		}
	}
	return nil
}

// TestLocalCoherenceChild is the reader of TestLocalCoherenceAcrossProcesses,
// in a child process; it does nothing when run as an ordinary test.
func TestLocalCoherenceChild(t *testing.T) {
	_, b, ns := teststores.Child(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := b.New(t)
	ctl := cache.New[string, int64](s, &cache.Options[string, int64]{Namespace: ns + "-ctl"})
	if err := runReader(ctx, localCache(t, s, ns, cache.LocalOptions{}), storeRendezvous{ctl}, stepsFor(b.Name)); err != nil {
		t.Fatal(err)
	}
}

// A write in one process, of every kind, stops the local copies of
// another process from serving the old value, on Redis (pub/sub) and on
// the Cluster (sharded pub/sub).
func TestLocalCoherenceAcrossProcesses(t *testing.T) {
	for _, name := range []string{"redis", "cluster"} {
		t.Run(name, func(t *testing.T) {
			b := teststores.Get(t, name)
			s := b.New(t)
			ns := teststores.Namespace("lcoh")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ctl := cache.New[string, int64](s, &cache.Options[string, int64]{Namespace: ns + "-ctl"})
			wait := teststores.StartChildren(t, 1, "TestLocalCoherenceChild", "reader", b, ns)
			w := newWriter(t, localCache(t, s, ns, cache.LocalOptions{}))
			if err := runWriter(ctx, w, storeRendezvous{ctl}, stepsFor(name)); err != nil {
				t.Error(err)
			}
			wait()
		})
	}
}

// The same between two Caches of one process, each with its own store
// client: on memory, over one store and its in-process bus; on memcached,
// with a Redis bus (LocalOptions.Bus).
func TestLocalCoherenceInProcess(t *testing.T) {
	for _, name := range []string{"memory", "memcached"} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ns := teststores.Namespace("lcoh")
			var a, b *cache.Cache[string, int64]
			switch name {
			case "memory":
				s := teststores.Get(t, "memory").New(t)
				a = localCache(t, s, ns, cache.LocalOptions{})
				b = localCache(t, s, ns, cache.LocalOptions{})
			case "memcached":
				mc, rs := teststores.Get(t, "memcached"), teststores.Get(t, "redis")
				a = localCache(t, mc.New(t), ns, cache.LocalOptions{Bus: rs.New(t).(cache.Bus)})
				b = localCache(t, mc.New(t), ns, cache.LocalOptions{Bus: rs.New(t).(cache.Bus)})
			}
			var r chanRendezvous
			werr := make(chan error, 1)
			w := newWriter(t, a)
			go func() { werr <- runWriter(ctx, w, &r, stepsFor(name)) }()
			if err := runReader(ctx, b, &r, stepsFor(name)); err != nil {
				t.Error(err)
			}
			if err := <-werr; err != nil {
				t.Error(err)
			}
		})
	}
}

// Two namespaces over one store do not interfere: a write and a Clear in
// one leave the other's local copies in place, and the two tiers stay
// coherent each on its own.
func TestLocalNamespaces(t *testing.T) {
	for _, name := range []string{"memory", "redis"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := teststores.Get(t, name)
			one, two := teststores.Namespace("lns"), teststores.Namespace("lns")
			sw, sr := b.New(t), b.New(t)
			if !b.Shared {
				sr = sw // memory: one store, its bus in-process
			}
			w1, w2 := localCache(t, sw, one, cache.LocalOptions{}), localCache(t, sw, two, cache.LocalOptions{})
			r1, r2 := localCache(t, sr, one, cache.LocalOptions{}), localCache(t, sr, two, cache.LocalOptions{})
			for _, w := range []*cache.Cache[string, int64]{w1, w2} {
				if err := w.Set(ctx, "k", 1); err != nil {
					t.Fatal(err)
				}
			}
			held(t, r1, "k", 1)
			held(t, r2, "k", 1)

			if err := w1.Set(ctx, "k", 2); err != nil {
				t.Fatal(err)
			}
			if err := awaitChange(ctx, r1, "k", 2); err != nil {
				t.Fatal(err)
			}
			if v, found, local, err := localRead(ctx, r2, "k"); err != nil || !found || v != 1 || !local {
				t.Fatalf("%s:k after a write of %s:k = %d (found %v, local %v), %v; want 1 from the local tier", two, one, v, found, local, err)
			}

			if err := w1.Clear(ctx); err != nil {
				t.Fatal(err)
			}
			if err := readUntil(ctx, r1, "k", "a miss", func(_ int64, found, _ bool) (bool, error) { return !found, nil }); err != nil {
				t.Fatal(err)
			}
			if v, found, local, err := localRead(ctx, r2, "k"); err != nil || !found || v != 1 || !local {
				t.Fatalf("%s:k after a Clear of %s = %d (found %v, local %v), %v; want 1 from the local tier", two, one, v, found, local, err)
			}

			if err := w2.Set(ctx, "k", 3); err != nil {
				t.Fatal(err)
			}
			if err := awaitChange(ctx, r2, "k", 3); err != nil {
				t.Fatal(err)
			}
			if _, found, err := r1.Get(ctx, "k"); err != nil || found {
				t.Fatalf("%s:k after a write of %s:k: found %v, %v; want a miss", one, two, found, err)
			}
		})
	}
}
