package memcachestore_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/typedcache/typedcache/backends/memcachestore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// TestServerDown stops a private memcached under a Cache: every operation
// fails with an error (none hangs), and once the server is back on the same
// port the same Cache works again.
func TestServerDown(t *testing.T) {
	srv := testenv.StartMemcached(t)
	client := memcache.New(srv.Addr())
	client.Timeout = 200 * time.Millisecond
	t.Cleanup(func() { _ = client.Close() })
	store := memcachestore.New(client, nil)
	const timeout = time.Second
	c := cache.New[string, string](store, &cache.Options[string, string]{
		Namespace: "fault",
		Timeout:   timeout,
	})
	t.Cleanup(func() { _ = c.Close() })
	ctx := t.Context()

	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatalf("Set before the outage: %v", err)
	}
	_, _, tok, err := c.Gets(ctx, "k")
	if err != nil {
		t.Fatalf("Gets before the outage: %v", err)
	}

	srv.Stop()

	ops := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, _, err := c.Get(ctx, "k"); return err }},
		{"GetMulti", func(ctx context.Context) error { _, err := c.GetMulti(ctx, []string{"k", "l"}); return err }},
		{"Set", func(ctx context.Context) error { return c.Set(ctx, "k", "v") }},
		{"SetMulti", func(ctx context.Context) error { return c.SetMulti(ctx, map[string]string{"k": "v", "l": "w"}) }},
		{"Add", func(ctx context.Context) error { return c.Add(ctx, "new", "v") }},
		{"Delete", func(ctx context.Context) error { _, err := c.Delete(ctx, "k"); return err }},
		{"Delete many", func(ctx context.Context) error { _, err := c.Delete(ctx, "k", "l", "m"); return err }},
		{"Exists", func(ctx context.Context) error { _, err := c.Exists(ctx, "k"); return err }},
		{"Expire", func(ctx context.Context) error { _, err := c.Expire(ctx, "k", time.Minute); return err }},
		{"Increment", func(ctx context.Context) error { _, err := c.Increment(ctx, "n", 1); return err }},
		// c.Clear of a namespace is ErrUnsupported without any I/O: flush.
		{"Clear", func(ctx context.Context) error { return store.Clear(ctx, "") }},
		{"Gets", func(ctx context.Context) error { _, _, _, err := c.Gets(ctx, "k"); return err }},
		{"CompareAndSwap", func(ctx context.Context) error { return c.CompareAndSwap(ctx, "k", "w", tok) }},
		{"DeleteIfEqual", func(ctx context.Context) error {
			_, err := store.DeleteIfEqual(ctx, c.Key("k"), []byte("v"))
			return err
		}},
		{"ExtendIfEqual", func(ctx context.Context) error {
			_, err := store.ExtendIfEqual(ctx, c.Key("k"), []byte("v"), time.Minute)
			return err
		}},
	}
	// Each operation runs in its own goroutine with a generous outer bound,
	// so that a hang fails the test instead of blocking it. An error must
	// come within the Cache's Timeout; the slack is for a loaded machine,
	// not a performance target.
	const bound = 10 * time.Second
	within := timeout + 2*time.Second
	for _, op := range ops {
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- op.call(ctx) }()
		select {
		case err := <-done:
			if took := time.Since(start); took > within {
				t.Errorf("%s with the server down: answered after %v; want within the Timeout (%v + slack)", op.name, took, timeout)
			}
			if err == nil {
				t.Errorf("%s with the server down: got nil; want an error", op.name)
			}
			if errors.Is(err, cache.ErrConflict) || errors.Is(err, cache.ErrNotFound) {
				t.Errorf("%s with the server down: got %v; want an I/O error, not a cache outcome", op.name, err)
			}
		case <-time.After(bound):
			t.Fatalf("%s with the server down: no answer within %v", op.name, bound)
		}
	}
	// A context deadline shorter than the client's timeout is honoured too.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, err := c.Get(short, "k"); err == nil {
		t.Errorf("Get with a short deadline, server down: got nil; want an error")
	}

	srv.Start()

	// The same Cache recovers: its client dials again.
	deadline := time.Now().Add(bound)
	for {
		err := c.Set(ctx, "k", "back")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Set after the restart: still failing after %v: %v", bound, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v, ok, err := c.Get(ctx, "k"); v != "back" || !ok || err != nil {
		t.Fatalf("Get after the restart = %q, %v, %v; want back, true, nil", v, ok, err)
	}
	if n, err := c.Increment(ctx, "n", 3); n != 3 || err != nil {
		t.Fatalf("Increment after the restart = %d, %v; want 3, nil", n, err)
	}
}

// TestUnresponsiveServer: a server that accepts connections and never
// answers. A context deadline shorter than the client's timeout ends the
// call with the context's error; the call itself finishes in the background.
func TestUnresponsiveServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-accepted
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})

	client := memcache.New(ln.Addr().String())
	client.Timeout = time.Minute
	t.Cleanup(func() { _ = client.Close() })
	store := memcachestore.New(client, nil)

	ops := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := store.Get(ctx, "k"); return err }},
		{"GetMulti", func(ctx context.Context) error { _, err := store.GetMulti(ctx, []string{"k"}); return err }},
		{"Set", func(ctx context.Context) error { return store.Set(ctx, "k", nil, 0) }},
		{"SetMulti", func(ctx context.Context) error {
			return store.SetMulti(ctx, []cache.Item{{Key: "k"}, {Key: "l"}})
		}},
		{"Delete many", func(ctx context.Context) error { _, err := store.Delete(ctx, "k", "l"); return err }},
		{"Increment", func(ctx context.Context) error { _, err := store.Increment(ctx, "n", 1); return err }},
		{"DeleteIfEqual", func(ctx context.Context) error {
			_, err := store.DeleteIfEqual(ctx, "k", nil)
			return err
		}},
	}
	const bound = 10 * time.Second
	for _, op := range ops {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- op.call(ctx) }()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s against a silent server: got %v; want context.DeadlineExceeded", op.name, err)
			}
		case <-time.After(bound):
			t.Fatalf("%s against a silent server: no answer within %v", op.name, bound)
		}
		cancel()
	}
}
