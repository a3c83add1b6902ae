package redisstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// target is a Redis deployment a test runs against.
type target struct {
	name      string
	client    func(t *testing.T) redis.UniversalClient // a new client, closed when t ends
	exclusive bool                                     // no other test uses it
	miniredis bool
}

// targets are miniredis, a private redis-server and the shared Cluster.
func targets() []target {
	return []target{
		{name: "miniredis", exclusive: true, miniredis: true, client: func(t *testing.T) redis.UniversalClient {
			return newClient(t, singleClient(runMiniredis(t).Addr()))
		}},
		{name: "redis", exclusive: true, client: func(t *testing.T) redis.UniversalClient {
			return newClient(t, singleClient(testenv.StartRedis(t).Addr()))
		}},
		{name: "cluster", client: func(t *testing.T) redis.UniversalClient {
			return newClient(t, clusterClient(testenv.RedisClusterAddrs(t)))
		}},
	}
}

func newClient(t *testing.T, mk func() redis.UniversalClient) redis.UniversalClient {
	t.Helper()
	c := mk()
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newStore returns a store over c, closed when t ends.
func newStore(t *testing.T, c redis.UniversalClient) *redisstore.Store {
	t.Helper()
	s := redisstore.New(c, nil)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// uniquePrefix returns a key prefix no other run uses.
func uniquePrefix(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "redisstore-test:" + hex.EncodeToString(b[:]) + ":"
}

// TestClearGlobNamespace clears a namespace full of glob characters and
// checks that exactly its keys are gone.
func TestClearGlobNamespace(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.name, func(t *testing.T) {
			client := tg.client(t)
			store := newStore(t, client)
			ctx := t.Context()
			base := ""
			if !tg.exclusive {
				base = uniquePrefix(t)
				t.Cleanup(func() { _ = store.Clear(context.Background(), base) })
			}
			ns := base + `a*[b]?\`
			c := cache.New[string, string](store, &cache.Options[string, string]{Namespace: ns})
			for _, k := range []string{"k1", "k2", "*", "x*y"} {
				if err := c.Set(ctx, k, "v"); err != nil {
					t.Fatal(err)
				}
			}
			// Keys that the unescaped pattern `a*[b]?\:*` matches, or
			// that share a shorter prefix, and must survive.
			decoys := []string{
				base + `axbz:k`,
				base + `ab?:k`,
				base + `a*[b]?:k`,
				base + `a*[b]?\x:k`,
				base + `a*[b]?\`,
				base + `a*[b]?`,
				base + `A*[b]?\:k`,
			}
			for _, k := range decoys {
				if err := store.Set(ctx, k, []byte("d"), 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Clear(ctx); err != nil {
				t.Fatalf("Clear: %v", err)
			}
			for _, k := range []string{"k1", "k2", "*", "x*y"} {
				if ok, err := c.Exists(ctx, k); err != nil || ok {
					t.Errorf("Exists(%q) after Clear: got %v, %v; want false, nil", c.Key(k), ok, err)
				}
			}
			for _, k := range decoys {
				if ok, err := store.Exists(ctx, k); err != nil || !ok {
					t.Errorf("Exists(%q) after Clear of %q: got %v, %v; want true, nil", k, ns, ok, err)
				}
			}
			if tg.exclusive {
				if n, err := client.DBSize(ctx).Result(); err != nil || n != int64(len(decoys)) {
					t.Errorf("DBSIZE after Clear: got %d, %v; want %d", n, err, len(decoys))
				}
			}

			// "a*b" is not a pattern.
			for _, k := range []string{"a*b1", "axb1"} {
				if err := store.Set(ctx, base+k, []byte("v"), 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := store.Clear(ctx, base+"a*b"); err != nil {
				t.Fatal(err)
			}
			if ok, _ := store.Exists(ctx, base+"a*b1"); ok {
				t.Errorf("%q survived Clear(%q)", base+"a*b1", base+"a*b")
			}
			if ok, _ := store.Exists(ctx, base+"axb1"); !ok {
				t.Errorf("%q deleted by Clear(%q)", base+"axb1", base+"a*b")
			}
		})
	}
}

// TestLargeValue stores and reads an 8 MiB value.
func TestLargeValue(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.name, func(t *testing.T) {
			store := newStore(t, tg.client(t))
			ctx := t.Context()
			key := uniquePrefix(t) + "big"
			t.Cleanup(func() { _, _ = store.Delete(context.Background(), key) })
			value := make([]byte, 8<<20)
			_, _ = rand.Read(value)
			if err := store.Set(ctx, key, value, time.Minute); err != nil {
				t.Fatalf("Set 8 MiB: %v", err)
			}
			got, err := store.Get(ctx, key)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !bytes.Equal(got, value) {
				t.Fatalf("Get: got %d bytes, not the %d written", len(got), len(value))
			}
			vals, err := store.GetMulti(ctx, []string{key})
			if err != nil || len(vals) != 1 || !bytes.Equal(vals[0], value) {
				t.Fatalf("GetMulti: got %d values, %v; want the 8 MiB value", len(vals), err)
			}
		})
	}
}

// TestBinaryKeys uses keys that are not text.
func TestBinaryKeys(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.name, func(t *testing.T) {
			store := newStore(t, tg.client(t))
			ctx := t.Context()
			prefix := uniquePrefix(t) + "\x00\xff"
			if tg.miniredis {
				// miniredis turns a SCAN MATCH pattern into a Go regexp,
				// which panics on bytes that are not UTF-8.
				prefix = uniquePrefix(t) + "\x00\x01"
			}
			names := []string{"\x00", "\xff\xfe\xfd", "a\r\nb", "k\x00v", " ", "\xc3\x28", "{\x00}x", "*"}
			keys := make([]string, len(names))
			for i, n := range names {
				keys[i] = prefix + n
				if err := store.Set(ctx, keys[i], []byte(n), 0); err != nil {
					t.Fatalf("Set(%q): %v", keys[i], err)
				}
			}
			// A key that differs only after a NUL byte must not be touched.
			outside := prefix[:len(prefix)-1] + "\x02"
			if err := store.Set(ctx, outside, []byte("o"), 0); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = store.Delete(context.Background(), outside) })
			for i, k := range keys {
				got, err := store.Get(ctx, k)
				if err != nil || string(got) != names[i] {
					t.Errorf("Get(%q): got %q, %v; want %q", k, got, err, names[i])
				}
			}
			vals, err := store.GetMulti(ctx, keys)
			if err != nil {
				t.Fatal(err)
			}
			for i := range keys {
				if string(vals[i]) != names[i] {
					t.Errorf("GetMulti[%d] (%q): got %q; want %q", i, keys[i], vals[i], names[i])
				}
			}
			if ok, err := store.DeleteIfEqual(ctx, keys[0], []byte(names[0])); err != nil || !ok {
				t.Errorf("DeleteIfEqual(%q): got %v, %v; want true", keys[0], ok, err)
			}
			if _, err := store.AddFenced(ctx, keys[0], []byte("\x00"), time.Minute); err != nil {
				t.Errorf("AddFenced(%q): %v", keys[0], err)
			}
			if err := store.Clear(ctx, prefix); err != nil {
				t.Fatalf("Clear(%q): %v", prefix, err)
			}
			vals, err = store.GetMulti(ctx, keys)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if v != nil {
					t.Errorf("after Clear: %q still holds %q", keys[i], v)
				}
			}
			if got, err := store.Get(ctx, outside); err != nil || string(got) != "o" {
				t.Errorf("Get(%q) after Clear(%q): got %q, %v; want \"o\"", outside, prefix, got, err)
			}
		})
	}
}

// TestIncrementErrors checks the mapping of Redis's INCRBY errors.
func TestIncrementErrors(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.name, func(t *testing.T) {
			store := newStore(t, tg.client(t))
			ctx := t.Context()
			prefix := uniquePrefix(t)
			t.Cleanup(func() { _ = store.Clear(context.Background(), prefix) })
			tests := []struct {
				name  string
				value string
				delta int64
			}{
				{"text", "abc", 1},
				{"float", "1.5", 1},
				{"overflow", "9223372036854775807", 1},
				{"underflow", "-9223372036854775808", -1},
			}
			for _, tt := range tests {
				key := prefix + tt.name
				if err := store.Set(ctx, key, []byte(tt.value), 0); err != nil {
					t.Fatal(err)
				}
				_, err := store.Increment(ctx, key, tt.delta)
				if !errors.Is(err, cache.ErrNotInteger) {
					t.Errorf("Increment(%q holding %q, %d): got %v; want ErrNotInteger", key, tt.value, tt.delta, err)
				}
				if got, _ := store.Get(ctx, key); string(got) != tt.value {
					t.Errorf("after a failed Increment, %q holds %q; want %q", key, got, tt.value)
				}
			}
		})
	}
}

// TestSubMillisecondTTL checks that a positive ttl below Redis's
// resolution is a ttl, not "no expiry".
func TestSubMillisecondTTL(t *testing.T) {
	srv := testenv.StartRedis(t)
	store := newStore(t, newClient(t, singleClient(srv.Addr())))
	ctx := t.Context()
	for _, op := range []string{"Set", "Add", "Expire", "CompareAndSwap", "ExtendIfEqual"} {
		key := "k-" + op
		var err error
		switch op {
		case "Set":
			err = store.Set(ctx, key, []byte("v"), time.Microsecond)
		case "Add":
			err = store.Add(ctx, key, []byte("v"), time.Microsecond)
		case "Expire":
			if err = store.Set(ctx, key, []byte("v"), 0); err == nil {
				_, err = store.Expire(ctx, key, time.Nanosecond)
			}
		case "CompareAndSwap":
			err = store.CompareAndSwap(ctx, key, []byte("v"), cache.AbsentToken(), time.Microsecond)
		case "ExtendIfEqual":
			if err = store.Set(ctx, key, []byte("v"), 0); err == nil {
				_, err = store.ExtendIfEqual(ctx, key, []byte("v"), time.Microsecond)
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		// The key expires after 1ms; wait until it is gone, bounded.
		deadline := time.Now().Add(5 * time.Second)
		for {
			ttl, err := store.TTL(ctx, key)
			if errors.Is(err, cache.ErrNotFound) {
				break
			}
			if err != nil {
				t.Fatalf("%s: TTL: %v", op, err)
			}
			if ttl == cache.NoExpiration {
				t.Fatalf("%s with a 1µs ttl: the key has no expiry", op)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s with a 1µs ttl: the key still exists after 5s (ttl %v)", op, ttl)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// TestClose checks that Close wakes the watchers, refuses new watches and
// leaves the client open.
func TestClose(t *testing.T) {
	client := newClient(t, singleClient(runMiniredis(t).Addr()))
	store := redisstore.New(client, nil)
	ctx := t.Context()
	ch, stop, err := store.Watch(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-ch:
	case <-time.After(bound):
		t.Errorf("Close did not wake the watcher within %v", bound)
	}
	stop() // after Close: must not block or panic
	if _, _, err := store.Watch(ctx, "k"); !errors.Is(err, cache.ErrClosed) {
		t.Errorf("Watch after Close: got %v; want ErrClosed", err)
	}
	if err := client.Ping(ctx).Err(); err != nil {
		t.Errorf("client Ping after the store's Close: %v; want the client still open", err)
	}
	if err := store.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Errorf("Set after Close: %v; want the client's operations to keep working", err)
	}
	if err := store.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestGetsTokenIsACopy checks that changing the value returned by Gets
// does not change its token.
func TestGetsTokenIsACopy(t *testing.T) {
	store := newStore(t, newClient(t, singleClient(runMiniredis(t).Addr())))
	ctx := t.Context()
	if err := store.Set(ctx, "k", []byte("abc"), 0); err != nil {
		t.Fatal(err)
	}
	v, tok, err := store.Gets(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	v[0] = 'X'
	if err := store.CompareAndSwap(ctx, "k", []byte("new"), tok, 0); err != nil {
		t.Errorf("CompareAndSwap after changing the value Gets returned: %v; want nil", err)
	}
}

// wrappedClient is a UniversalClient of the user's making: the store does
// not recognise its type.
type wrappedClient struct{ *redis.Client }

// TestUnknownClient runs a store over a client type it does not know: the
// operations work, and Clear returns cache.ErrUnsupported without deleting
// anything.
func TestUnknownClient(t *testing.T) {
	srv := testenv.StartRedis(t)
	direct := newClient(t, singleClient(srv.Addr()))
	store := newStore(t, wrappedClient{direct.(*redis.Client)})
	ctx := t.Context()
	items := []cache.Item{{Key: "p:a", Value: []byte("1")}, {Key: "p:b", Value: []byte("2")}}
	if err := store.SetMulti(ctx, items); err != nil {
		t.Fatalf("SetMulti: %v", err)
	}
	if vals, err := store.GetMulti(ctx, []string{"p:a", "p:b", "p:c"}); err != nil || string(vals[0]) != "1" || string(vals[1]) != "2" || vals[2] != nil {
		t.Fatalf("GetMulti: got %q, %v; want [1 2 nil]", vals, err)
	}
	ch, stop, err := store.Watch(ctx, "p:lock")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer stop()
	mustSet(t, store, "p:lock", "tok", 0)
	if ok, err := store.DeleteIfEqual(ctx, "p:lock", []byte("tok")); err != nil || !ok {
		t.Fatalf("DeleteIfEqual: got %v, %v; want true", ok, err)
	}
	select {
	case <-ch:
	case <-time.After(bound):
		t.Fatal("the watcher was not woken by the release")
	}
	for _, prefix := range []string{"p:", ""} {
		if err := store.Clear(ctx, prefix); !errors.Is(err, cache.ErrUnsupported) {
			t.Errorf("Clear(%q): got %v; want cache.ErrUnsupported", prefix, err)
		}
	}
	if n, err := direct.DBSize(ctx).Result(); err != nil || n != 2 {
		t.Errorf("after Clear: got %d keys, %v; want the 2 keys untouched", n, err)
	}
	if n, err := store.Delete(ctx, "p:a", "p:b", "p:c"); err != nil || n != 2 {
		t.Errorf("Delete: got %d, %v; want 2", n, err)
	}
}
