package memcachestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"go.uber.org/goleak"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testStore returns a store over a client of the shared servers and a
// unique key prefix.
func testStore(t *testing.T) (*Store, *memcache.Client, func(string) string) {
	t.Helper()
	client := memcache.New(testenv.MemcachedAddrs(t)...)
	client.Timeout = 2 * time.Second
	client.MaxIdleConns = 8
	t.Cleanup(func() { _ = client.Close() })
	s := New(client, nil)
	t.Cleanup(func() { _ = s.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "mctest:" + hex.EncodeToString(b[:]) + ":"
	return s, client, func(name string) string { return prefix + name }
}

func mustSet(t *testing.T, s *Store, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Set(t.Context(), key, value, ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func wantValue(t *testing.T, s *Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v; want %q", key, err, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q; want %q", key, got, want)
	}
}

func wantMissing(t *testing.T, s *Store, key string) {
	t.Helper()
	if got, err := s.Get(t.Context(), key); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

// waitMissing polls until key is gone, failing after bound.
func waitMissing(t *testing.T, s *Store, key string, bound time.Duration) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		_, err := s.Get(t.Context(), key)
		if errors.Is(err, cache.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get(%q): still present %v after its ttl; want it expired", key, bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBasic(t *testing.T) {
	s, _, k := testStore(t)
	ctx := t.Context()
	wantMissing(t, s, k("a"))
	mustSet(t, s, k("a"), []byte("1"), 0)
	mustSet(t, s, k("empty"), []byte{}, 0)
	wantValue(t, s, k("a"), []byte("1"))
	if v, err := s.Get(ctx, k("empty")); err != nil || v == nil || len(v) != 0 {
		t.Errorf("Get(empty) = %#v, %v; want a non-nil empty slice", v, err)
	}

	if err := s.Add(ctx, k("a"), []byte("2"), 0); !errors.Is(err, cache.ErrExists) {
		t.Errorf("Add(existing) = %v; want ErrExists", err)
	}
	if err := s.Add(ctx, k("b"), []byte("2"), 0); err != nil {
		t.Errorf("Add(absent) = %v; want nil", err)
	}

	if ok, err := s.Exists(ctx, k("a")); !ok || err != nil {
		t.Errorf("Exists(a) = %v, %v; want true, nil", ok, err)
	}
	if ok, err := s.Exists(ctx, k("none")); ok || err != nil {
		t.Errorf("Exists(none) = %v, %v; want false, nil", ok, err)
	}

	if _, err := s.TTL(ctx, k("a")); !errors.Is(err, cache.ErrUnsupported) {
		t.Errorf("TTL = %v; want ErrUnsupported", err)
	}
	if err := s.Clear(ctx, k("")); !errors.Is(err, cache.ErrUnsupported) {
		t.Errorf("Clear(prefix) = %v; want ErrUnsupported", err)
	}
	wantValue(t, s, k("a"), []byte("1"))

	if n, err := s.Delete(ctx, k("a"), k("b"), k("none"), k("a")); n != 2 || err != nil {
		t.Errorf("Delete(a, b, none, a) = %d, %v; want 2, nil", n, err)
	}
	if n, err := s.Delete(ctx, k("empty")); n != 1 || err != nil {
		t.Errorf("Delete(empty) = %d, %v; want 1, nil", n, err)
	}
	if n, err := s.Delete(ctx, k("empty")); n != 0 || err != nil {
		t.Errorf("Delete(empty) again = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.Delete(ctx); n != 0 || err != nil {
		t.Errorf("Delete() = %d, %v; want 0, nil", n, err)
	}
}

// TestMultiSpread writes and reads many keys, which the client spreads over
// both servers.
func TestMultiSpread(t *testing.T) {
	s, _, k := testStore(t)
	ctx := t.Context()
	var items []cache.Item
	var keys []string
	for i := range 200 {
		key := k("m" + strconv.Itoa(i))
		if i%3 == 0 {
			key += " odd"
		}
		keys = append(keys, key)
		if i%2 == 0 {
			items = append(items, cache.Item{Key: key, Value: []byte(strconv.Itoa(i)), TTL: time.Minute})
		}
	}
	if err := s.SetMulti(ctx, items); err != nil {
		t.Fatalf("SetMulti: %v", err)
	}
	got, err := s.GetMulti(ctx, append(keys, keys[0]))
	if err != nil {
		t.Fatalf("GetMulti: %v", err)
	}
	if len(got) != len(keys)+1 {
		t.Fatalf("GetMulti returned %d values; want %d", len(got), len(keys)+1)
	}
	for i := range keys {
		if i%2 == 0 && string(got[i]) != strconv.Itoa(i) {
			t.Errorf("GetMulti[%d] = %q; want %q", i, got[i], strconv.Itoa(i))
		}
		if i%2 == 1 && got[i] != nil {
			t.Errorf("GetMulti[%d] = %q; want nil (a miss)", i, got[i])
		}
	}
	if string(got[len(keys)]) != "0" {
		t.Errorf("GetMulti of a repeated key = %q; want %q", got[len(keys)], "0")
	}
	if n, err := s.Delete(ctx, keys...); n != len(items) || err != nil {
		t.Errorf("Delete = %d, %v; want %d, nil", n, err, len(items))
	}
	// The keys really were spread: each server holds some of them.
	if err := s.SetMulti(ctx, items); err != nil {
		t.Fatalf("SetMulti: %v", err)
	}
	for _, addr := range testenv.MemcachedAddrs(t) {
		oneClient := memcache.New(addr)
		defer oneClient.Close()
		one := New(oneClient, nil)
		vals, err := one.GetMulti(ctx, keys)
		if err != nil {
			t.Fatalf("GetMulti on %s: %v", addr, err)
		}
		n := 0
		for _, v := range vals {
			if v != nil {
				n++
			}
		}
		if len(testenv.MemcachedAddrs(t)) > 1 && (n == 0 || n == len(items)) {
			t.Errorf("server %s holds %d of %d keys; want them spread over the servers", addr, n, len(items))
		}
	}
}

// TestLargeValue stores the largest value that fits under its key with the
// default Options.MaxItemSize, which a stock memcached (-I 1m) holds, and
// reads it back. TestItemSizeLimit checks the edges.
func TestLargeValue(t *testing.T) {
	s, _, k := testStore(t)
	key := k("big")
	v := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	v = v[:DefaultMaxItemSize-ItemOverhead-len(key)]
	mustSet(t, s, key, v, time.Minute)
	wantValue(t, s, key, v)
}

func TestClosed(t *testing.T) {
	s, client, k := testStore(t)
	ctx := t.Context()
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := s.Set(ctx, k("a"), []byte("v"), 0); !errors.Is(err, cache.ErrClosed) {
		t.Errorf("Set after Close = %v; want ErrClosed", err)
	}
	if _, err := s.Get(ctx, k("a")); !errors.Is(err, cache.ErrClosed) {
		t.Errorf("Get after Close = %v; want ErrClosed", err)
	}
	if _, err := s.GetMulti(ctx, []string{k("a")}); !errors.Is(err, cache.ErrClosed) {
		t.Errorf("GetMulti after Close = %v; want ErrClosed", err)
	}
	// The client is the caller's and still works.
	if err := client.Set(&memcache.Item{Key: k("a"), Value: []byte("v")}); err != nil {
		t.Errorf("client.Set after the store's Close = %v; want nil", err)
	}
}

func TestContext(t *testing.T) {
	s, _, k := testStore(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Set(cancelled, k("c"), []byte("v"), 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Set(cancelled ctx) = %v; want context.Canceled", err)
	}
	if n, err := s.Increment(cancelled, k("c"), 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Increment(cancelled ctx) = %d, %v; want context.Canceled", n, err)
	}
	if err := s.SetMulti(cancelled, []cache.Item{{Key: k("c")}, {Key: k("d")}}); !errors.Is(err, context.Canceled) {
		t.Errorf("SetMulti(cancelled ctx) = %v; want context.Canceled", err)
	}
	wantMissing(t, s, k("c"))
	wantMissing(t, s, k("d"))

	// A deadline shorter than the client's timeout: the calls run in a
	// goroutine and still work.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if s.inline(ctx) {
		t.Fatalf("inline(ctx with a 1s deadline, client timeout %v) = true; want false", s.client.Timeout)
	}
	if err := s.Set(ctx, k("c"), []byte("v"), 0); err != nil {
		t.Fatalf("Set(short deadline) = %v", err)
	}
	if v, err := s.Get(ctx, k("c")); err != nil || string(v) != "v" {
		t.Fatalf("Get(short deadline) = %q, %v; want v, nil", v, err)
	}
	if n, err := s.Increment(ctx, k("n"), 2); err != nil || n != 2 {
		t.Fatalf("Increment(short deadline) = %d, %v; want 2, nil", n, err)
	}
	if err := s.SetMulti(ctx, []cache.Item{{Key: k("x"), Value: []byte("1")}, {Key: k("y"), Value: []byte("2")}}); err != nil {
		t.Fatalf("SetMulti(short deadline) = %v", err)
	}
	if !s.inline(t.Context()) {
		t.Errorf("inline(ctx without deadline) = false; want true")
	}
}
