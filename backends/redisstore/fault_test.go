package redisstore_test

import (
	"context"
	"errors"
	"math"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testenv"
)

// bound is how long any single call may take in the fault tests before it
// counts as a hang. It is generous: the point is to fail instead of
// deadlocking, not to measure.
const bound = 10 * time.Second

// within runs f in a goroutine and fails the test if it does not return
// within bound.
func within(t *testing.T, name string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(bound):
		t.Fatalf("%s: no return within %v", name, bound)
		return nil
	}
}

// isOutage reports whether err is what an operation on a stopped server
// should return: a network error or the end of its deadline.
func isOutage(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// TestServerDown stops the server under a Cache: every operation must fail
// (not hang), and the same Cache must work again once the server is back.
func TestServerDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	client := redis.NewClient(&redis.Options{
		Addr:         srv.Addr(),
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond,
		MaxRetries:   -1, // no retries
	})
	t.Cleanup(func() { _ = client.Close() })
	store := redisstore.New(client, nil)
	t.Cleanup(func() { _ = store.Close() })
	c := cache.New[string, string](store, &cache.Options[string, string]{Timeout: 500 * time.Millisecond})
	ctx := t.Context()

	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatalf("Set before the outage: %v", err)
	}
	// A watch in place before the outage is woken when the connection
	// breaks: a release may be lost meanwhile.
	woken, stop, err := store.Watch(ctx, "held")
	if err != nil {
		t.Fatalf("Watch before the outage: %v", err)
	}
	defer stop()

	srv.Stop()

	select {
	case <-woken:
	case <-time.After(bound):
		t.Errorf("a watcher was not woken within %v of the connection's failure", bound)
	}

	opCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, 500*time.Millisecond)
	}
	ops := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, _, err := c.Get(ctx, "k"); return err }},
		{"Set", func() error { return c.Set(ctx, "k", "v2") }},
		{"Add", func() error { return c.Add(ctx, "new", "v") }},
		{"GetMulti", func() error { _, err := c.GetMulti(ctx, []string{"k", "x"}); return err }},
		{"SetMulti", func() error { return c.SetMulti(ctx, map[string]string{"a": "1", "b": "2"}) }},
		{"Delete", func() error { _, err := c.Delete(ctx, "k", "x"); return err }},
		{"Exists", func() error { _, err := c.Exists(ctx, "k"); return err }},
		{"Expire", func() error { _, err := c.Expire(ctx, "k", time.Minute); return err }},
		{"TTL", func() error { _, err := c.TTL(ctx, "k"); return err }},
		{"Increment", func() error { _, err := c.Increment(ctx, "n", 1); return err }},
		{"Clear", func() error { return c.Clear(ctx) }},
		{"Gets", func() error { _, _, _, err := c.Gets(ctx, "k"); return err }},
		{"CompareAndSwap", func() error { return c.CompareAndSwap(ctx, "k", "v3", cache.AbsentToken()) }},
		{"DeleteIfEqual", func() error {
			ctx, cancel := opCtx()
			defer cancel()
			_, err := store.DeleteIfEqual(ctx, "k", []byte("v"))
			return err
		}},
		{"ExtendIfEqual", func() error {
			ctx, cancel := opCtx()
			defer cancel()
			_, err := store.ExtendIfEqual(ctx, "k", []byte("v"), time.Minute)
			return err
		}},
		{"AddFenced", func() error {
			ctx, cancel := opCtx()
			defer cancel()
			_, err := store.AddFenced(ctx, "lock", []byte("t"), time.Minute)
			return err
		}},
		{"Watch", func() error {
			ctx, cancel := opCtx()
			defer cancel()
			_, stop, err := store.Watch(ctx, "other")
			if err == nil {
				stop()
			}
			return err
		}},
	}
	for _, op := range ops {
		start := time.Now()
		err := within(t, op.name, op.call)
		t.Logf("%s: %v after %v", op.name, err, time.Since(start).Round(time.Millisecond))
		if err == nil {
			t.Errorf("%s with the server down: got nil error; want one", op.name)
			continue
		}
		if !isOutage(err) {
			t.Errorf("%s with the server down: got %v; want a network error or context.DeadlineExceeded", op.name, err)
		}
	}

	srv.Start()

	// The same Cache recovers: go-redis redials.
	deadline := time.Now().Add(bound)
	for {
		err := within(t, "Set after restart", func() error { return c.Set(ctx, "k", "back") })
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Set still fails %v after the restart: %v", bound, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v, ok, err := c.Get(ctx, "k"); err != nil || !ok || v != "back" {
		t.Errorf("Get after restart: got %q, %v, %v; want \"back\", true, nil", v, ok, err)
	}

	// The watch from before the outage was resubscribed: a release reaches it.
	select { // drop wake-ups caused by the outage
	case <-woken:
	default:
	}
	var ch <-chan struct{}
	err = within(t, "Watch after restart", func() error {
		var err error
		var stop2 func()
		ch, stop2, err = store.Watch(ctx, "held2")
		if err == nil {
			t.Cleanup(stop2)
		}
		return err
	})
	if err != nil {
		t.Fatalf("Watch after restart: %v", err)
	}
	for _, key := range []string{"held", "held2"} {
		if err := store.Set(ctx, key, []byte("tok"), 0); err != nil {
			t.Fatal(err)
		}
		if ok, err := store.DeleteIfEqual(ctx, key, []byte("tok")); err != nil || !ok {
			t.Fatalf("DeleteIfEqual(%q) after restart: got %v, %v; want true", key, ok, err)
		}
	}
	for name, c := range map[string]<-chan struct{}{"held": woken, "held2": ch} {
		select {
		case <-c:
		case <-time.After(bound):
			t.Errorf("the watcher of %q was not woken by its release after the restart", name)
		}
	}
}

// TestWatchConnectionKilled kills the store's pub/sub connection: its
// watchers are woken, and releases reach them again afterwards.
func TestWatchConnectionKilled(t *testing.T) {
	srv := testenv.StartRedis(t)
	client := newClient(t, singleClient(srv.Addr()))
	store := newStore(t, client)
	ctx := t.Context()

	woken, stop, err := store.Watch(ctx, "lock")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	n, err := client.ClientKillByFilter(ctx, "TYPE", "pubsub").Result()
	if err != nil || n != 1 {
		t.Fatalf("CLIENT KILL TYPE pubsub: got %d, %v; want 1 connection killed", n, err)
	}
	select {
	case <-woken:
	case <-time.After(bound):
		t.Fatalf("the watcher was not woken within %v of its connection's death", bound)
	}
	// Another Watch returns once its subscription is confirmed on the new
	// connection, and so once the resubscription of "lock", sent first, is
	// in place too.
	_, stop2, err := store.Watch(ctx, "other")
	if err != nil {
		t.Fatalf("Watch after the kill: %v", err)
	}
	defer stop2()
	if err := store.Set(ctx, "lock", []byte("tok"), 0); err != nil {
		t.Fatal(err)
	}
	if ok, err := store.DeleteIfEqual(ctx, "lock", []byte("tok")); err != nil || !ok {
		t.Fatalf("DeleteIfEqual: got %v, %v; want true", ok, err)
	}
	select {
	case <-woken:
	case <-time.After(bound):
		t.Fatalf("the watcher was not woken by a release after the reconnection")
	}
}

// A release published while the watch's connection was down, before
// go-redis resubscribed, still wakes the watcher: it is woken again once the
// connection is back.
func TestWatchReleaseDuringReconnection(t *testing.T) {
	srv := testenv.StartRedis(t)
	client := newClient(t, singleClient(srv.Addr()))
	store := newStore(t, client)
	ctx := t.Context()

	woken, stop, err := store.Watch(ctx, "lock")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	srv.Stop()
	select {
	case <-woken: // the outage
	case <-time.After(bound):
		t.Fatal("the watcher was not woken by the outage")
	}
	// The subscriber retries after 50, 100, 200, 400 and 800 ms, then every
	// second: restarting at 2.1 s falls inside a one-second pause, so the
	// release below comes before it resubscribes.
	time.Sleep(2100 * time.Millisecond)
	srv.Start()
	// Forget the wake-ups of the failed reconnection attempts.
	select {
	case <-woken:
	default:
	}
	// A release by another client at once, likely before the subscriber
	// has reconnected and resubscribed.
	other := newStore(t, newClient(t, singleClient(srv.Addr())))
	if err := other.Set(ctx, "lock", []byte("tok"), 0); err != nil {
		t.Fatal(err)
	}
	if ok, err := other.DeleteIfEqual(ctx, "lock", []byte("tok")); err != nil || !ok {
		t.Fatalf("DeleteIfEqual: %v, %v", ok, err)
	}
	select {
	case <-woken:
	case <-time.After(bound):
		t.Fatal("a release during the reconnection never woke the watcher")
	}
}

// A ttl near the largest time.Duration neither overflows into "no expiry"
// nor makes Redis refuse the command.
func TestHugeTTL(t *testing.T) {
	srv := testenv.StartRedis(t)
	store := newStore(t, newClient(t, singleClient(srv.Addr())))
	ctx := t.Context()
	huge := time.Duration(math.MaxInt64)
	if err := store.Set(ctx, "k", []byte("v"), huge); err != nil {
		t.Fatalf("Set with a huge ttl: %v", err)
	}
	if ttl, err := store.TTL(ctx, "k"); err != nil || ttl == cache.NoExpiration {
		t.Fatalf("TTL after a huge ttl: %v, %v; want an expiry", ttl, err)
	}
	if err := store.Add(ctx, "a", []byte("v"), huge); err != nil {
		t.Fatalf("Add with a huge ttl: %v", err)
	}
}
