package typedcache_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/codec"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/lock"
	"github.com/typedcache/typedcache/memo"
)

type account struct {
	ID      int64
	Owner   string
	Balance int64
	Tags    []string
}

// End to end through the public API, on every store.
func TestEndToEnd(t *testing.T) {
	teststores.ForEach(t, "e2e", func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		accounts := cache.New[int64, account](s, &cache.Options[int64, account]{Namespace: ns, TTL: time.Minute, Timeout: 5 * time.Second})
		counters := cache.New[string, int64](s, &cache.Options[string, int64]{Namespace: ns + "-n"})

		a := account{ID: 1, Owner: "ada", Balance: 100, Tags: []string{"vip"}}
		if err := accounts.Set(ctx, 1, a); err != nil {
			t.Fatal(err)
		}
		got, found, err := accounts.Get(ctx, 1)
		if err != nil || !found || got.Owner != "ada" || got.Tags[0] != "vip" {
			t.Fatalf("Get = %+v, %v, %v", got, found, err)
		}
		if err := accounts.SetMulti(ctx, map[int64]account{2: {ID: 2}, 3: {ID: 3}}); err != nil {
			t.Fatal(err)
		}
		many, err := accounts.GetMulti(ctx, []int64{1, 2, 3, 4})
		if err != nil || len(many) != 3 {
			t.Fatalf("GetMulti = %v, %v; want 3 hits", many, err)
		}
		if err := accounts.Add(ctx, 1, a); !errors.Is(err, cache.ErrExists) {
			t.Fatalf("Add over a value: %v; want ErrExists", err)
		}
		if n, err := accounts.Delete(ctx, 2, 3, 4); err != nil || n != 2 {
			t.Fatalf("Delete = %d, %v; want 2", n, err)
		}

		// Increment and Get agree on every store.
		counters.Increment(ctx, "visits", 10)
		if n, err := counters.Increment(ctx, "visits", -15); err != nil || n != -5 {
			t.Fatalf("Increment = %d, %v; want -5", n, err)
		}
		if n, _, err := counters.Get(ctx, "visits"); err != nil || n != -5 {
			t.Fatalf("Get after Increment = %d, %v; want -5", n, err)
		}

		// Corrupt bytes are an error, never a panic, and stay where they are.
		s.Set(ctx, accounts.Key(9), []byte{0xc1}, 0)
		if _, _, err := accounts.Get(ctx, 9); !errors.Is(err, codec.ErrDecode) {
			t.Fatalf("Get of corrupt bytes: %v; want ErrDecode", err)
		}

		// A cancelled context.
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if err := accounts.Set(cancelled, 5, a); !errors.Is(err, context.Canceled) {
			t.Fatalf("Set with a cancelled context: %v; want Canceled", err)
		}
		if _, found, _ := accounts.Get(ctx, 5); found {
			t.Fatal("a cancelled Set wrote")
		}

		// Optimistic updates and locks on the same cache.
		if _, err := lock.Update(ctx, accounts, 1, func(old account, _ bool) (account, error) {
			old.Balance += 50
			return old, nil
		}, nil); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := accounts.Get(ctx, 1); got.Balance != 150 {
			t.Fatalf("balance after Update = %d; want 150", got.Balance)
		}
		l, err := lock.NewRedLock(accounts, 1, 10*time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Do(ctx, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}

		// Read-through with a stampede of goroutines: one computation.
		var computations atomic.Int64
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := memo.GetOrCompute(ctx, accounts, 7, func(context.Context) (account, error) {
					computations.Add(1)
					time.Sleep(50 * time.Millisecond)
					return account{ID: 7, Owner: "grace"}, nil
				}, nil)
				if err != nil || v.Owner != "grace" {
					t.Errorf("GetOrCompute = %+v, %v", v, err)
				}
			}()
		}
		wg.Wait()
		if computations.Load() != 1 {
			t.Fatalf("computations = %d; want 1", computations.Load())
		}

		// Clear removes exactly the namespace, where the store can.
		err = accounts.Clear(ctx)
		if b.Name == "memcached" {
			if !errors.Is(err, cache.ErrUnsupported) {
				t.Fatalf("Clear of a namespace on memcached: %v; want ErrUnsupported", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, found, _ := accounts.Get(ctx, 1); found {
			t.Fatal("Clear left a key of the namespace")
		}
		if n, _, _ := counters.Get(ctx, "visits"); n != -5 {
			t.Fatal("Clear removed a key of another namespace")
		}
	})
}
