package redisstore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// finding is what a test expects of one *cache.SettingError.
type finding struct {
	setting, value, riskHas string
}

// findings splits the error of Check into its *cache.SettingError findings
// and the other errors.
func findings(t *testing.T, err error) (found []finding, others []error) {
	t.Helper()
	if err == nil {
		return nil, nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var se *cache.SettingError
		if !errors.As(e, &se) {
			others = append(others, e)
			continue
		}
		if !errors.Is(e, cache.ErrUnsafeConfig) {
			t.Errorf("finding %v does not match cache.ErrUnsafeConfig", e)
		}
		found = append(found, finding{setting: se.Setting, value: se.Value, riskHas: se.Risk})
	}
	return found, others
}

// wantFindings checks that err holds exactly the findings want, in order
// (a want's riskHas must be contained in the finding's Risk), and no other
// error.
func wantFindings(t *testing.T, err error, want ...finding) {
	t.Helper()
	got, others := findings(t, err)
	if len(others) > 0 {
		t.Fatalf("Check: errors that are no finding: %v", others)
	}
	if len(want) > 0 && !errors.Is(err, cache.ErrUnsafeConfig) {
		t.Errorf("errors.Is(%v, cache.ErrUnsafeConfig) = false; want true", err)
	}
	var se *cache.SettingError
	if len(want) > 0 && !errors.As(err, &se) {
		t.Errorf("errors.As(%v, *cache.SettingError) = false; want true", err)
	}
	match := len(got) == len(want)
	for i := 0; match && i < len(got); i++ {
		match = got[i].setting == want[i].setting && got[i].value == want[i].value &&
			strings.Contains(got[i].riskHas, want[i].riskHas)
	}
	if !match {
		t.Fatalf("Check: got findings %q; want %q (err: %v)", got, want, err)
	}
}

func policyFinding(policy, addr string) finding {
	return finding{"maxmemory-policy", policy, "server " + addr + " "}
}

var noCtxTimeout = finding{"ContextTimeoutEnabled", "false", "ContextTimeoutEnabled: true"}

// TestCheckPolicy runs Check against one private server whose eviction
// settings change between cases.
func TestCheckPolicy(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	client := timeoutClient(t, srv.Addr())
	store := newStore(t, client)
	tests := []struct {
		policy, maxmemory string
		want              []finding
	}{
		{"noeviction", "0", nil},
		{"noeviction", "64mb", nil},
		{"allkeys-lru", "0", nil}, // no memory limit: nothing is evicted
		{"allkeys-lru", "64mb", []finding{policyFinding("allkeys-lru", srv.Addr())}},
		{"allkeys-lfu", "64mb", []finding{policyFinding("allkeys-lfu", srv.Addr())}},
		{"allkeys-random", "64mb", []finding{policyFinding("allkeys-random", srv.Addr())}},
		{"volatile-lru", "64mb", []finding{policyFinding("volatile-lru", srv.Addr())}},
		{"volatile-ttl", "64mb", []finding{policyFinding("volatile-ttl", srv.Addr())}},
	}
	for _, tt := range tests {
		t.Run(tt.policy+"/"+tt.maxmemory, func(t *testing.T) {
			ctx := t.Context()
			if err := client.ConfigSet(ctx, "maxmemory-policy", tt.policy).Err(); err != nil {
				t.Fatal(err)
			}
			if err := client.ConfigSet(ctx, "maxmemory", tt.maxmemory).Err(); err != nil {
				t.Fatal(err)
			}
			wantFindings(t, store.Check(ctx), tt.want...)
		})
	}
}

// TestCheckStartedWithPolicy checks a server started with an evicting
// policy, as a user would configure it, through Cache.Check.
func TestCheckStartedWithPolicy(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t, "--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
	c := cache.New[string, string](newStore(t, timeoutClient(t, srv.Addr())), nil)
	err := c.Check(t.Context())
	t.Logf("Check: %v", err)
	wantFindings(t, err, policyFinding("allkeys-lru", srv.Addr()))
	var se *cache.SettingError
	if !errors.As(err, &se) || !strings.Contains(se.Risk, "second holder") {
		t.Errorf("Risk of %v: want it to say that a second holder gets in", err)
	}
}

// TestCheckClient checks the client's options, on the shared servers
// (stock settings: noeviction).
func TestCheckClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		client func(t *testing.T) redis.UniversalClient
		want   []finding
	}{
		{"Client", func(t *testing.T) redis.UniversalClient {
			return redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t), ContextTimeoutEnabled: true})
		}, nil},
		{"ClientNoContextTimeout", func(t *testing.T) redis.UniversalClient {
			return redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
		}, []finding{noCtxTimeout}},
		{"Cluster", func(t *testing.T) redis.UniversalClient {
			return redis.NewClusterClient(&redis.ClusterOptions{Addrs: testenv.RedisClusterAddrs(t), ContextTimeoutEnabled: true})
		}, nil},
		{"ClusterNoContextTimeout", func(t *testing.T) redis.UniversalClient {
			return redis.NewClusterClient(&redis.ClusterOptions{Addrs: testenv.RedisClusterAddrs(t)})
		}, []finding{noCtxTimeout}},
		{"ClusterRouteByLatency", func(t *testing.T) redis.UniversalClient {
			return redis.NewClusterClient(&redis.ClusterOptions{
				Addrs: testenv.RedisClusterAddrs(t), ContextTimeoutEnabled: true, RouteByLatency: true,
			})
		}, []finding{{"ReadOnly", "true", "replicas"}}},
		{"Ring", func(t *testing.T) redis.UniversalClient {
			return redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": testenv.RedisAddr(t)}, ContextTimeoutEnabled: true})
		}, nil},
		{"RingNoContextTimeout", func(t *testing.T) redis.UniversalClient {
			return redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": testenv.RedisAddr(t)}})
		}, []finding{noCtxTimeout}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := tt.client(t)
			t.Cleanup(func() { _ = client.Close() })
			wantFindings(t, newStore(t, client).Check(t.Context()), tt.want...)
		})
	}
}

// TestCheckClusterMasters checks that every master of a Cluster is read:
// one master of a private Cluster is made to evict, and it alone is
// reported, by its address.
func TestCheckClusterMasters(t *testing.T) {
	t.Parallel()
	addrs := testenv.StartRedisCluster(t).Addrs()
	client := newClient(t, func() redis.UniversalClient {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	}).(*redis.ClusterClient)
	store := newStore(t, client)
	ctx := t.Context()
	wantFindings(t, store.Check(ctx))

	var (
		mu      sync.Mutex
		masters []string
	)
	err := client.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		masters = append(masters, node.Options().Addr)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(masters) != 3 {
		t.Fatalf("masters: got %q; want 3", masters)
	}
	slices.Sort(masters)
	evicting := masters[1]
	node := timeoutClient(t, evicting)
	if err := node.ConfigSet(ctx, "maxmemory", "1gb").Err(); err != nil {
		t.Fatal(err)
	}
	if err := node.ConfigSet(ctx, "maxmemory-policy", "volatile-lfu").Err(); err != nil {
		t.Fatal(err)
	}
	wantFindings(t, store.Check(ctx), policyFinding("volatile-lfu", evicting))
}

// TestCheckConfigRefused checks a server that refuses CONFIG (renamed
// away, as managed services do): Check says what it could not read, and
// that is no finding; the client's findings still come.
func TestCheckConfigRefused(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t, "--rename-command", "CONFIG", "")
	client := newClient(t, singleClient(srv.Addr()))
	err := newStore(t, client).Check(t.Context())
	t.Logf("Check: %v", err)
	got, others := findings(t, err)
	if len(got) != 1 || got[0].setting != "ContextTimeoutEnabled" {
		t.Errorf("findings: got %q; want only ContextTimeoutEnabled", got)
	}
	if len(others) != 1 {
		t.Fatalf("errors that are no finding: got %v; want one", others)
	}
	if msg := others[0].Error(); !strings.Contains(msg, "could not read maxmemory-policy") || !strings.Contains(msg, srv.Addr()) {
		t.Errorf("error: got %q; want it to say that maxmemory-policy of %s could not be read", msg, srv.Addr())
	}
	if errors.Is(others[0], cache.ErrUnsafeConfig) {
		t.Errorf("errors.Is(%v, cache.ErrUnsafeConfig) = true; want false: nothing unsafe was found", others[0])
	}
	var rerr redis.Error
	if !errors.As(others[0], &rerr) {
		t.Errorf("error %v does not wrap the server's error", others[0])
	}
}
