package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// cancelingStore is a store whose writes reach the inner store, then end
// the caller's context (cancel) and report it: what a client returns when
// the caller gives up after the command was sent, the server having
// applied it (the write may have landed: here it did).
type cancelingStore struct {
	cache.Store
	cancel context.CancelFunc
}

func (s *cancelingStore) landedThenCanceled(ctx context.Context, err error) error {
	if err != nil {
		return err
	}
	s.cancel()
	return errors.Join(cache.ErrUncertain, ctx.Err())
}

func (s *cancelingStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return s.landedThenCanceled(ctx, s.Store.Set(context.WithoutCancel(ctx), key, value, ttl))
}

func (s *cancelingStore) Delete(ctx context.Context, keys ...string) (int, error) {
	n, err := s.Store.Delete(context.WithoutCancel(ctx), keys...)
	return n, s.landedThenCanceled(ctx, err)
}

func (s *cancelingStore) Increment(ctx context.Context, key string, delta int64) (int64, error) {
	n, err := s.Store.Increment(context.WithoutCancel(ctx), key, delta)
	return n, s.landedThenCanceled(ctx, err)
}

// A write that may have landed (its caller's context ended while the
// store call was under way) must still make the other Caches drop the
// old value, or say that they may not have: an error matching
// ErrNotInvalidated. Here the write landed, the other Cache held the old
// value, and the write's invalidation was published on the caller's
// ended context: it never left, and the error did not say so.
func TestLocalWriteCanceledStillInvalidates(t *testing.T) {
	for _, op := range []struct {
		name string
		run  func(ctx context.Context, c *cache.Cache[string, string]) error
		want func(v string, found bool) bool
	}{
		{"Set", func(ctx context.Context, c *cache.Cache[string, string]) error { return c.Set(ctx, "k", "v2") },
			func(v string, found bool) bool { return found && v == "v2" }},
		{"Delete", func(ctx context.Context, c *cache.Cache[string, string]) error {
			_, err := c.Delete(ctx, "k")
			return err
		},
			func(v string, found bool) bool { return !found }},
		{"Increment", func(ctx context.Context, c *cache.Cache[string, string]) error {
			_, err := c.Increment(ctx, "k", 1)
			return err
		},
			func(v string, found bool) bool { return found && v == "2" }},
	} {
		t.Run(op.name, func(t *testing.T) {
			bg := context.Background()
			s := newStore(t)
			ctx, cancel := context.WithCancel(bg)
			defer cancel()
			cs := &cancelingStore{Store: s, cancel: cancel}
			writer := cache.New[string, string](cs, &cache.Options[string, string]{Namespace: "n", Local: &cache.LocalOptions{Bus: s}})
			t.Cleanup(func() { closeLocal(writer) })
			waitLocalOn(t, writer)
			other := localCache(t, s, s, cache.LocalOptions{})
			if err := s.Set(bg, "n:k", []byte("1"), 0); err != nil {
				t.Fatal(err)
			}
			other.Get(bg, "k")
			if v, _, _ := other.Get(bg, "k"); v != "1" || other.Stats().LocalHits != 1 {
				t.Fatalf("the other Cache does not hold the old value locally: %q, %d local hits", v, other.Stats().LocalHits)
			}

			err := op.run(ctx, writer)
			if err == nil {
				t.Fatalf("%s whose context ended: nil error", op.name)
			}
			notInvalidated := errors.Is(err, cache.ErrNotInvalidated)
			deadline := time.Now().Add(time.Second)
			for {
				v, found, gerr := other.Get(bg, "k")
				if gerr != nil {
					t.Fatal(gerr)
				}
				if op.want(v, found) {
					return
				}
				if time.Now().After(deadline) {
					if notInvalidated {
						return // the caller was told
					}
					t.Fatalf("%s landed (its context ended during the store call: %v); a second later the other Cache still serves the old %q (found %v), and the error does not match ErrNotInvalidated", op.name, err, v, found)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// With a Clone hook, callers may change the values they handle: so may a
// writer change the value it gave to Set once Set has returned. The
// writer's own local copy must be one of its own, or the tier serves a
// value that was never written (the store holds "a").
func TestLocalCloneOwnCopy(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := cloningCache(t, s)
	for _, op := range []struct {
		name  string
		write func(v []string) error
	}{
		{"Set", func(v []string) error { return c.Set(ctx, "k", v) }},
		{"SetMulti", func(v []string) error { return c.SetMulti(ctx, map[string][]string{"k": v}) }},
		{"CompareAndSwap", func(v []string) error {
			_, _, tok, err := c.Gets(ctx, "k")
			if err != nil {
				return err
			}
			return c.CompareAndSwap(ctx, "k", v, tok)
		}},
	} {
		v := []string{"a"}
		if err := op.write(v); err != nil {
			t.Fatal(err)
		}
		v[0] = "changed after " + op.name
		got, _, err := c.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != "a" {
			t.Fatalf("after %s, the writer changed its slice; Get = %q (local hits %d); the store holds \"a\"", op.name, got, c.Stats().LocalHits)
		}
	}
}

// With a Clone hook, the value a read returns after filling the tier from
// the store is the caller's to change: the tier must keep another.
func TestLocalCloneFill(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := cache.New[string, []string](s, &cache.Options[string, []string]{Namespace: "n", Local: &cache.LocalOptions{
		Bus:   newTestBus(),
		Clone: func(v any) any { return append([]string(nil), v.([]string)...) },
	}})
	t.Cleanup(func() { cache.CloseLocal(c) })
	for !cache.LocalOn(c) {
		time.Sleep(time.Millisecond)
	}
	plain := cache.New[string, []string](s, &cache.Options[string, []string]{Namespace: "n"}) // no local tier: writes only the store
	for _, op := range []struct {
		name string
		read func() ([]string, error)
	}{
		{"Get", func() ([]string, error) { v, _, err := c.Get(ctx, "k"); return v, err }},
		{"GetMulti", func() ([]string, error) { m, err := c.GetMulti(ctx, []string{"k"}); return m["k"], err }},
		{"Door.Load", func() ([]string, error) { e, err := c.Door().Load(ctx, "k", c.Key("k")); return e.Value, err }},
	} {
		if err := plain.Set(ctx, "k", []string{"a"}); err != nil {
			t.Fatal(err)
		}
		v, err := op.read()
		if err != nil || len(v) != 1 {
			t.Fatalf("%s = %q, %v", op.name, v, err)
		}
		v[0] = "changed after " + op.name
		got, _, err := c.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != "a" {
			t.Fatalf("the caller changed what %s returned from the store; Get = %q; the store holds \"a\"", op.name, got)
		}
		if _, err := c.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
}
