package memo_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/memo"
)

func TestZZSmoke(t *testing.T) {
	teststores.ForEach(t, "smoke", func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		other := s
		if b.Shared {
			other = b.New(t)
		}
		s1, s2 := teststores.NewCounting(s), teststores.NewCounting(other)
		c1 := cache.New[string, string](s1, &cache.Options[string, string]{Namespace: ns, TTL: time.Minute})
		c2 := cache.New[string, string](s2, &cache.Options[string, string]{Namespace: ns, TTL: time.Minute})
		var n atomic.Int64
		compute := func(context.Context) (string, error) { n.Add(1); time.Sleep(300 * time.Millisecond); return "v", nil }
		var wg sync.WaitGroup
		for _, c := range []*cache.Cache[string, string]{c1, c2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := memo.GetOrCompute(ctx, c, "k", compute, &memo.Options{Lease: 5 * time.Second})
				if err != nil || v != "v" {
					t.Errorf("got %q %v", v, err)
				}
			}()
			time.Sleep(50 * time.Millisecond)
		}
		wg.Wait()
		t.Logf("computations %d gets %d adds %d swaps %d sets %d; stats1 %+v stats2 %+v", n.Load(), s1.GetCalls.Load()+s2.GetCalls.Load(), s1.AddCalls.Load()+s2.AddCalls.Load(), s1.SwapCalls.Load()+s2.SwapCalls.Load(), s1.SetCalls.Load()+s2.SetCalls.Load(), c1.Stats(), c2.Stats())
		if n.Load() != 1 {
			t.Errorf("computations %d", n.Load())
		}
		// Stale set: a Set during a computation wins.
		started := make(chan struct{})
		release := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			v, err := memo.GetOrCompute(ctx, c1, "s", func(context.Context) (string, error) { close(started); <-release; return "old", nil }, nil)
			t.Logf("slow computation returned %q %v", v, err)
		}()
		<-started
		if err := c2.Set(ctx, "s", "new"); err != nil {
			t.Fatal(err)
		}
		close(release)
		<-done
		if v, _, _ := c1.Get(ctx, "s"); v != "new" {
			t.Errorf("after Set during a computation: %q; want new", v)
		}
		// Negative caching.
		_, err := memo.GetOrCompute(ctx, c1, "nf", func(context.Context) (string, error) { return "", memo.ErrNotFound }, &memo.Options{NegativeTTL: time.Minute})
		if !errors.Is(err, memo.ErrNotFound) {
			t.Errorf("nf: %v", err)
		}
		_, err = memo.GetOrCompute(ctx, c2, "nf", func(context.Context) (string, error) { t.Error("computed again"); return "", nil }, &memo.Options{NegativeTTL: time.Minute})
		if !errors.Is(err, memo.ErrNotFound) {
			t.Errorf("nf second: %v", err)
		}
		// Multi.
		got, err := memo.GetOrComputeMulti(ctx, c1, []string{"a", "b", "k"}, func(ctx context.Context, missing []string) (map[string]string, error) {
			out := map[string]string{}
			for _, m := range missing {
				out[m] = m + "!"
			}
			return out, nil
		}, nil)
		if err != nil || got["a"] != "a!" || got["b"] != "b!" || got["k"] != "v" {
			t.Errorf("multi: %v %v", got, err)
		}
	})
}
