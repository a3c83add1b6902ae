package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// newRing returns a Ring over two private servers and their clients.
func newRing(t *testing.T) (*redis.Ring, []*redis.Client) {
	t.Helper()
	a, b := testenv.StartRedis(t), testenv.StartRedis(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": a.Addr(), "b": b.Addr()}})
	t.Cleanup(func() { _ = ring.Close() })
	direct := []*redis.Client{
		redis.NewClient(&redis.Options{Addr: a.Addr()}),
		redis.NewClient(&redis.Options{Addr: b.Addr()}),
	}
	for _, c := range direct {
		t.Cleanup(func() { _ = c.Close() })
	}
	return ring, direct
}

// TestRing runs the multi-key operations, Clear and Watch over a Ring,
// with keys on both shards.
func TestRing(t *testing.T) {
	ring, direct := newRing(t)
	store := newStore(t, ring)
	other := newStore(t, ring)
	ctx := t.Context()

	keys := make([]string, 40)
	items := make([]cache.Item, len(keys))
	for i := range keys {
		keys[i] = "p:" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		items[i] = cache.Item{Key: keys[i], Value: []byte(keys[i]), TTL: time.Minute}
	}
	if err := store.SetMulti(ctx, items); err != nil {
		t.Fatalf("SetMulti: %v", err)
	}
	for i, c := range direct {
		if n, err := c.DBSize(ctx).Result(); err != nil || n == 0 {
			t.Fatalf("shard %d holds %d keys (%v); want keys on both shards", i, n, err)
		}
	}
	vals, err := store.GetMulti(ctx, append(keys, "p:missing"))
	if err != nil {
		t.Fatalf("GetMulti: %v", err)
	}
	for i, k := range keys {
		if string(vals[i]) != k {
			t.Errorf("GetMulti[%d] (%q): got %q; want %q", i, k, vals[i], k)
		}
	}
	if vals[len(keys)] != nil {
		t.Errorf("GetMulti of a missing key: got %q; want nil", vals[len(keys)])
	}
	if n, err := store.Delete(ctx, keys[:10]...); err != nil || n != 10 {
		t.Errorf("Delete of 10 keys: got %d, %v; want 10", n, err)
	}

	// A release on either shard reaches a watcher of another store.
	for _, k := range keys[10:20] {
		ch, stop, err := other.Watch(ctx, k)
		if err != nil {
			t.Fatalf("Watch(%q): %v", k, err)
		}
		if ok, err := store.DeleteIfEqual(ctx, k, []byte(k)); err != nil || !ok {
			t.Fatalf("DeleteIfEqual(%q): got %v, %v; want true", k, ok, err)
		}
		select {
		case <-ch:
		case <-time.After(bound):
			t.Errorf("the watcher of %q was not woken by its release", k)
		}
		stop()
	}

	if _, err := store.AddFenced(ctx, "p:lock", []byte("t"), time.Minute); err != nil {
		t.Errorf("AddFenced: %v", err)
	}
	if err := store.Set(ctx, "q:keep", []byte("k"), 0); err != nil {
		t.Fatal(err)
	}
	if err := store.Clear(ctx, "p:"); err != nil {
		t.Fatalf("Clear(\"p:\"): %v", err)
	}
	for i, c := range direct {
		left, err := c.Keys(ctx, "p:*").Result()
		if err != nil || len(left) != 0 {
			t.Errorf("shard %d after Clear: keys %q left (%v); want none", i, left, err)
		}
	}
	if ok, _ := store.Exists(ctx, "q:keep"); !ok {
		t.Errorf("Clear(\"p:\") deleted q:keep")
	}
	if err := store.Clear(context.Background(), ""); err != nil {
		t.Fatalf("Clear(\"\"): %v", err)
	}
	for i, c := range direct {
		if n, err := c.DBSize(ctx).Result(); err != nil || n != 0 {
			t.Errorf("shard %d after Clear(\"\"): %d keys (%v); want 0", i, n, err)
		}
	}
}
