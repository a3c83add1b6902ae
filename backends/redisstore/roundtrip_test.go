package redisstore_test

import (
	"context"
	"encoding/hex"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// clusterWithHooks returns a Cluster client whose node clients count the
// commands and pipelines they send, and the counter.
func clusterWithHooks(t *testing.T) (*redis.ClusterClient, *counter) {
	t.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: testenv.RedisClusterAddrs(t)})
	t.Cleanup(func() { _ = c.Close() })
	cnt := newCounter()
	c.OnNewNode(func(node *redis.Client) { node.AddHook(cnt.hook(node.Options().Addr)) })
	return c, cnt
}

// masters returns the addresses of the Cluster's masters.
func masters(t *testing.T, c *redis.ClusterClient) []string {
	t.Helper()
	var mu sync.Mutex
	var addrs []string
	err := c.ForEachMaster(t.Context(), func(_ context.Context, node *redis.Client) error {
		mu.Lock()
		addrs = append(addrs, node.Options().Addr)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

// spreadKeys returns n keys under prefix, and fails unless they fall on
// every master.
func spreadKeys(t *testing.T, c *redis.ClusterClient, prefix string, n int) []string {
	t.Helper()
	keys := make([]string, n)
	seen := map[string]bool{}
	for i := range keys {
		keys[i] = prefix + "k" + string(rune('a'+i%26)) + hex.EncodeToString([]byte{byte(i)})
		node, err := c.MasterForKey(t.Context(), keys[i])
		if err != nil {
			t.Fatal(err)
		}
		seen[node.Options().Addr] = true
	}
	if want := len(masters(t, c)); len(seen) != want {
		t.Fatalf("%d keys fall on %d masters; want all %d", n, len(seen), want)
	}
	return keys
}

// TestGetMultiCluster reads 100 keys spread over every master.
func TestGetMultiCluster(t *testing.T) {
	c := newClient(t, clusterClient(testenv.RedisClusterAddrs(t))).(*redis.ClusterClient)
	store := newStore(t, c)
	ctx := t.Context()
	prefix := uniquePrefix(t)
	t.Cleanup(func() { _ = store.Clear(context.Background(), prefix) })
	keys := spreadKeys(t, c, prefix, 100)
	var items []cache.Item
	for i, k := range keys {
		if i%3 != 0 {
			items = append(items, cache.Item{Key: k, Value: []byte(k), TTL: time.Minute})
		}
	}
	if err := store.SetMulti(ctx, items); err != nil {
		t.Fatalf("SetMulti: %v", err)
	}
	vals, err := store.GetMulti(ctx, keys)
	if err != nil {
		t.Fatalf("GetMulti: %v", err)
	}
	if len(vals) != len(keys) {
		t.Fatalf("GetMulti: got %d values; want %d", len(vals), len(keys))
	}
	for i, k := range keys {
		switch {
		case i%3 == 0 && vals[i] != nil:
			t.Errorf("GetMulti[%d] (%q): got %q; want a miss", i, k, vals[i])
		case i%3 != 0 && string(vals[i]) != k:
			t.Errorf("GetMulti[%d] (%q): got %q; want %q", i, k, vals[i], k)
		}
	}
	n, err := store.Delete(ctx, keys...)
	if err != nil || n != len(items) {
		t.Errorf("Delete: got %d, %v; want %d", n, err, len(items))
	}
}

// TestRoundTripsCluster proves with per-node hooks that GetMulti, SetMulti
// and Delete of 100 keys cost one pipeline per master and nothing else:
// GetMulti's a pipeline of GETs, the writes' a transaction (never sent
// again after a lost reply) running scripts/batch.lua over the master's
// keys.
func TestRoundTripsCluster(t *testing.T) {
	c, cnt := clusterWithHooks(t)
	store := newStore(t, c)
	ctx := t.Context()
	prefix := uniquePrefix(t)
	t.Cleanup(func() { _ = store.Clear(context.Background(), prefix) })
	keys := spreadKeys(t, c, prefix, 100)
	items := make([]cache.Item, len(keys))
	for i, k := range keys {
		items[i] = cache.Item{Key: k, Value: []byte("v"), TTL: time.Minute}
	}
	// Warm up: node clients, connections, the slot table, and the batch
	// script in every master's script cache.
	if _, err := store.GetMulti(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if err := store.SetMulti(ctx, items); err != nil {
		t.Fatal(err)
	}
	want := masters(t, c)

	ops := []struct {
		name  string
		run   func() error
		cmds  int            // commands in all the pipelines
		names map[string]int // their names
	}{
		{"SetMulti", func() error { return store.SetMulti(ctx, items) }, 3 * len(want), map[string]int{"multi": len(want), "evalsha": len(want), "exec": len(want)}},
		{"GetMulti", func() error { _, err := store.GetMulti(ctx, keys); return err }, len(keys), map[string]int{"get": len(keys)}},
		{"Delete", func() error { _, err := store.Delete(ctx, keys...); return err }, 3 * len(want), map[string]int{"multi": len(want), "evalsha": len(want), "exec": len(want)}},
	}
	for _, op := range ops {
		cnt.reset()
		if err := op.run(); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		got := cnt.snapshot()
		if len(got.pipelines) != len(want) {
			t.Errorf("%s: pipelines sent to %d nodes (%v); want one to each of the %d masters", op.name, len(got.pipelines), got.pipelines, len(want))
		}
		total := 0
		for _, addr := range want {
			if got.pipelines[addr] != 1 {
				t.Errorf("%s: %d pipelines to master %s; want 1", op.name, got.pipelines[addr], addr)
			}
			total += got.pipelineCmds[addr]
		}
		if total != op.cmds {
			t.Errorf("%s: %d commands in the pipelines; want %d", op.name, total, op.cmds)
		}
		if !maps.Equal(got.pipelineNames, op.names) {
			t.Errorf("%s: commands in the pipelines %v; want %v", op.name, got.pipelineNames, op.names)
		}
		if len(got.commands) != 0 {
			t.Errorf("%s: single commands %v; want none", op.name, got.commands)
		}
	}
}

// TestRoundTripsSingle proves with a hook that on one server GetMulti is
// one command, and SetMulti and Delete one transaction each.
func TestRoundTripsSingle(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	cnt := newCounter()
	c.AddHook(cnt.hook(srv.Addr()))
	store := newStore(t, c)
	ctx := t.Context()
	// Warm up: the connection's handshake goes through the hooks too.
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 100)
	items := make([]cache.Item, len(keys))
	for i := range keys {
		keys[i] = "k" + hex.EncodeToString([]byte{byte(i)})
		items[i] = cache.Item{Key: keys[i], Value: []byte("v"), TTL: time.Minute}
	}
	tests := []struct {
		name      string
		run       func() error
		commands  map[string]int
		pipelines int
		names     map[string]int // commands in the pipelines
	}{
		{"SetMulti", func() error { return store.SetMulti(ctx, items) }, map[string]int{}, 1, map[string]int{"multi": 1, "set": len(keys), "exec": 1}},
		{"GetMulti", func() error { _, err := store.GetMulti(ctx, keys); return err }, map[string]int{"mget": 1}, 0, map[string]int{}},
		{"Delete", func() error { _, err := store.Delete(ctx, keys...); return err }, map[string]int{}, 1, map[string]int{"multi": 1, "unlink": 1, "exec": 1}},
	}
	for _, tt := range tests {
		cnt.reset()
		if err := tt.run(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := cnt.snapshot()
		if got.pipelines[srv.Addr()] != tt.pipelines {
			t.Errorf("%s: %d pipelines; want %d", tt.name, got.pipelines[srv.Addr()], tt.pipelines)
		}
		if !maps.Equal(got.pipelineNames, tt.names) {
			t.Errorf("%s: commands in the pipelines %v; want %v", tt.name, got.pipelineNames, tt.names)
		}
		if len(got.commands) != len(tt.commands) {
			t.Errorf("%s: commands %v; want %v", tt.name, got.commands, tt.commands)
		}
		for name, n := range tt.commands {
			if got.commands[name] != n {
				t.Errorf("%s: %d %s commands; want %d", tt.name, got.commands[name], name, n)
			}
		}
	}
}

// counter counts what clients send, through hooks.
type counter struct {
	mu sync.Mutex
	counts
}

type counts struct {
	commands      map[string]int // command name -> count, outside pipelines
	pipelines     map[string]int // node address -> pipelines
	pipelineCmds  map[string]int // node address -> commands in pipelines
	pipelineNames map[string]int // command name -> count, in pipelines
}

func newCounter() *counter {
	c := &counter{}
	c.reset()
	return c
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = counts{commands: map[string]int{}, pipelines: map[string]int{}, pipelineCmds: map[string]int{}, pipelineNames: map[string]int{}}
}

func (c *counter) snapshot() counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return counts{
		commands:      maps.Clone(c.commands),
		pipelines:     maps.Clone(c.pipelines),
		pipelineCmds:  maps.Clone(c.pipelineCmds),
		pipelineNames: maps.Clone(c.pipelineNames),
	}
}

func (c *counter) hook(addr string) redis.Hook { return &countHook{c: c, addr: addr} }

type countHook struct {
	c    *counter
	addr string
}

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.c.mu.Lock()
		h.c.commands[cmd.Name()]++
		h.c.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.c.mu.Lock()
		h.c.pipelines[h.addr]++
		h.c.pipelineCmds[h.addr] += len(cmds)
		for _, cmd := range cmds {
			h.c.pipelineNames[cmd.Name()]++
		}
		h.c.mu.Unlock()
		return next(ctx, cmds)
	}
}

// TestClusterReleasePropagates checks that the release DeleteIfEqual
// publishes from its script on the key's master reaches a subscriber
// connected to every other master: classic pub/sub is cluster-wide, so the
// store's one pub/sub connection may be to any node.
func TestClusterReleasePropagates(t *testing.T) {
	c := newClient(t, clusterClient(testenv.RedisClusterAddrs(t))).(*redis.ClusterClient)
	store := newStore(t, c)
	ctx := t.Context()
	key := uniquePrefix(t) + "lock"
	owner, err := c.MasterForKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var subs []*redis.PubSub
	for _, addr := range masters(t, c) {
		if addr == owner.Options().Addr {
			continue
		}
		node := newClient(t, singleClient(addr)).(*redis.Client)
		ps := node.Subscribe(ctx, store.Channel(key))
		t.Cleanup(func() { _ = ps.Close() })
		if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
			t.Fatalf("SUBSCRIBE on %s: %v", addr, err)
		}
		subs = append(subs, ps)
	}
	if len(subs) == 0 {
		t.Fatal("no master other than the key's")
	}
	if err := store.Set(ctx, key, []byte("tok"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if ok, err := store.DeleteIfEqual(ctx, key, []byte("tok")); err != nil || !ok {
		t.Fatalf("DeleteIfEqual: got %v, %v; want true", ok, err)
	}
	for _, ps := range subs {
		rctx, cancel := context.WithTimeout(ctx, bound)
		msg, err := ps.ReceiveMessage(rctx)
		cancel()
		if err != nil || msg.Channel != store.Channel(key) {
			t.Errorf("subscriber on another master: got %v, %v; want a message on %q", msg, err, store.Channel(key))
		}
	}
}
