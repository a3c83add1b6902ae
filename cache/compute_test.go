package cache_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/codec"
)

// countingStore counts the Gets that reach the store.
type countingStore struct {
	cache.Store
	gets atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, key)
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// An error or a panic of the shared computation reaches every waiter, from
// one computation, is counted once in Stats.Errors, and is not cached.
//
// A waiter that a loaded machine delays past the end of the computation
// starts one of its own, as it should; such a round proves nothing about
// sharing and is run again, up to a bound. Without sharing, no round ever
// has a single computation.
func TestGetOrComputeSharedFailure(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		fail func() (string, error)
		want error
	}{
		{"error", func() (string, error) { return "", boom }, boom},
		{"panic", func() (string, error) { panic("kaboom") }, cache.ErrPanic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const waiters, rounds = 5, 10
			for round := range rounds {
				if sharedFailureRound(t, round, waiters, tt.fail, tt.want) {
					return
				}
			}
			t.Fatalf("in %d rounds, %d waiters never shared one computation", rounds, waiters)
		})
	}
}

// sharedFailureRound runs one round of TestGetOrComputeSharedFailure and
// reports whether every waiter joined the one computation.
func sharedFailureRound(t *testing.T, round, waiters int, fail func() (string, error), want error) bool {
	t.Helper()
	ctx := context.Background()
	store := &countingStore{Store: newStore(t)}
	c := cache.New[string, string](store, nil)
	gate := make(chan struct{})
	var calls atomic.Int64
	errs := make(chan error, waiters)
	for range waiters {
		go func() {
			_, err := c.GetOrCompute(ctx, "k", func(context.Context) (string, error) {
				calls.Add(1)
				<-gate
				return fail()
			})
			errs <- err
		}()
	}
	// Every waiter has read the store (and the flight its re-check)
	// before the computation may end.
	waitFor(t, "every waiter's read", func() bool { return store.gets.Load() >= int64(waiters)+1 })
	time.Sleep(time.Duration(20*(round+1)) * time.Millisecond) // from the read to joining the flight
	close(gate)
	for range waiters {
		if err := <-errs; !errors.Is(err, want) {
			t.Fatalf("waiter: got %v; want %v", err, want)
		}
	}
	if _, found, _ := c.Get(ctx, "k"); found {
		t.Fatal("a failed computation was cached")
	}
	n := calls.Load()
	st := c.Stats()
	if st.Computations != n || st.Errors != n {
		t.Fatalf("Stats: %d computations, %d errors; want %d and %d (one per computation)", st.Computations, st.Errors, n, n)
	}
	if n != 1 {
		t.Logf("round %d: %d computations for %d waiters (a waiter came late); again", round, n, waiters)
	}
	return n == 1
}

// A panic under the computation, in the codec or the store rather than in
// the caller's function, is an error too, not a crash of the process.
func TestGetOrComputeCodecPanic(t *testing.T) {
	enc := func(string) ([]byte, error) { panic("encoder bug") }
	dec := func(b []byte) (string, error) { return string(b), nil }
	c := cache.New[string, string](newStore(t), &cache.Options[string, string]{Codec: codec.Funcs(enc, dec)})
	_, err := c.GetOrCompute(context.Background(), "k", func(context.Context) (string, error) { return "v", nil })
	if !errors.Is(err, cache.ErrPanic) {
		t.Fatalf("GetOrCompute with a panicking encoder: got %v; want ErrPanic", err)
	}
}

// A view with a negative TTL fails before computing anything.
func TestGetOrComputeInvalidTTL(t *testing.T) {
	c := cache.New[string, string](newStore(t), nil)
	ran := false
	_, err := c.WithTTL(-time.Second).GetOrCompute(context.Background(), "k", func(context.Context) (string, error) {
		ran = true
		return "v", nil
	})
	if !errors.Is(err, cache.ErrInvalidTTL) || ran {
		t.Fatalf("GetOrCompute through WithTTL(-1s): err %v, computed %v; want ErrInvalidTTL, not computed", err, ran)
	}
}

// A view whose TTL differs does not join the parent's computation: its
// value is written with its own TTL.
func TestGetOrComputeViewsDoNotShare(t *testing.T) {
	ctx := context.Background()
	c := cache.New[string, string](newStore(t), &cache.Options[string, string]{TTL: time.Hour})
	gate := make(chan struct{})
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := c.GetOrCompute(ctx, "k", func(context.Context) (string, error) {
			close(started)
			<-gate
			return "parent", nil
		})
		done <- err
	}()
	<-started
	v, err := c.WithTTL(0).GetOrCompute(ctx, "k", func(context.Context) (string, error) { return "view", nil })
	if err != nil || v != "view" {
		t.Fatalf("view's GetOrCompute during the parent's = %q, %v; want its own computation (view, nil)", v, err)
	}
	if ttl, err := c.TTL(ctx, "k"); err != nil || ttl != cache.NoExpiration {
		t.Fatalf("TTL after the view's write = %v, %v; want NoExpiration", ttl, err)
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A stored value that fails to decode is recomputed and overwritten.
func TestGetOrComputeHealsCorruptValue(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := cache.New[string, user](s, &cache.Options[string, user]{Namespace: "u"})
	if err := s.Set(ctx, c.Key("1"), []byte{0xc1, 0xff}, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(ctx, "1"); !errors.Is(err, codec.ErrDecode) {
		t.Fatalf("Get of corrupt bytes: %v; want ErrDecode", err)
	}
	got, err := c.GetOrCompute(ctx, "1", func(context.Context) (user, error) { return user{1, "ada"}, nil })
	if err != nil || got != (user{1, "ada"}) {
		t.Fatalf("GetOrCompute over corrupt bytes = %v, %v; want {1 ada}, nil", got, err)
	}
	if v, found, err := c.Get(ctx, "1"); !found || err != nil || v != (user{1, "ada"}) {
		t.Fatalf("Get after healing = %v, %v, %v; want {1 ada}", v, found, err)
	}
	if st := c.Stats(); st.Computations != 1 || st.DecodeErrors < 1 {
		t.Fatalf("Stats: %+v; want 1 computation and the decode errors counted", st)
	}
}

// Options.ComputeTimeout bounds the shared computation, whose context is
// detached from the callers'.
func TestComputeTimeout(t *testing.T) {
	c := cache.New[string, string](newStore(t), &cache.Options[string, string]{ComputeTimeout: 50 * time.Millisecond})
	var computeErr error
	var mu sync.Mutex
	_, err := c.GetOrCompute(context.Background(), "k", func(ctx context.Context) (string, error) {
		<-ctx.Done()
		mu.Lock()
		computeErr = ctx.Err()
		mu.Unlock()
		return "", ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetOrCompute past ComputeTimeout: %v; want DeadlineExceeded", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !errors.Is(computeErr, context.DeadlineExceeded) {
		t.Fatalf("the computation's context ended with %v; want DeadlineExceeded", computeErr)
	}
}
