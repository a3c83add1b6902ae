package memo_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/teststores"
	"github.com/typedcache/typedcache/memo"
)

// Cross-process tests: this process and two children (TestMemoChild) call
// memo on one backend at once; computations are counted in a key of the
// real server, not in memory.
const (
	processes      = 3
	stampedeCalls  = 50
	refreshCallers = 10
)

// TestMemoChild is the body of a child process; it does nothing when run
// as an ordinary test.
func TestMemoChild(t *testing.T) {
	role, b, ns := teststores.Child(t)
	runRole(t, role, b, b.New(t), ns)
}

func acrossProcesses(t *testing.T, role string, b teststores.Backend, s cache.Store, ns string) {
	t.Helper()
	wait := teststores.StartChildren(t, processes-1, "TestMemoChild", role, b, ns)
	runRole(t, role, b, s, ns)
	wait()
}

// counters is the cache of the counters every process adds to.
func counters(s cache.Store, ns string) *cache.Cache[string, int64] {
	return cache.New[string, int64](s, &cache.Options[string, int64]{Namespace: ns + "-counters"})
}

func runRole(t *testing.T, role string, b teststores.Backend, s cache.Store, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := counters(s, ns)
	values := newCache[string](s, ns, time.Minute)
	switch role {
	case "stampede":
		stats := new(memo.Stats)
		teststores.Barrier(t, ctx, n, processes)
		var wg sync.WaitGroup
		for range stampedeCalls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := memo.GetOrCompute(ctx, values, "cold", func(ctx context.Context) (string, error) {
					if _, err := n.Increment(ctx, "computations", 1); err != nil {
						return "", err
					}
					time.Sleep(200 * time.Millisecond)
					return "value", nil
				}, &memo.Options{Lease: 2 * time.Second, Stats: stats})
				if err != nil || v != "value" {
					t.Errorf("GetOrCompute = %q, %v; want value", v, err)
				}
			}()
		}
		wg.Wait()
		n.Increment(ctx, "lockwaits", stats.LockWaits.Load())
	case "refresh":
		c := newCache[int64](s, ns, refreshTTL(b))
		m := memo.Func(c, refreshFunc(n), &memo.Options{RefreshAhead: 0.25})
		teststores.Barrier(t, ctx, n, processes)
		var wg sync.WaitGroup
		for range refreshCallers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if v, err := m.Get(ctx, "k"); err != nil || v != 1 {
					t.Errorf("Get past the refresh point = %d, %v; want the cached 1", v, err)
				}
			}()
		}
		wg.Wait()
		m.Close()
		n.Increment(ctx, "refreshes", m.Stats().Refreshes)
	default:
		t.Fatalf("unknown role %q", role)
	}
}

func refreshTTL(b teststores.Backend) time.Duration { return ttlFor(b, 4*time.Second) }

// refreshFunc counts its computations in the server and returns their
// number.
func refreshFunc(n *cache.Cache[string, int64]) func(context.Context, string) (int64, error) {
	return func(ctx context.Context, _ string) (int64, error) {
		time.Sleep(50 * time.Millisecond)
		return n.Increment(ctx, "computations", 1)
	}
}

func sharedBackends(t *testing.T, f func(t *testing.T, b teststores.Backend, s cache.Store, ns string)) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		if !b.Shared {
			t.Skipf("%s is in-process: nothing to share between processes", b.Name)
		}
		f(t, b, s, ns)
	})
}

// 3 processes × 50 goroutines on one cold key: exactly one computation.
func TestStampedeAcrossProcesses(t *testing.T) {
	sharedBackends(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		acrossProcesses(t, "stampede", b, s, ns)
		n := counters(s, ns)
		ctx := context.Background()
		if got, _, err := n.Get(ctx, "computations"); err != nil || got != 1 {
			t.Errorf("computations across %d processes = %d (err %v); want 1", processes, got, err)
		}
		// Two of the three processes found the lock taken by the third.
		if got, _, _ := n.Get(ctx, "lockwaits"); got < processes-1 {
			t.Errorf("lock waits = %d; want at least %d: the processes did not contend", got, processes-1)
		}
	})
}

// Refresh-ahead across processes: exactly one refresh.
func TestRefreshAheadAcrossProcesses(t *testing.T) {
	sharedBackends(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		n := counters(s, ns)
		c := newCache[int64](s, ns, refreshTTL(b))
		m := memo.Func(c, refreshFunc(n), &memo.Options{RefreshAhead: 0.25})
		if v, err := m.Get(ctx, "k"); err != nil || v != 1 {
			t.Fatalf("priming Get = %d, %v; want 1", v, err)
		}
		waitGone(t, s, c.Key("k")+"-memo-fresh", refreshTTL(b))
		acrossProcesses(t, "refresh", b, s, ns)
		if got, _, _ := n.Get(ctx, "refreshes"); got != 1 {
			t.Errorf("refreshes across %d processes = %d; want 1", processes, got)
		}
		if got, _, _ := n.Get(ctx, "computations"); got != 2 {
			t.Errorf("computations = %d; want 2 (the first and one refresh)", got)
		}
		if v, _, _ := c.Get(ctx, "k"); v != 2 {
			t.Errorf("value after the refresh = %d; want 2", v)
		}
	})
}
