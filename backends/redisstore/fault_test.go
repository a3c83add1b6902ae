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
	"github.com/typedcache/typedcache/internal/testing/testenv"
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

// slack is how much longer than its deadline a call may take in the fault
// tests: a correctness bound, generous for a loaded machine, not a
// performance target.
const slack = 2 * time.Second

// storeOp is one operation of the Store, called through c where the Cache
// offers it, else on store with a context bounded by timeout.
type storeOp struct {
	name string
	call func() error
}

// storeOps returns every operation of the Store, called through the Cache c
// (whose Timeout is timeout) or directly on store under a context bounded by
// timeout.
func storeOps(ctx context.Context, c *cache.Cache[string, string], store *redisstore.Store, timeout time.Duration) []storeOp {
	opCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, timeout)
	}
	return []storeOp{
		{"Get", func() error { _, _, err := c.Get(ctx, "k"); return err }},
		{"GetMulti", func() error { _, err := c.GetMulti(ctx, []string{"k", "x"}); return err }},
		{"Set", func() error { return c.Set(ctx, "k", "v2") }},
		{"SetMulti", func() error { return c.SetMulti(ctx, map[string]string{"a": "1", "b": "2"}) }},
		{"Add", func() error { return c.Add(ctx, "new", "v") }},
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
		{"Publish", func() error {
			ctx, cancel := opCtx()
			defer cancel()
			return store.Publish(ctx, "bus", []byte("m"))
		}},
		{"Subscribe", func() error {
			ctx, cancel := opCtx()
			defer cancel()
			stop, err := store.Subscribe(ctx, "bus", func([]byte) {}, nil)
			if err == nil {
				stop()
			}
			return err
		}},
	}
}

// runFailing runs every op, each of which must fail with an error that
// match accepts, within timeout + slack.
func runFailing(t *testing.T, ops []storeOp, timeout time.Duration, want string, match func(error) bool) {
	t.Helper()
	for _, op := range ops {
		start := time.Now()
		err := within(t, op.name, op.call)
		elapsed := time.Since(start)
		t.Logf("%s: %v after %v", op.name, err, elapsed.Round(time.Millisecond))
		if err == nil {
			t.Errorf("%s: got nil error; want %s", op.name, want)
			continue
		}
		if !match(err) {
			t.Errorf("%s: got %v; want %s", op.name, err, want)
		}
		if elapsed > timeout+slack {
			t.Errorf("%s: returned after %v; want at most the timeout %v + %v", op.name, elapsed, timeout, slack)
		}
	}
}

// TestServerHangs runs every operation against a server that accepts
// connections and never answers, through a client with
// ContextTimeoutEnabled: the Cache's Timeout (or the context's deadline)
// ends each call, with an error matching context.DeadlineExceeded.
func TestServerHangs(t *testing.T) {
	hole := testenv.StartUnresponsive(t)
	client := redis.NewClient(&redis.Options{
		Addr:                  hole.Addr(),
		ContextTimeoutEnabled: true,
		// The client's own timeouts are the defaults, far above the Cache's.
	})
	t.Cleanup(func() { _ = client.Close() })
	store := redisstore.New(client, nil)
	t.Cleanup(func() { _ = store.Close() })
	const timeout = 300 * time.Millisecond
	c := cache.New[string, string](store, &cache.Options[string, string]{Timeout: timeout})

	runFailing(t, storeOps(t.Context(), c, store, timeout), timeout, "context.DeadlineExceeded", func(err error) bool {
		return errors.Is(err, context.DeadlineExceeded)
	})
	if hole.Accepted() == 0 {
		t.Error("no connection reached the server: the test proves nothing")
	}
}

// TestServerDown stops the server under a Cache: every operation must fail
// within the Cache's Timeout (not hang), and the same Cache must work again
// once the server is back. The client's own timeouts are not below the
// Cache's: the Cache's Timeout is what bounds the calls.
func TestServerDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	const timeout = 500 * time.Millisecond
	client := redis.NewClient(&redis.Options{
		Addr:                  srv.Addr(),
		ContextTimeoutEnabled: true,
		MaxRetries:            -1, // no retries
	})
	t.Cleanup(func() { _ = client.Close() })
	store := redisstore.New(client, nil)
	t.Cleanup(func() { _ = store.Close() })
	c := cache.New[string, string](store, &cache.Options[string, string]{Timeout: timeout})
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

	runFailing(t, storeOps(ctx, c, store, timeout), timeout, "a network error or context.DeadlineExceeded", isOutage)

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

	// The watch from before the outage was resubscribed: only a release
	// can wake it now. Wait until the server has its subscription again,
	// then for a barrier (another Watch returns once the subscriber has
	// read the reply to its SUBSCRIBE, which comes after the replies to
	// the resubscription of "held", so the wake-ups of the reconnection
	// have been delivered), drop those wake-ups, and release.
	admin := newClient(t, singleClient(srv.Addr()))
	channel := store.Channel("held")
	for deadline := time.Now().Add(bound); ; {
		n, err := admin.PubSubNumSub(ctx, channel).Result()
		if err == nil && n[channel] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PUBSUB NUMSUB %s after the restart: got %v, %v; want 1 within %v", channel, n, err, bound)
		}
		time.Sleep(20 * time.Millisecond)
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
	select { // drop wake-ups caused by the outage and the reconnection
	case <-woken:
	default:
	}
	for _, key := range []string{"held", "held2"} {
		if err := store.Set(ctx, key, []byte("tok"), 0); err != nil {
			t.Fatal(err)
		}
		if ok, err := store.DeleteIfEqual(ctx, key, []byte("tok")); err != nil || !ok {
			t.Fatalf("DeleteIfEqual(%q) after restart: got %v, %v; want true", key, ok, err)
		}
	}
	for _, w := range []struct {
		name string
		c    <-chan struct{}
	}{{"held", woken}, {"held2", ch}} {
		select {
		case <-w.c:
		case <-time.After(bound):
			t.Errorf("the watcher of %q was not woken by its release after the restart", w.name)
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
	// That barrier also delivered the wake-up of the reconnection: drop it,
	// so that only the release below can wake the watcher.
	select {
	case <-woken:
	default:
	}
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
