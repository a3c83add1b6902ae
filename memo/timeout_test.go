package memo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
	"github.com/typedcache/typedcache/memo"
)

// Every store call of memo is bounded by the cache's Timeout: against a
// Redis that accepts connections and never answers, with a background
// context, GetOrCompute with FailOpen returns a computed value, and
// without it an error, within a few Timeouts, not go-redis's own read
// timeout (it took 4.4–5.4 s before memo went through the Cache's Door).
func TestStoreCallsBoundedByTimeout(t *testing.T) {
	srv := testenv.StartUnresponsive(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	store := redisstore.New(client, nil)
	t.Cleanup(func() { store.Close() })
	const timeout = 200 * time.Millisecond
	c := cache.New[string, string](store, &cache.Options[string, string]{Timeout: timeout, TTL: time.Minute})
	ctx := context.Background()
	compute := func(context.Context) (string, error) { return "computed", nil }
	const limit = 4*timeout + 2*time.Second // slack for a loaded machine
	calls := []struct {
		name string
		run  func() (string, error)
		want string // "" for an error
	}{
		{"FailOpen", func() (string, error) {
			return memo.GetOrCompute(ctx, c, "k", compute, &memo.Options{FailOpen: true})
		}, "computed"},
		{"no FailOpen", func() (string, error) { return memo.GetOrCompute(ctx, c, "k", compute, nil) }, ""},
		{"multi, FailOpen", func() (string, error) {
			m, err := memo.GetOrComputeMulti(ctx, c, []string{"k"}, func(context.Context, []string) (map[string]string, error) {
				return map[string]string{"k": "computed"}, nil
			}, &memo.Options{FailOpen: true})
			return m["k"], err
		}, "computed"},
	}
	for _, call := range calls {
		start := time.Now()
		v, err := call.run()
		if d := time.Since(start); d > limit {
			t.Errorf("%s took %v with Timeout %v; want within %v", call.name, d, timeout, limit)
		}
		switch {
		case call.want != "" && (err != nil || v != call.want):
			t.Errorf("%s: got %q, %v; want %q", call.name, v, err, call.want)
		case call.want == "" && !errors.Is(err, context.DeadlineExceeded):
			t.Errorf("%s: got %q, %v; want an error matching DeadlineExceeded", call.name, v, err)
		}
	}
}
