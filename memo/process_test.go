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

// Cross-process tests: this process and two children (TestMemoChild) call
// memo on one backend at once; computations are counted in a key of the
// real server, not in memory.
const (
	processes      = 3
	stampedeCalls  = 50
	refreshCallers = 10
	holderLease    = 20 * time.Second // longer than the tests may wait
	refreshTTL     = time.Minute
	refreshAhead   = 0.001 // the refresh point: 60ms after a write
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

// waitingStore is a store that calls f once, at its first read of a key
// after a watch of it started: a caller that waits for another's lease
// reads the key again once its watch is in place, so f runs when this
// process really waits (on every store: Memcached, which does not notify,
// gets the Watch call too, and fails it, so the caller polls).
type waitingStore struct {
	*teststores.Counting
	watched atomic.Bool
	once    sync.Once
	f       func()
}

func newWaitingStore(s cache.Store, f func()) *waitingStore {
	return &waitingStore{Counting: teststores.NewCounting(s), f: f}
}

func (s *waitingStore) Watch(ctx context.Context, key string) (<-chan struct{}, func(), error) {
	s.watched.Store(true)
	return s.Counting.Watch(ctx, key)
}

func (s *waitingStore) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := s.Counting.Get(ctx, key)
	if s.watched.Load() {
		s.once.Do(s.f)
	}
	return v, err
}

func runRole(t *testing.T, role string, b teststores.Backend, s cache.Store, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := counters(s, ns)
	switch role {
	case "stampede":
		// The computation (of whichever process wins the lease) returns
		// only once the two other processes wait for its lease.
		values := newCache[string](newWaitingStore(s, func() {
			if _, err := n.Increment(ctx, "waiting", 1); err != nil {
				t.Error(err)
			}
		}), ns, time.Minute)
		compute := func(ctx context.Context) (string, error) {
			if _, err := n.Increment(ctx, "computations", 1); err != nil {
				return "", err
			}
			if err := waitCounter(ctx, n, "waiting", processes-1); err != nil {
				return "", err
			}
			return "value", nil
		}
		teststores.Barrier(t, ctx, n, processes)
		var wg sync.WaitGroup
		for range stampedeCalls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := memo.GetOrCompute(ctx, values, "cold", compute, &memo.Options{Lease: holderLease})
				if err != nil || v != "value" {
					t.Errorf("GetOrCompute = %q, %v; want value", v, err)
				}
			}()
		}
		wg.Wait()
		if _, err := n.Increment(ctx, "leasewaits", values.Stats().LeaseWaits); err != nil {
			t.Error(err)
		}
	case "refresh":
		// The one refresh (of whichever process) returns only once every
		// caller of every process has had the cached value: none of them
		// can see the refreshed value past its own refresh point.
		c := newCache[int64](s, ns, refreshTTL)
		m := memo.Func(c, refreshFunc(n), &memo.Options{RefreshAhead: refreshAhead})
		teststores.Barrier(t, ctx, n, processes)
		var wg sync.WaitGroup
		for range refreshCallers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if v, err := m.Get(ctx, "k"); err != nil || v != 1 {
					t.Errorf("Get past the refresh point = %d, %v; want the cached 1", v, err)
				}
				if _, err := n.Increment(ctx, "gets", 1); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		// Wait for the refresh to be stored: Close would cancel it.
		waitValue(t, c, "k", 2)
		m.Close()
		if _, err := n.Increment(ctx, "refreshes", c.Stats().Refreshes); err != nil {
			t.Error(err)
		}
	case "panic-holder":
		// Hold the lease, computing, until the parent waits for it; then
		// panic.
		values := newCache[string](s, ns, time.Minute)
		_, err := memo.GetOrCompute(ctx, values, "k", func(ctx context.Context) (string, error) {
			n.Increment(ctx, "holding", 1)
			if err := waitCounter(ctx, n, "waiting", 1); err != nil {
				return "", err
			}
			panic("holder panics")
		}, &memo.Options{Lease: holderLease})
		if !errors.Is(err, cache.ErrPanic) {
			t.Errorf("holder's GetOrCompute = %v; want ErrPanic", err)
		}
	case "cancelled-holder":
		// Hold the lease, computing; the caller gives up at once, the
		// computation goes on and stores its value for the parent.
		values := newCache[string](s, ns, time.Minute)
		cctx, cancelCaller := context.WithCancel(ctx)
		computing := make(chan struct{})
		errc := make(chan error, 1)
		go func() {
			_, err := memo.GetOrCompute(cctx, values, "k", func(ctx context.Context) (string, error) {
				n.Increment(ctx, "holding", 1)
				close(computing)
				if err := waitCounter(ctx, n, "waiting", 1); err != nil {
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
		if err := waitCounter(ctx, n, "done", 1); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown role %q", role)
	}
}

// waitCounter waits until the counter name in n reaches at least want, or
// ctx ends.
func waitCounter(ctx context.Context, n *cache.Cache[string, int64], name string, want int64) error {
	for {
		v, _, err := n.Get(ctx, name)
		if err != nil {
			return err
		}
		if v >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// refreshFunc counts its computations in the server and returns their
// number; the second (the refresh) returns once every caller of every
// process has read the key.
func refreshFunc(n *cache.Cache[string, int64]) func(context.Context, string) (int64, error) {
	return func(ctx context.Context, _ string) (int64, error) {
		v, err := n.Increment(ctx, "computations", 1)
		if err != nil {
			return 0, err
		}
		if v == 2 {
			if err := waitCounter(ctx, n, "gets", processes*refreshCallers); err != nil {
				return 0, err
			}
		}
		return v, nil
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

// 3 processes × 50 goroutines on one cold key: exactly one computation,
// and the two other processes waited for its lease.
func TestStampedeAcrossProcesses(t *testing.T) {
	sharedBackends(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		acrossProcesses(t, "stampede", b, s, ns)
		n := counters(s, ns)
		ctx := context.Background()
		if got, _, err := n.Get(ctx, "computations"); err != nil || got != 1 {
			t.Errorf("computations across %d processes = %d (err %v); want 1", processes, got, err)
		}
		// The two processes that lost waited for the lease (contention).
		// A process may count one more: a caller that read the lease just
		// before its process's flight ended starts a flight of its own,
		// which finds the lease in what it read, counts a wait, and reads
		// the value.
		if got, _, _ := n.Get(ctx, "leasewaits"); got < processes-1 {
			t.Errorf("lease waits = %d; want at least %d", got, processes-1)
		}
	})
}

// Refresh-ahead across processes: exactly one refresh.
func TestRefreshAheadAcrossProcesses(t *testing.T) {
	sharedBackends(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		n := counters(s, ns)
		c := newCache[int64](s, ns, refreshTTL)
		m := memo.Func(c, refreshFunc(n), &memo.Options{RefreshAhead: refreshAhead})
		defer m.Close()
		if v, err := m.Get(ctx, "k"); err != nil || v != 1 {
			t.Fatalf("priming Get = %d, %v; want 1", v, err)
		}
		sleepPastRefreshPoint(t, c, "k", refreshTTL, refreshAhead)
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
		assertNoLease(t, c, "k")
	})
}

// holderInAnotherProcess starts one child process in role, which takes the
// lease of "k" and computes; once it computes, this process calls
// GetOrCompute on "k" with compute, within half the lease, so that only
// the end of the child's computation lets it finish in time. Once this
// process waits for the lease, it sets the counter "waiting", for the
// child to go on. It returns the result and this process's stats.
func holderInAnotherProcess(t *testing.T, role string, b teststores.Backend, s cache.Store, ns string, compute func(context.Context) (string, error)) (string, cache.Stats, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), holderLease/2)
	defer cancel()
	n := counters(s, ns)
	wait := teststores.StartChildren(t, 1, "TestMemoChild", role, b, ns)
	defer wait()
	defer n.Increment(context.Background(), "done", 1)
	if err := waitCounter(ctx, n, "holding", 1); err != nil {
		t.Fatalf("the holder never computed: %v", err)
	}
	ws := newWaitingStore(s, func() {
		if _, err := n.Increment(ctx, "waiting", 1); err != nil {
			t.Error(err)
		}
	})
	c := newCache[string](ws, ns, time.Minute)
	v, err := memo.GetOrCompute(ctx, c, "k", compute, &memo.Options{Lease: holderLease})
	if !ws.watched.Load() {
		t.Error("this process never waited for the holder's lease")
	}
	return v, c.Stats(), err
}

// A holder in another process whose computation panics gives its lease
// up: the waiter here wakes and computes, without waiting out the lease.
func TestHolderPanicsInAnotherProcess(t *testing.T) {
	sharedBackends(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		v, st, err := holderInAnotherProcess(t, "panic-holder", b, s, ns, func(context.Context) (string, error) {
			return "from the waiter", nil
		})
		if err != nil || v != "from the waiter" {
			t.Fatalf("waiter's GetOrCompute = %q, %v; want its own value, computed once the holder gave its lease up", v, err)
		}
		if st.LeaseWaits != 1 || st.Computations != 1 {
			t.Fatalf("stats = %+v; want a lease wait (contention) and 1 computation", st)
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
		if st.LeaseWaits != 1 || st.Computations != 0 {
			t.Fatalf("stats = %+v; want a lease wait (contention) and no computation", st)
		}
		if got, _, _ := counters(s, ns).Get(context.Background(), "computations"); got != 1 {
			t.Fatalf("computations = %d; want 1", got)
		}
	})
}
