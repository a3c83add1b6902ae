package typedcache_test

// The local tier while its bus is cut: the reader's bus client goes
// through a fault proxy (its Dialer dials the proxy); its reads and the
// writer do not, so that they reach Redis while the bus is down.

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/faultproxy"
	"github.com/typedcache/typedcache/internal/testing/testenv"
	"github.com/typedcache/typedcache/internal/testing/teststores"
)

// proxiedBus returns a Redis store, to be used as a bus, whose client
// dials Redis through p, with the pub/sub health check interval health.
func proxiedBus(t testing.TB, p *faultproxy.Proxy, health time.Duration) *redisstore.Store {
	t.Helper()
	var d net.Dialer
	client := redis.NewClient(&redis.Options{
		Addr:                  testenv.RedisAddr(t),
		ContextTimeoutEnabled: true, // as Check asks
		Dialer: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, p.Addr())
		},
	})
	t.Cleanup(func() { client.Close() })
	s := redisstore.New(client, &redisstore.Options{HealthCheckInterval: health})
	t.Cleanup(func() { s.Close() })
	return s
}

// cut cuts the connections through p and keeps them down: new ones are
// accepted and never answered. With reset, the connections in place are
// reset (the subscriber sees it at once); without, they go silent (the
// health check finds it).
func cut(p *faultproxy.Proxy, reset bool) {
	p.SetBlackhole(true)
	if reset {
		p.Reset()
	}
}

// While the bus is down, the reader serves its local values at most
// MaxStaleness, then bypasses its tier: its reads come from the store and
// see the writes made during the outage. When the bus is back, the tier is
// trusted again, and coherent.
func TestLocalBusOutage(t *testing.T) {
	const maxStaleness = 200 * time.Millisecond
	for _, reset := range []bool{true, false} {
		name := "silent"
		if reset {
			name = "reset"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			rs := teststores.Get(t, "redis")
			ns := teststores.Namespace("lout")
			p := faultproxy.Start(t, testenv.RedisAddr(t))
			w := localCache(t, rs.New(t), ns, cache.LocalOptions{})
			r := localCache(t, rs.New(t), ns, cache.LocalOptions{MaxStaleness: maxStaleness, Bus: proxiedBus(t, p, 100*time.Millisecond)})
			if err := w.Set(ctx, "k", 1); err != nil {
				t.Fatal(err)
			}
			held(t, r, "k", 1)

			cut(p, reset)
			start := time.Now()
			if err := w.Set(ctx, "k", 2); err != nil { // the reader misses its invalidation
				t.Fatal(err)
			}
			if err := readUntil(ctx, r, "k", "the store's 2 past MaxStaleness", func(v int64, found, _ bool) (bool, error) {
				return found && v == 2, nil
			}); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s cut: the reader saw the outage's write after %v (MaxStaleness %v)", name, time.Since(start).Round(time.Millisecond), maxStaleness)
			// The tier is bypassed: each read goes to the store, and
			// sees a write at once.
			for v := int64(3); v <= 5; v++ {
				if err := w.Set(ctx, "k", v); err != nil {
					t.Fatal(err)
				}
				if got, found, local, err := localRead(ctx, r, "k"); err != nil || !found || got != v || local {
					t.Fatalf("bus down past MaxStaleness: Get after a write of %d = %d (found %v, local %v), %v; want %d from the store", v, got, found, local, err, v)
				}
			}

			p.SetBlackhole(false)
			held(t, r, "k", 5) // the tier serves again
			if err := w.Set(ctx, "k", 6); err != nil {
				t.Fatal(err)
			}
			if err := readUntil(ctx, r, "k", "6, invalidated over the bus", func(v int64, found, _ bool) (bool, error) {
				return found && v == 6, nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A value held before an outage shorter than MaxStaleness and changed
// during it is served during the outage (its invalidation is lost), and
// not after the bus is back: the tier is cleared before it is trusted.
func TestLocalClearedOnReconnect(t *testing.T) {
	ctx := context.Background()
	rs := teststores.Get(t, "redis")
	ns := teststores.Namespace("lout")
	p := faultproxy.Start(t, testenv.RedisAddr(t))
	w := localCache(t, rs.New(t), ns, cache.LocalOptions{})
	r := localCache(t, rs.New(t), ns, cache.LocalOptions{MaxStaleness: time.Hour, Bus: proxiedBus(t, p, 100*time.Millisecond)})
	for i := range 3 {
		if err := w.Set(ctx, "k"+strconv.Itoa(i), 1); err != nil {
			t.Fatal(err)
		}
		held(t, r, "k"+strconv.Itoa(i), 1)
	}

	cut(p, true)
	for i := range 3 {
		if err := w.Set(ctx, "k"+strconv.Itoa(i), 2); err != nil {
			t.Fatal(err)
		}
	}
	// Within MaxStaleness (an hour) the tier serves what it holds: the
	// invalidations were lost.
	if v, found, local, err := localRead(ctx, r, "k0"); err != nil || !found || v != 1 || !local {
		t.Fatalf("bus cut, within MaxStaleness: Get = %d (found %v, local %v), %v; want the local 1", v, found, local, err)
	}

	p.SetBlackhole(false)
	for i := range 3 {
		k := "k" + strconv.Itoa(i)
		if err := readUntil(ctx, r, k, "2 once the bus is back", func(v int64, found, _ bool) (bool, error) {
			if found && v != 1 && v != 2 {
				return false, fmt.Errorf("%s = %d; want 1, then 2", k, v)
			}
			return found && v == 2, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// held waits until the local tier of r serves v for k.
func held(t *testing.T, r *cache.Cache[string, int64], k string, v int64) {
	t.Helper()
	if err := readUntil(context.Background(), r, k, "the local tier serves "+strconv.FormatInt(v, 10), func(got int64, found, local bool) (bool, error) {
		return found && got == v && local, nil
	}); err != nil {
		t.Fatal(err)
	}
}
