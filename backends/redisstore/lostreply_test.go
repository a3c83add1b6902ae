package redisstore_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/faultproxy"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// proxies puts a fault proxy in front of every server a client dials: set
// dial as the client's Dialer. A Cluster client dials the nodes it learns
// from the Cluster, each through a proxy of its own.
type proxies struct {
	t    testing.TB
	mu   sync.Mutex
	m    map[string]*faultproxy.Proxy
	rate float64 // DropReplies of every proxy, those to come included
}

func newProxies(t testing.TB) *proxies { return &proxies{t: t, m: map[string]*faultproxy.Proxy{}} }

func (ps *proxies) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ps.mu.Lock()
	p := ps.m[addr]
	if p == nil {
		var err error
		if p, err = faultproxy.New(addr); err != nil {
			ps.mu.Unlock()
			return nil, err
		}
		ps.m[addr] = p
		ps.t.Cleanup(func() { p.Close() })
		if ps.rate > 0 {
			p.DropReplies(ps.rate, isTx)
		}
	}
	ps.mu.Unlock()
	var d net.Dialer
	return d.DialContext(ctx, network, p.Addr())
}

func (ps *proxies) each(f func(p *faultproxy.Proxy)) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.m {
		f(p)
	}
}

// isTx matches the chunk of a transaction, the way the store sends every
// write.
var isTx = faultproxy.Contains("exec", "EXEC")

// dropReplies returns a Harness.DropReplies that loses the replies of one
// write in twenty through ps.
func (ps *proxies) dropReplies(t *testing.T) func() {
	ps.setRate(0.05)
	return func() { ps.setRate(0) }
}

func (ps *proxies) setRate(rate float64) {
	ps.mu.Lock()
	ps.rate = rate
	ps.mu.Unlock()
	ps.each(func(p *faultproxy.Proxy) { p.DropReplies(rate, isTx) })
}

// dropped counts the replies the proxies dropped.
func (ps *proxies) dropped() int64 {
	var n int64
	ps.each(func(p *faultproxy.Proxy) { n += p.Stats().Dropped })
	return n
}

// TestLostReply loses the reply of each write of the store once, on a
// single server and on a Cluster, both with go-redis's default options
// (MaxRetries 3: a plain command whose reply is lost is sent again). Each
// write must fail with cache.ErrUncertain (not succeed, not report that
// an Add's own value exists, not report a conflict with its own write), and
// the server must have applied it at most once: an Increment of 1 leaves 1
// (or nothing, when the reply was lost before the transaction ran), never
// 2.
func TestLostReply(t *testing.T) {
	for _, topo := range []string{"single", "cluster"} {
		t.Run(topo, func(t *testing.T) {
			ps := newProxies(t)
			var direct, proxied redis.UniversalClient
			if topo == "single" {
				addr := testenv.RedisAddr(t)
				direct = newClient(t, singleClient(addr))
				proxied = newClient(t, func() redis.UniversalClient {
					return redis.NewClient(&redis.Options{Addr: addr, Dialer: ps.dial})
				})
			} else {
				addrs := testenv.RedisClusterAddrs(t)
				direct = newClient(t, clusterClient(addrs))
				proxied = newClient(t, func() redis.UniversalClient {
					return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Dialer: ps.dial})
				})
			}
			store := newStore(t, proxied)
			ctx := t.Context()
			// Connect to every server, so that each has its proxy.
			if err := redisstore.New(proxied, nil).Clear(ctx, "never-a-key-prefix"); err != nil {
				t.Fatal(err)
			}
			prefix := uniquePrefix(t)
			t.Cleanup(func() { _ = redisstore.New(direct, nil).Clear(context.Background(), prefix) })
			// Load every script on every node first: a lost reply must be
			// the reply of the write, not of an EVALSHA the server refused
			// (NOSCRIPT), which would leave nothing applied.
			warm := func(k string) string { return prefix + "warm-" + k }
			_ = store.CompareAndSwap(ctx, warm("cas"), []byte("v"), cache.AbsentToken(), time.Minute)
			_, _ = store.DeleteIfEqual(ctx, warm("cas"), []byte("v"))
			_, _ = store.ExtendIfEqual(ctx, warm("cas"), []byte("v"), time.Minute)
			_, _ = store.AddFenced(ctx, warm("fence"), []byte("v"), time.Minute)
			_, _ = store.Expire(ctx, warm("cas"), 0)
			_, _ = store.SwapIfEqual(ctx, warm("cas"), []byte("v"), []byte("w"), time.Minute)
			var items []cache.Item
			for i := range 64 { // keys on every node of a Cluster
				items = append(items, cache.Item{Key: warm(strconv.Itoa(i)), Value: []byte("v"), TTL: time.Minute})
			}
			if err := store.SetMulti(ctx, items); err != nil {
				t.Fatal(err)
			}
			if _, err := store.Delete(ctx, warm("0"), warm("1"), warm("2"), warm("3")); err != nil {
				t.Fatal(err)
			}
			get := func(k string) string {
				v, err := direct.Get(ctx, prefix+k).Result()
				if errors.Is(err, redis.Nil) {
					return "<absent>"
				}
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			set := func(k, v string) {
				if err := direct.Set(ctx, prefix+k, v, time.Minute).Err(); err != nil {
					t.Fatal(err)
				}
			}
			tests := []struct {
				name  string
				setup func()
				run   func() error
				check func() string // "" when the write was applied at most once
			}{
				{"Set", nil, func() error { return store.Set(ctx, prefix+"set", []byte("v"), time.Minute) },
					func() string { return atMostOnce(get("set"), "v", "<absent>") }},
				{"Add", nil, func() error { return store.Add(ctx, prefix+"add", []byte("v"), time.Minute) },
					func() string { return atMostOnce(get("add"), "v", "<absent>") }},
				{"Increment", nil, func() error { _, err := store.Increment(ctx, prefix+"n", 1); return err },
					func() string { return atMostOnce(get("n"), "1", "<absent>") }},
				{"Delete", func() { set("del", "v") }, func() error { _, err := store.Delete(ctx, prefix+"del"); return err },
					func() string { return atMostOnce(get("del"), "<absent>", "v") }},
				{"Expire", func() { set("exp", "v") }, func() error { _, err := store.Expire(ctx, prefix+"exp", time.Hour); return err },
					func() string {
						return ttlOnce(direct.PTTL(ctx, prefix+"exp").Val())
					}},
				{"CompareAndSwap", nil, func() error {
					return store.CompareAndSwap(ctx, prefix+"cas", []byte("v"), cache.AbsentToken(), time.Minute)
				}, func() string { return atMostOnce(get("cas"), "v", "<absent>") }},
				{"DeleteIfEqual", func() { set("die", "tok") }, func() error {
					_, err := store.DeleteIfEqual(ctx, prefix+"die", []byte("tok"))
					return err
				}, func() string { return atMostOnce(get("die"), "<absent>", "tok") }},
				{"ExtendIfEqual", func() { set("eie", "tok") }, func() error {
					_, err := store.ExtendIfEqual(ctx, prefix+"eie", []byte("tok"), time.Hour)
					return err
				}, func() string {
					return ttlOnce(direct.PTTL(ctx, prefix+"eie").Val())
				}},
				{"AddFenced", nil, func() error { _, err := store.AddFenced(ctx, prefix+"fence", []byte("tok"), time.Minute); return err },
					func() string { return atMostOnce(get("fence"), "tok", "<absent>") }},
				{"SwapIfEqual", func() { set("swap", "old") }, func() error {
					_, err := store.SwapIfEqual(ctx, prefix+"swap", []byte("old"), []byte("new"), time.Minute)
					return err
				}, func() string { return atMostOnce(get("swap"), "new", "old") }},
				{"Expire with no TTL", func() { set("per", "v") }, func() error { _, err := store.Expire(ctx, prefix+"per", 0); return err },
					func() string {
						if d := direct.PTTL(ctx, prefix+"per").Val(); d != -1 && (d <= 58*time.Second || d > time.Minute) {
							return "ttl " + d.String() + "; want none (persisted) or the minute it had"
						}
						return atMostOnce(get("per"), "v")
					}},
				{"Delete of several keys", func() { set("d1", "a"); set("d2", "b"); set("d3", "c") }, func() error {
					_, err := store.Delete(ctx, prefix+"d1", prefix+"d2", prefix+"d3")
					return err
				}, func() string {
					// On a Cluster the keys may be on several masters, each
					// with its transaction: any of them may have landed.
					for k, v := range map[string]string{"d1": "a", "d2": "b", "d3": "c"} {
						if msg := atMostOnce(get(k), "<absent>", v); msg != "" {
							return k + ": " + msg
						}
					}
					return ""
				}},
				{"SetMulti", nil, func() error {
					return store.SetMulti(ctx, []cache.Item{{Key: prefix + "m1", Value: []byte("a"), TTL: time.Minute}, {Key: prefix + "m2", Value: []byte("b"), TTL: time.Minute}})
				}, func() string {
					return atMostOnce(get("m1")+get("m2"), "ab", "<absent>b", "a<absent>", "<absent><absent>")
				}},
			}
			for _, tt := range tests {
				if tt.setup != nil {
					tt.setup()
				}
				before := ps.dropped()
				ps.each(func(p *faultproxy.Proxy) { p.DropNextReplies(1, isTx) })
				err := tt.run()
				ps.each(func(p *faultproxy.Proxy) { p.DropNextReplies(0, nil) })
				if ps.dropped() == before {
					t.Fatalf("%s: no reply was dropped: the test proves nothing", tt.name)
				}
				if !errors.Is(err, cache.ErrUncertain) {
					t.Errorf("%s with its reply lost: got error %v; want one matching cache.ErrUncertain", tt.name, err)
				}
				if msg := tt.check(); msg != "" {
					t.Errorf("%s with its reply lost: not applied at most once: %s", tt.name, msg)
				}
			}
		})
	}
}

// atMostOnce returns "" when got is one of the states of a write applied
// once (the first) or not applied: a lost reply may be lost before the
// server ran the whole transaction (its first reply came in a chunk of its
// own), but the write is never applied twice.
func atMostOnce(got string, states ...string) string {
	for _, s := range states {
		if got == s {
			return ""
		}
	}
	return "got " + got + "; want one of " + strings.Join(states, ", ")
}

// ttlOnce accepts the ttl of a key set with a minute and extended, at most
// once, to an hour.
func ttlOnce(d time.Duration) string {
	if d > 59*time.Minute || (d > 58*time.Second && d <= time.Minute) {
		return ""
	}
	return "ttl " + d.String()
}

// TestLostReplyRead: a read whose reply is lost is sent again (go-redis
// retries it), and succeeds.
func TestLostReplyRead(t *testing.T) {
	ps := newProxies(t)
	addr := testenv.RedisAddr(t)
	store := newStore(t, newClient(t, func() redis.UniversalClient {
		return redis.NewClient(&redis.Options{Addr: addr, Dialer: ps.dial})
	}))
	ctx := t.Context()
	key := uniquePrefix(t) + "k"
	if err := store.Set(ctx, key, []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	ps.each(func(p *faultproxy.Proxy) { p.DropNextReplies(1, faultproxy.Contains("get")) })
	v, err := store.Get(ctx, key)
	if err != nil || string(v) != "v" {
		t.Fatalf("Get with a lost reply: got %q, %v; want v", v, err)
	}
	if ps.dropped() != 1 {
		t.Fatalf("%d replies dropped; want 1", ps.dropped())
	}
}
