package memo_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/memo"
)

// Cross-process tests: this process and two children (TestMemoChild) call
// memo on one backend at once; computations are counted in a key of the
// real server, not in memory.
const (
	processes      = 3
	stampedeCalls  = 50
	refreshCallers = 10
	holderLease    = 20 * time.Second // longer than the holder tests may wait
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
		// Wait for the one refresh (of whichever process) to be stored
		// and its lock released: Close would cancel it.
		waitValue(t, c, "k", 2, refreshTTL(b))
		waitGone(t, s, c.Key("k")+"\x00lock", refreshTTL(b))
		m.Close()
		n.Increment(ctx, "refreshes", m.Stats().Refreshes)
	case "panic-holder":
		// Hold the lock, computing, until the parent waits for it (it
		// sets "waiting" once it follows the holder); then panic.
		_, err := memo.GetOrCompute(ctx, values, "k", func(ctx context.Context) (string, error) {
			n.Increment(ctx, "holding", 1)
			if err := waitCounter(ctx, n, "waiting"); err != nil {
				return "", err
			}
			panic("holder panics")
		}, &memo.Options{Lease: holderLease})
		if !errors.Is(err, cache.ErrPanic) {
			t.Errorf("holder's GetOrCompute = %v; want ErrPanic", err)
		}
	case "cancelled-holder":
		// Hold the lock, computing; the caller gives up at once, the
		// computation goes on and stores its value for the parent.
		cctx, cancelCaller := context.WithCancel(ctx)
		computing := make(chan struct{})
		errc := make(chan error, 1)
		go func() {
			_, err := memo.GetOrCompute(cctx, values, "k", func(ctx context.Context) (string, error) {
				n.Increment(ctx, "holding", 1)
				close(computing)
				if err := waitCounter(ctx, n, "waiting"); err != nil {
					return "", err
				}
				n.Increment(ctx, "computations", 1)
				return "from the cancelled holder", nil
			}, &memo.Options{Lease: holderLease})
			errc <- err
		}()
		<-computing
		cancelCaller()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled holder's GetOrCompute = %v; want Canceled", err)
		}
		// Stay until the parent has the value, so that the flight ends
		// before the process does.
		if err := waitCounter(ctx, n, "done"); err != nil {
			t.Fatal(err)
		}
		waitGone(t, s, values.Key("k")+"\x00lock", holderLease)
	default:
		t.Fatalf("unknown role %q", role)
	}
}

func refreshTTL(b teststores.Backend) time.Duration { return ttlFor(b, 4*time.Second) }

// waitCounter waits until the counter name in n is set, or ctx ends.
func waitCounter(ctx context.Context, n *cache.Cache[string, int64], name string) error {
	for {
		v, _, err := n.Get(ctx, name)
		if err != nil {
			return err
		}
		if v > 0 {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// holderInAnotherProcess starts one child process in role, which takes the
// lock of "k" and computes; once it computes, this process calls
// GetOrCompute on "k" with compute, within half the lock's lease, so that
// only a release by the child lets it finish in time. Once this process
// waits for the lock (it reads the holder's token, which a waiter does
// after its watch started), it sets the counter "waiting", for the child
// to go on. It returns the result and this process's stats.
func holderInAnotherProcess(t *testing.T, role string, b teststores.Backend, s cache.Store, ns string, compute func(context.Context) (string, error)) (string, memo.StatsSnapshot, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), holderLease/2)
	defer cancel()
	n := counters(s, ns)
	wait := teststores.StartChildren(t, 1, "TestMemoChild", role, b, ns)
	defer wait()
	defer n.Increment(context.Background(), "done", 1)
	if err := waitCounter(ctx, n, "holding"); err != nil {
		t.Fatalf("the holder never computed: %v", err)
	}
	waiting := &onLockGet{Counting: teststores.NewCounting(s), f: func() {
		if _, err := n.Increment(ctx, "waiting", 1); err != nil {
			t.Error(err)
		}
	}}
	stats := new(memo.Stats)
	v, err := memo.GetOrCompute(ctx, newCache[string](waiting, ns, time.Minute), "k", compute, &memo.Options{Lease: holderLease, Stats: stats})
	if waiting.LockGetCalls.Load() == 0 {
		t.Error("this process never waited for the holder's lock")
	}
	return v, stats.Snapshot(), err
}

// onLockGet is a store that calls f at its first Get of a lock key: a
// RedLock reads the holder's token once it waits for it.
type onLockGet struct {
	*teststores.Counting
	once sync.Once
	f    func()
}

func (s *onLockGet) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := s.Counting.Get(ctx, key)
	if strings.HasSuffix(key, "\x00lock") {
		s.once.Do(s.f)
	}
	return v, err
}

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
		waitGone(t, s, freshKey(c, "k"), refreshTTL(b))
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

// A holder in another process whose computation panics releases the lock:
// the waiter here wakes and computes, without waiting out the lease.
func TestHolderPanicsInAnotherProcess(t *testing.T) {
	sharedBackends(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		v, st, err := holderInAnotherProcess(t, "panic-holder", b, s, ns, func(context.Context) (string, error) {
			return "from the waiter", nil
		})
		if err != nil || v != "from the waiter" {
			t.Fatalf("waiter's GetOrCompute = %q, %v; want its own value, computed once the holder released", v, err)
		}
		if st.LockWaits < 1 || st.Computations != 1 {
			t.Fatalf("stats = %+v; want a lock wait (contention) and 1 computation", st)
		}
	})
}

// A holder in another process whose caller gives up still computes and
// stores: the waiter here gets its value without computing.
func TestHolderCallerCancelledInAnotherProcess(t *testing.T) {
	sharedBackends(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		v, st, err := holderInAnotherProcess(t, "cancelled-holder", b, s, ns, func(context.Context) (string, error) {
			t.Error("the waiter computed; want the holder's value")
			return "from the waiter", nil
		})
		if err != nil || v != "from the cancelled holder" {
			t.Fatalf("waiter's GetOrCompute = %q, %v; want the holder's value", v, err)
		}
		if st.LockWaits < 1 {
			t.Fatalf("stats = %+v; want a lock wait: the processes did not contend", st)
		}
		if got, _, _ := counters(s, ns).Get(context.Background(), "computations"); got != 1 {
			t.Fatalf("computations = %d; want 1", got)
		}
	})
}
