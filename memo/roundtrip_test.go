package memo_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/memo"
)

// What memo costs on Redis, counted by a go-redis hook on every node
// client (each round trip is a command or a pipeline sent to a node):
//
//   - a miss without contention costs the computing process 3 round trips:
//     GET (the miss), MULTI/SET NX/EXEC (its lease entry), and
//     MULTI/EVALSHA/EXEC (the script that swaps its lease for the value and
//     wakes the waiters), all to the key's node;
//   - a hit, with negative caching and refresh-ahead on, costs one GET to
//     one node: the not-found flag and the time of writing are in the
//     entry's header, not in marker keys.
func TestRoundTrips(t *testing.T) {
	tests := []struct {
		name   string
		client func(t *testing.T, cnt *rtCounter) redis.UniversalClient
	}{
		{"redis", func(t *testing.T, cnt *rtCounter) redis.UniversalClient {
			addr := testenv.RedisAddr(t)
			c := redis.NewClient(&redis.Options{Addr: addr})
			c.AddHook(cnt.hook(addr))
			return c
		}},
		{"cluster", func(t *testing.T, cnt *rtCounter) redis.UniversalClient {
			c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: testenv.RedisClusterAddrs(t)})
			c.OnNewNode(func(node *redis.Client) { node.AddHook(cnt.hook(node.Options().Addr)) })
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			cnt := newRTCounter()
			client := tt.client(t, cnt)
			store := redisstore.New(client, nil)
			t.Cleanup(func() {
				store.Close()
				client.Close()
			})
			// One hash tag: every key of the test is on one node.
			c := newCache[string](store, teststores.Namespace("memort"), time.Minute)
			opts := &memo.Options{NegativeTTL: time.Minute, RefreshAhead: 0.5}
			compute := func(context.Context) (string, error) { return "value", nil }

			// Warm up: connections (their handshakes go through the
			// hooks), the Cluster's slot table, and the swap script in the
			// node's script cache (the first EVALSHA fails with NOSCRIPT
			// and the store sends EVAL).
			if _, err := memo.GetOrCompute(ctx, c, "{rt}warm", compute, opts); err != nil {
				t.Fatal(err)
			}

			cnt.reset()
			if v, err := memo.GetOrCompute(ctx, c, "{rt}miss", compute, opts); err != nil || v != "value" {
				t.Fatalf("miss: %q, %v", v, err)
			}
			miss := cnt.snapshot()
			t.Logf("miss: commands %v, pipelines %v: %v", miss.commands, miss.pipelines, miss.pipelineNames)
			if got := miss.roundTrips(); got > 3 {
				t.Errorf("miss: %d round trips; want at most 3", got)
			}
			if want := map[string]int{"get": 1}; !maps.Equal(miss.commands, want) {
				t.Errorf("miss: commands %v; want %v", miss.commands, want)
			}
			if want := map[string]int{"multi": 2, "set": 1, "evalsha": 1, "exec": 2}; !maps.Equal(miss.pipelineNames, want) {
				t.Errorf("miss: commands in pipelines %v; want %v", miss.pipelineNames, want)
			}
			if len(miss.nodes) != 1 {
				t.Errorf("miss: sent to nodes %v; want one", miss.nodes)
			}

			for _, k := range []string{"{rt}miss", "{rt}none"} {
				if k == "{rt}none" {
					// A cached not-found answer.
					_, err := memo.GetOrCompute(ctx, c, k, func(context.Context) (string, error) { return "", memo.ErrNotFound }, opts)
					if !errors.Is(err, memo.ErrNotFound) {
						t.Fatal(err)
					}
				}
				cnt.reset()
				_, err := memo.GetOrCompute(ctx, c, k, compute, opts)
				if k == "{rt}none" && !errors.Is(err, memo.ErrNotFound) || k != "{rt}none" && err != nil {
					t.Fatalf("hit of %s: %v", k, err)
				}
				hit := cnt.snapshot()
				if want := map[string]int{"get": 1}; !maps.Equal(hit.commands, want) || hit.roundTrips() != 1 || len(hit.nodes) != 1 {
					t.Errorf("hit of %s: commands %v, pipelines %v, nodes %v; want one GET to one node", k, hit.commands, hit.pipelineNames, hit.nodes)
				}
			}
			if st := c.Stats(); st.Hits != 1 || st.NegativeHits != 1 || st.Refreshes != 0 {
				t.Fatalf("stats = %+v; want 1 hit and 1 negative hit, no refresh", st)
			}
		})
	}
}

// On every store (memory, Redis, Cluster, memcached), a hit with negative
// caching, refresh-ahead, fail-safe, the timeouts and jitter on is one
// store call: one Get of the key, for a value and for a cached "not found"
// alike.
func TestHitIsOneStoreCall(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		cs := teststores.NewCounting(s)
		c := newCache[string](cs, ns, time.Minute)
		opts := &memo.Options{
			NegativeTTL: time.Minute, RefreshAhead: 0.5, FailSafeMax: time.Hour,
			SoftTimeout: time.Second, HardTimeout: 5 * time.Second, Jitter: 0.1, FailOpen: true,
		}
		compute := func(_ context.Context, k string) (string, error) {
			if k == "none" {
				return "", memo.ErrNotFound
			}
			return "value", nil
		}
		get := func(k string) error {
			_, err := memo.GetOrCompute(ctx, c, k, func(ctx context.Context) (string, error) { return compute(ctx, k) }, opts)
			if k == "none" && errors.Is(err, memo.ErrNotFound) {
				return nil
			}
			return err
		}
		calls := func() (gets, others int64) {
			others = cs.LockGetCalls.Load() + cs.TTLCalls.Load() + cs.SetCalls.Load() + cs.AddCalls.Load() +
				cs.DeleteCalls.Load() + cs.DeleteIfEqualCalls.Load() + cs.SwapCalls.Load() +
				cs.GetMultiCalls.Load() + cs.SetMultiCalls.Load()
			return cs.GetCalls.Load(), others
		}
		for _, k := range []string{"value", "none"} {
			if err := get(k); err != nil { // the miss that fills it
				t.Fatal(err)
			}
		}
		const hits = 10
		gets0, others0 := calls()
		if gets0 < 2 || others0 == 0 {
			t.Fatalf("the misses made %d Gets and %d other calls; the counting store counts nothing", gets0, others0)
		}
		for range hits {
			for _, k := range []string{"value", "none"} {
				if err := get(k); err != nil {
					t.Fatal(err)
				}
			}
		}
		gets, others := calls()
		if gets-gets0 != 2*hits || others != others0 {
			t.Errorf("%d hits made %d Gets and %d other store calls; want %d Gets and nothing else", 2*hits, gets-gets0, others-others0, 2*hits)
		}
		if st := c.Stats(); st.Hits != hits || st.NegativeHits != hits {
			t.Errorf("stats = %+v; want %d hits and %d negative hits", st, hits, hits)
		}
	})
}

// rtCounter counts what clients send, through hooks.
type rtCounter struct {
	mu sync.Mutex
	rtCounts
}

type rtCounts struct {
	commands      map[string]int // command name -> count, outside pipelines
	pipelines     int
	pipelineNames map[string]int // command name -> count, in pipelines
	nodes         map[string]int // node address -> round trips
}

func (c rtCounts) roundTrips() int {
	n := 0
	for _, v := range c.nodes {
		n += v
	}
	return n
}

func newRTCounter() *rtCounter {
	c := &rtCounter{}
	c.reset()
	return c
}

func (c *rtCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rtCounts = rtCounts{commands: map[string]int{}, pipelineNames: map[string]int{}, nodes: map[string]int{}}
}

func (c *rtCounter) snapshot() rtCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return rtCounts{
		commands:      maps.Clone(c.commands),
		pipelines:     c.pipelines,
		pipelineNames: maps.Clone(c.pipelineNames),
		nodes:         maps.Clone(c.nodes),
	}
}

func (c *rtCounter) hook(addr string) redis.Hook { return &rtHook{c: c, addr: addr} }

type rtHook struct {
	c    *rtCounter
	addr string
}

func (h *rtHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *rtHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.c.mu.Lock()
		h.c.commands[cmd.Name()]++
		h.c.nodes[h.addr]++
		h.c.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *rtHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.c.mu.Lock()
		h.c.pipelines++
		h.c.nodes[h.addr]++
		for _, cmd := range cmds {
			h.c.pipelineNames[cmd.Name()]++
		}
		h.c.mu.Unlock()
		return next(ctx, cmds)
	}
}
