package redisstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/internal/testing/faultproxy"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// deployment is a private Redis deployment: the store under test reaches
// it through a fault proxy per server (ps), the direct client without.
type deployment struct {
	name  string
	start func(t *testing.T, ps *proxies) (proxied, direct redis.UniversalClient)
}

func deployments() []deployment {
	return []deployment{
		{"single", func(t *testing.T, ps *proxies) (redis.UniversalClient, redis.UniversalClient) {
			srv := testenv.StartRedis(t)
			return newClient(t, func() redis.UniversalClient {
					return redis.NewClient(&redis.Options{Addr: srv.Addr(), Dialer: ps.dial})
				}),
				newClient(t, singleClient(srv.Addr()))
		}},
		{"cluster", func(t *testing.T, ps *proxies) (redis.UniversalClient, redis.UniversalClient) {
			c := testenv.StartRedisCluster(t)
			return newClient(t, func() redis.UniversalClient {
					return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Dialer: ps.dial})
				}),
				newClient(t, clusterClient(c.Addrs()))
		}},
		{"ring", func(t *testing.T, ps *proxies) (redis.UniversalClient, redis.UniversalClient) {
			a, b := testenv.StartRedis(t), testenv.StartRedis(t)
			shards := map[string]string{"a": a.Addr(), "b": b.Addr()}
			return newClient(t, func() redis.UniversalClient {
					return redis.NewRing(&redis.RingOptions{Addrs: shards, Dialer: ps.dial})
				}),
				newClient(t, func() redis.UniversalClient { return redis.NewRing(&redis.RingOptions{Addrs: shards}) })
		}},
	}
}

// recorder records the calls of a bus subscription's callbacks, in order:
// "msg:<payload>", "state:true", "state:false".
type recorder struct{ events chan string }

func newRecorder() *recorder { return &recorder{events: make(chan string, 1000)} }

func (r *recorder) handle(msg []byte)    { r.events <- "msg:" + string(msg) }
func (r *recorder) state(connected bool) { r.events <- fmt.Sprint("state:", connected) }
func (r *recorder) subscribe(t *testing.T, s *redisstore.Store, channel string) {
	t.Helper()
	stop, err := s.Subscribe(t.Context(), channel, r.handle, r.state)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", channel, err)
	}
	t.Cleanup(stop)
}

// want waits for the next event, which must be want.
func (r *recorder) want(t *testing.T, want, after string) {
	t.Helper()
	select {
	case got := <-r.events:
		if got != want {
			t.Fatalf("after %s: got the event %q; want %q", after, got, want)
		}
	case <-time.After(bound):
		t.Fatalf("after %s: no event within %v; want %q", after, bound, want)
	}
}

func publish(t *testing.T, s *redisstore.Store, channel, msg string) {
	t.Helper()
	if err := s.Publish(t.Context(), channel, []byte(msg)); err != nil {
		t.Fatalf("Publish(%q, %q): %v", channel, msg, err)
	}
}

func releaseKey(t *testing.T, s *redisstore.Store, key string) {
	t.Helper()
	if err := s.Set(t.Context(), key, []byte("tok"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.DeleteIfEqual(t.Context(), key, []byte("tok")); err != nil || !ok {
		t.Fatalf("DeleteIfEqual(%q): got %v, %v; want true", key, ok, err)
	}
}

func wantWoken(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(bound):
		t.Fatalf("%s: the watcher was not woken within %v", what, bound)
	}
}

// sameShard returns a key other than key that a Ring keeps on the shard
// of key (any other key on another client).
func sameShard(t *testing.T, c redis.UniversalClient, key string) string {
	t.Helper()
	r, ok := c.(*redis.Ring)
	for i := 0; ; i++ {
		k := fmt.Sprintf("%s-%d", key, i)
		if !ok {
			return k
		}
		a, err := r.GetShardClientForKey(key)
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.GetShardClientForKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if a == b {
			return k
		}
	}
}

// interruption runs a test of the store's pub/sub connections through a
// fault: break breaks them and returns a function that repairs them (or
// nil). A bus subscription and a watch are in place before: the
// subscription must get state(false) and the watcher be woken, then
// state(true) once go-redis has reconnected and resubscribed, after which
// a message published and a release reach them again.
func interruption(t *testing.T, opts *redisstore.Options, brk func(t *testing.T, ps *proxies) (repair func())) {
	for _, d := range deployments() {
		t.Run(d.name, func(t *testing.T) {
			ps := newProxies(t)
			proxied, direct := d.start(t, ps)
			store := redisstore.New(proxied, opts)
			t.Cleanup(func() { _ = store.Close() })
			other := newStore(t, direct)
			prefix := uniquePrefix(t)
			channel, lock := prefix+"bus", prefix+"lock"

			rec := newRecorder()
			rec.subscribe(t, store, channel)
			woken, stop, err := store.Watch(t.Context(), lock)
			if err != nil {
				t.Fatalf("Watch: %v", err)
			}
			defer stop()
			publish(t, other, channel, "before")
			rec.want(t, "msg:before", "a message published before the fault")

			repair := brk(t, ps)
			rec.want(t, "state:false", "the fault")
			wantWoken(t, woken, "the fault")
			if repair != nil {
				repair()
			}
			rec.want(t, "state:true", "the interruption")
			publish(t, other, channel, "after")
			rec.want(t, "msg:after", "the reconnection")

			// A watch of a key on the same subscriber returns once go-redis
			// has resubscribed the lock's channel too (it resubscribes
			// before anything else), so the wake-ups of the interruption
			// are in: drop them, and only the release can wake the watcher.
			_, stop2, err := store.Watch(t.Context(), sameShard(t, proxied, lock))
			if err != nil {
				t.Fatalf("Watch after the interruption: %v", err)
			}
			defer stop2()
			select {
			case <-woken:
			default:
			}
			releaseKey(t, other, lock)
			wantWoken(t, woken, "a release after the interruption")

			select {
			case e := <-rec.events:
				t.Errorf("an event after the last message: %q; want none", e)
			default:
			}
		})
	}
}

// TestBusConnectionReset resets the store's connections (the pub/sub ones
// among them): the bus subscription gets state(false), the watcher is
// woken, and go-redis's reconnection and resubscription bring
// state(true), after which messages and releases arrive again. On a
// Cluster the subscription is sharded (SSUBSCRIBE, on the node of the
// channel's slot) and the watch classic, on connections of their own.
func TestBusConnectionReset(t *testing.T) {
	interruption(t, nil, func(t *testing.T, ps *proxies) func() {
		var resets int64
		ps.each(func(p *faultproxy.Proxy) {
			p.Reset()
			resets += p.Stats().Resets
		})
		if resets == 0 {
			t.Fatal("no proxied connection was reset: the test proves nothing")
		}
		return nil
	})
}

// TestBusHealthCheck makes the servers stop answering (a blackhole: the
// connections stay open and what is sent is lost): only the health check
// can notice, within two intervals; the subscription gets state(false).
// Once the servers answer again, state(true) follows.
func TestBusHealthCheck(t *testing.T) {
	interruption(t, &redisstore.Options{HealthCheckInterval: 100 * time.Millisecond}, func(t *testing.T, ps *proxies) func() {
		ps.each(func(p *faultproxy.Proxy) { p.SetBlackhole(true) })
		return func() { ps.each(func(p *faultproxy.Proxy) { p.SetBlackhole(false) }) }
	})
}

// TestBusSlotMoved moves the hash slot of a sharded channel to another
// node of a Cluster: the old node ends the subscription by itself
// (SUNSUBSCRIBE), the subscription gets state(false), and the store
// subscribes again on the new node, with state(true).
func TestBusSlotMoved(t *testing.T) {
	c := testenv.StartRedisCluster(t)
	client := newClient(t, clusterClient(c.Addrs()))
	cc := client.(*redis.ClusterClient)
	store := redisstore.New(client, &redisstore.Options{HealthCheckInterval: 100 * time.Millisecond})
	t.Cleanup(func() { _ = store.Close() })
	other := newStore(t, newClient(t, clusterClient(c.Addrs())))
	ctx := t.Context()
	channel := uniquePrefix(t) + "bus"

	rec := newRecorder()
	rec.subscribe(t, store, channel)
	publish(t, other, channel, "before")
	rec.want(t, "msg:before", "a message published before the move")

	slot, err := cc.ClusterKeySlot(ctx, channel).Result()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{} // address -> node id
	for _, n := range c.Nodes {
		nc := redis.NewClient(&redis.Options{Addr: n.Addr()})
		id, err := nc.ClusterMyID(ctx).Result()
		_ = nc.Close()
		if err != nil {
			t.Fatal(err)
		}
		ids[n.Addr()] = id
	}
	master, err := cc.MasterForKey(ctx, channel)
	if err != nil {
		t.Fatal(err)
	}
	from := master.Options().Addr
	to := ""
	for addr := range ids {
		if addr != from {
			to = addr
			break
		}
	}
	// An empty slot moves with CLUSTER SETSLOT ... NODE on every node, the
	// new owner first.
	order := []string{to, from}
	for addr := range ids {
		if addr != to && addr != from {
			order = append(order, addr)
		}
	}
	for _, addr := range order {
		n := redis.NewClient(&redis.Options{Addr: addr})
		err := n.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", ids[to]).Err()
		_ = n.Close()
		if err != nil {
			t.Fatalf("CLUSTER SETSLOT %d NODE %s on %s: %v", slot, ids[to], addr, err)
		}
	}
	rec.want(t, "state:false", "the move of the channel's slot")
	rec.want(t, "state:true", "the move of the channel's slot")
	// The publisher may still send to the old node, which redirects it.
	publish(t, other, channel, "after")
	rec.want(t, "msg:after", "the resubscription on the new node")
}

// TestBusResetIntoBlackhole resets the store's pub/sub connection while
// the server accepts new connections and never answers (a hung server, a
// half-open network). go-redis replaces a failed connection within the
// read that failed, and its handshake on the new one waits up to the
// client's ReadTimeout, here a minute: the subscription must get
// state(false) all the same, within the health check's bound, and
// state(true) once the server answers again.
func TestBusResetIntoBlackhole(t *testing.T) {
	srv := testenv.StartRedis(t)
	ps := newProxies(t)
	proxied := newClient(t, func() redis.UniversalClient {
		return redis.NewClient(&redis.Options{Addr: srv.Addr(), Dialer: ps.dial, ReadTimeout: time.Minute, DialTimeout: time.Minute, ContextTimeoutEnabled: true})
	})
	store := redisstore.New(proxied, &redisstore.Options{HealthCheckInterval: 100 * time.Millisecond})
	t.Cleanup(func() { _ = store.Close() })
	other := newStore(t, newClient(t, singleClient(srv.Addr())))
	channel := uniquePrefix(t) + "bus"

	rec := newRecorder()
	rec.subscribe(t, store, channel)
	publish(t, other, channel, "before")
	rec.want(t, "msg:before", "a message published before the fault")

	var resets int64
	ps.each(func(p *faultproxy.Proxy) {
		p.SetBlackhole(true)
		p.Reset()
		resets += p.Stats().Resets
	})
	if resets == 0 {
		t.Fatal("no proxied connection was reset: the test proves nothing")
	}
	rec.want(t, "state:false", "a reset, with new connections unanswered")
	ps.each(func(p *faultproxy.Proxy) { p.SetBlackhole(false) })
	rec.want(t, "state:true", "the interruption")
	publish(t, other, channel, "after")
	rec.want(t, "msg:after", "the reconnection")
}
