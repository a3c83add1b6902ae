package memo_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/codec"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/memo"
)

func memStore(t *testing.T) cache.Store { return teststores.Get(t, "memory").New(t) }

// Memo.GetMulti reports fn's errors as they are and never caches them as
// not found.
func TestFuncGetMultiErrors(t *testing.T) {
	ctx := context.Background()
	c := newCache[string](memStore(t), "m", time.Minute)
	errDB := errors.New("db timeout")
	var calls atomic.Int64
	m := memo.Func(c, func(_ context.Context, k string) (string, error) {
		calls.Add(1)
		switch k {
		case "down":
			return "", errDB
		case "boom":
			panic("boom")
		}
		return "v" + k, nil
	}, &memo.Options{NegativeTTL: time.Minute})
	defer m.Close()
	got, err := m.GetMulti(ctx, []string{"a", "down", "boom"})
	var kerrs memo.KeyErrors[string]
	if !errors.As(err, &kerrs) || !errors.Is(kerrs["down"], errDB) || !errors.Is(kerrs["boom"], cache.ErrPanic) {
		t.Fatalf("GetMulti errors = %v; want db timeout for down and a panic for boom", err)
	}
	if got["a"] != "va" || len(got) != 1 {
		t.Fatalf("GetMulti values = %v; want a only", got)
	}
	before := calls.Load()
	if _, err := m.Get(ctx, "down"); !errors.Is(err, errDB) {
		t.Fatalf("Get after a failure: %v; want fn called again and its error", err)
	}
	if calls.Load() != before+1 {
		t.Fatal("a failure was cached")
	}
}

// A cached not-found answer does not outlive a value written after it.
func TestNegativeMarkerDroppedByValue(t *testing.T) {
	ctx := context.Background()
	c := newCache[string](memStore(t), "m", 100*time.Millisecond)
	var exists atomic.Bool
	m := memo.Func(c, func(context.Context, string) (string, error) {
		if !exists.Load() {
			return "", memo.ErrNotFound
		}
		return "value", nil
	}, &memo.Options{NegativeTTL: time.Minute})
	defer m.Close()
	if _, err := m.Get(ctx, "k"); !errors.Is(err, memo.ErrNotFound) {
		t.Fatal(err)
	}
	exists.Store(true)
	if v, err := m.Refresh(ctx, "k"); err != nil || v != "value" {
		t.Fatalf("Refresh = %q, %v", v, err)
	}
	time.Sleep(150 * time.Millisecond) // the value expires; the old marker must not answer
	if v, err := m.Get(ctx, "k"); err != nil || v != "value" {
		t.Fatalf("Get after the value expired = %q, %v; want it computed again", v, err)
	}
}

// Corrupt bytes do not defeat negative caching.
func TestNegativeCachingOverCorruptBytes(t *testing.T) {
	ctx := context.Background()
	s := memStore(t)
	c := newCache[profile](s, "m", time.Minute)
	s.Set(ctx, c.Key("k"), []byte{0xc1}, 0)
	var calls atomic.Int64
	for range 3 {
		_, err := memo.GetOrCompute(ctx, c, "k", func(context.Context) (profile, error) {
			calls.Add(1)
			return profile{}, memo.ErrNotFound
		}, &memo.Options{NegativeTTL: time.Minute})
		if !errors.Is(err, memo.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("computations = %d; want 1", calls.Load())
	}
}

// A value that cannot be encoded fails its key only.
func TestMultiEncodeFailureIsPerKey(t *testing.T) {
	ctx := context.Background()
	picky := codec.Funcs(func(s string) ([]byte, error) {
		if s == "bad" {
			return nil, errors.New("unencodable")
		}
		return []byte(s), nil
	}, func(b []byte) (string, error) { return string(b), nil })
	c := cache.New[string, string](memStore(t), &cache.Options[string, string]{Codec: picky})
	stats := new(memo.Stats)
	got, err := memo.GetOrComputeMulti(ctx, c, []string{"a", "b"}, func(context.Context, []string) (map[string]string, error) {
		return map[string]string{"a": "good", "b": "bad"}, nil
	}, &memo.Options{Stats: stats})
	if err != nil || got["a"] != "good" || got["b"] != "bad" {
		t.Fatalf("GetOrComputeMulti = %v, %v; want both values", got, err)
	}
	if v, found, _ := c.Get(ctx, "a"); !found || v != "good" {
		t.Fatal("the good value was not stored")
	}
	if stats.Snapshot().WriteErrors != 1 {
		t.Fatalf("stats = %+v; want 1 write error", stats.Snapshot())
	}
}

// Caches of two value types over one key never share a flight.
func TestFlightsSeparateValueTypes(t *testing.T) {
	ctx := context.Background()
	s := memStore(t)
	strs := cache.New[string, string](s, &cache.Options[string, string]{Namespace: "m"})
	raw := cache.New[string, []byte](s, &cache.Options[string, []byte]{Namespace: "m"})
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		memo.GetOrCompute(ctx, strs, "k", func(context.Context) (string, error) {
			close(started)
			<-release
			return "x", nil
		}, nil)
	}()
	<-started
	got := make(chan []byte, 1)
	go func() {
		v, err := memo.GetOrCompute(ctx, raw, "k", func(context.Context) ([]byte, error) { return []byte("y"), nil }, nil)
		if err != nil {
			t.Error(err)
		}
		got <- v
	}()
	time.Sleep(20 * time.Millisecond)
	close(release)
	<-done
	if v := <-got; string(v) != "x" {
		t.Fatalf("[]byte cache got %q; want the value the string cache stored", v)
	}
}

// Memo.Close waits for a flight whose caller has gone.
func TestFuncCloseWaitsForFlights(t *testing.T) {
	c := newCache[string](memStore(t), "m", time.Minute)
	release := make(chan struct{})
	var finished atomic.Bool
	m := memo.Func(c, func(context.Context, string) (string, error) {
		<-release
		finished.Store(true)
		return "v", nil
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	if _, err := m.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get = %v; want Canceled", err)
	}
	closed := make(chan struct{})
	go func() { m.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while the flight still ran")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-closed
	if !finished.Load() {
		t.Fatal("Close returned before the computation finished")
	}
}

// GetOrComputeMulti caches a not-found answer over corrupt bytes too: the
// corrupt value is deleted, or it would be read first and every call
// would compute again.
func TestMultiNegativeCachingOverCorruptBytes(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[profile](s, ns, time.Minute)
		if err := s.Set(ctx, c.Key("k"), []byte{0xc1}, 0); err != nil {
			t.Fatal(err)
		}
		var calls atomic.Int64
		for range 3 {
			got, err := memo.GetOrComputeMulti(ctx, c, []string{"k"}, func(context.Context, []string) (map[string]profile, error) {
				calls.Add(1)
				return nil, nil // k does not exist
			}, &memo.Options{NegativeTTL: time.Minute})
			if len(got) != 0 || !errors.Is(err, memo.ErrNotFound) {
				t.Fatalf("GetOrComputeMulti = %v, %v; want ErrNotFound", got, err)
			}
		}
		if got := calls.Load(); got != 1 {
			t.Fatalf("computations = %d; want 1", got)
		}
	})
}

// Memo.Close cancels a background refresh in progress, waits for it and
// returns; what the refresh returns then is not stored. The Memo stays
// usable.
func TestFuncCloseCancelsRefresh(t *testing.T) {
	ctx := context.Background()
	s := memStore(t)
	c := newCache[int64](s, "m", time.Hour)
	var calls atomic.Int64
	refreshing := make(chan struct{})
	refreshErr := make(chan error, 1)
	m := memo.Func(c, func(ctx context.Context, _ string) (int64, error) {
		n := calls.Add(1)
		if n == 2 { // the refresh: runs until its ctx ends
			close(refreshing)
			<-ctx.Done()
			refreshErr <- ctx.Err()
		}
		return n, nil
	}, &memo.Options{RefreshAhead: 0.5})
	if v, err := m.Get(ctx, "k"); err != nil || v != 1 {
		t.Fatalf("first Get = %d, %v", v, err)
	}
	expireFresh(t, s, c, "k")
	if v, err := m.Get(ctx, "k"); err != nil || v != 1 {
		t.Fatalf("Get past the refresh point = %d, %v; want the cached 1", v, err)
	}
	<-refreshing
	closed := make(chan struct{})
	go func() { m.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: it did not stop the refresh")
	}
	if err := <-refreshErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("the refresh's ctx ended with %v; want Canceled", err)
	}
	if v, _, _ := c.Get(ctx, "k"); v == 2 {
		t.Fatal("the value a cancelled refresh returned was stored")
	}
	// Still usable: a new key is computed and stored.
	if v, err := m.Get(ctx, "other"); err != nil || v != 3 {
		t.Fatalf("Get after Close = %d, %v; want 3", v, err)
	}
	if v, found, _ := c.Get(ctx, "other"); !found || v != 3 {
		t.Fatalf("after Close, the value was not stored: %d, %v", v, found)
	}
	m.Close()
}

// Memo.Close cancels the flight of a miss whose caller has gone; a caller
// still waiting gets the computation's error.
func TestFuncCloseCancelsFlight(t *testing.T) {
	c := newCache[string](memStore(t), "m", time.Minute)
	started := make(chan struct{})
	m := memo.Func(c, func(ctx context.Context, _ string) (string, error) {
		close(started)
		<-ctx.Done()
		return "", ctx.Err()
	}, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := m.Get(context.Background(), "k")
		errc <- err
	}()
	<-started
	m.Close()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting caller got %v; want Canceled", err)
	}
	assertUnlocked(t, c.Store(), c.Key("k"))
}

// GetOrComputeMulti writes the freshness marker of what it computes, as
// GetOrCompute does: a single-key call then finds the value fresh, and
// neither refreshes nor computes it.
func TestMultiWritesFreshMarker(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[string](s, ns, time.Minute)
		opts := &memo.Options{RefreshAhead: 0.5}
		got, err := memo.GetOrComputeMulti(ctx, c, []string{"a", "b"}, func(_ context.Context, missing []string) (map[string]string, error) {
			out := map[string]string{}
			for _, k := range missing {
				out[k] = "multi " + k
			}
			return out, nil
		}, opts)
		if err != nil || len(got) != 2 {
			t.Fatalf("GetOrComputeMulti = %v, %v", got, err)
		}
		for _, k := range []string{"a", "b"} {
			if ok, err := s.Exists(ctx, freshKey(c, k)); !ok || err != nil {
				t.Fatalf("freshness marker of %s: exists %v, %v; want it written", k, ok, err)
			}
		}
		var calls atomic.Int64
		m := memo.Func(c, func(context.Context, string) (string, error) {
			calls.Add(1)
			return "single", nil
		}, opts)
		if v, err := m.Get(ctx, "a"); err != nil || v != "multi a" {
			t.Fatalf("Get = %q, %v; want the multi call's value", v, err)
		}
		m.Close() // waits for a refresh, had one started
		if st := m.Stats(); calls.Load() != 0 || st.Hits != 1 || st.Refreshes != 0 {
			t.Fatalf("computations = %d, stats = %+v; want a fresh hit, nothing computed", calls.Load(), st)
		}
	})
}

// A caller whose context is cancelled with a cause of its own gets an
// error that matches context.Canceled, the cause, and names the key.
func TestCancelCause(t *testing.T) {
	cause := errors.New("the caller gave up")
	for _, multi := range []bool{false, true} {
		name := map[bool]string{false: "GetOrCompute", true: "GetOrComputeMulti"}[multi]
		t.Run(name, func(t *testing.T) {
			c := newCache[string](memStore(t), "m", time.Minute)
			ctx, cancel := context.WithCancelCause(context.Background())
			started, release := make(chan struct{}), make(chan struct{})
			compute := func() string {
				close(started)
				<-release
				return "v"
			}
			errc := make(chan error, 1)
			go func() {
				var err error
				if multi {
					_, err = memo.GetOrComputeMulti(ctx, c, []string{"k"}, func(context.Context, []string) (map[string]string, error) {
						return map[string]string{"k": compute()}, nil
					}, nil)
				} else {
					_, err = memo.GetOrCompute(ctx, c, "k", func(context.Context) (string, error) { return compute(), nil }, nil)
				}
				errc <- err
			}()
			<-started
			cancel(cause)
			err := <-errc
			close(release)
			waitValue(t, c, "k", "v", time.Second) // the flight goes on, and ends
			var oe *cache.OpError
			if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) || !errors.As(err, &oe) || oe.Key != c.Key("k") {
				t.Fatalf("got %v; want an OpError on %q matching Canceled and the cause", err, c.Key("k"))
			}
		})
	}
}

// A call made while Memo.Close waits computes nothing: its flight starts
// on the cancelled base and stops at once.
func TestFuncCloseStopsFlightsStartedWhileWaiting(t *testing.T) {
	c := newCache[string](memStore(t), "m", time.Minute)
	started, cancelled, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var others atomic.Int64
	m := memo.Func(c, func(ctx context.Context, k string) (string, error) {
		if k != "k" {
			others.Add(1)
			return "computed " + k, nil
		}
		close(started)
		<-ctx.Done()
		close(cancelled)
		<-release // ignores its ctx: Close waits
		return "", ctx.Err()
	}, nil)
	go m.Get(context.Background(), "k")
	<-started
	closed := make(chan struct{})
	go func() { m.Close(); close(closed) }()
	<-cancelled // Close cancelled the flight of k and waits for it
	for i := range 20 {
		k := "other" + string(rune('a'+i))
		if v, err := m.Get(context.Background(), k); !errors.Is(err, context.Canceled) {
			t.Errorf("Get(%s) while Close waits = %q, %v; want Canceled", k, v, err)
		}
	}
	close(release)
	<-closed
	if n := others.Load(); n != 0 {
		t.Fatalf("%d computations started while Close waited; want none", n)
	}
}
