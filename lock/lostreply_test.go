package lock_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/faultproxy"
	"github.com/typedcache/typedcache/internal/testing/testenv"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/lock"
)

// errLost is what a store returns for a write whose reply was lost.
var errLost = fmt.Errorf("%w: read tcp: connection reset by peer", cache.ErrUncertain)

// lossy applies the next write of the named operation and then reports
// its reply lost (cache.ErrUncertain), as a store does when the connection
// fails after the server applied the command. With cancel set, it also
// ends the caller's context before it returns, as a context that ends
// while the store applies the write.
type lossy struct {
	cache.Store
	op     string
	armed  atomic.Bool
	cancel context.CancelFunc
}

func newLossy(t *testing.T, op string) *lossy {
	l := &lossy{Store: memStore(t), op: op}
	l.armed.Store(true)
	return l
}

func (l *lossy) lose(op string) bool { return op == l.op && l.armed.CompareAndSwap(true, false) }

func (l *lossy) fail() error {
	if l.cancel != nil {
		l.cancel()
		return context.Canceled
	}
	return errLost
}

func (l *lossy) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	err := l.Store.Add(ctx, key, value, ttl)
	if err == nil && l.lose("add") {
		return l.fail()
	}
	return err
}

func (l *lossy) DeleteIfEqual(ctx context.Context, key string, value []byte) (bool, error) {
	ok, err := l.Store.DeleteIfEqual(ctx, key, value)
	if err == nil && l.lose("delete-if-equal") {
		return false, l.fail()
	}
	return ok, err
}

func (l *lossy) ExtendIfEqual(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ok, err := l.Store.ExtendIfEqual(ctx, key, value, ttl)
	if err == nil && l.lose("extend-if-equal") {
		return false, l.fail()
	}
	return ok, err
}

func (l *lossy) CompareAndSwap(ctx context.Context, key string, value []byte, token cache.Token, ttl time.Duration) error {
	err := l.Store.CompareAndSwap(ctx, key, value, token, ttl)
	if err == nil && l.lose("cas") {
		return l.fail()
	}
	return err
}

// A compare-and-swap that landed but lost its reply is recognised by
// reading the key back (the entry it wrote has an id of its own):
// Cache.CompareAndSwap and Update return nil, and Update applied its
// function once.
func TestLostCASRecognised(t *testing.T) {
	ctx := context.Background()
	t.Run("CompareAndSwap", func(t *testing.T) {
		s := newLossy(t, "cas")
		c := newCache[string](t, s, "n")
		if err := c.Set(ctx, "k", "v1"); err != nil {
			t.Fatal(err)
		}
		_, _, tok, err := c.Gets(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CompareAndSwap(ctx, "k", "v2", tok); err != nil {
			t.Fatalf("CompareAndSwap that landed with its reply lost: %v; want nil", err)
		}
		if s.armed.Load() {
			t.Fatal("no reply was lost: the test proves nothing")
		}
		if v, _, err := c.Get(ctx, "k"); err != nil || v != "v2" {
			t.Fatalf("Get = %q, %v; want v2", v, err)
		}
	})
	t.Run("Update", func(t *testing.T) {
		s := newLossy(t, "cas")
		c := newCache[string](t, s, "n")
		if err := c.Set(ctx, "k", "a"); err != nil {
			t.Fatal(err)
		}
		calls := 0
		got, err := lock.Update(ctx, c, "k", func(v string, found bool) (string, error) {
			calls++
			return v + "b", nil
		}, nil)
		if err != nil || got != "ab" {
			t.Fatalf("Update whose swap landed with its reply lost: %q, %v; want ab, nil", got, err)
		}
		if s.armed.Load() {
			t.Fatal("no reply was lost: the test proves nothing")
		}
		if calls != 1 {
			t.Fatalf("the function ran %d times; want 1", calls)
		}
		if v, _, err := c.Get(ctx, "k"); err != nil || v != "ab" {
			t.Fatalf("Get = %q, %v; want ab (applied once)", v, err)
		}
	})
}

// A lost reply is not a lost lock: TryAcquire whose Add was applied holds
// the lock (it reads its own token back), Release whose delete was applied
// released it, Extend whose extension was applied extended it. Before, they
// reported (false, nil) with the token left in the key for its lease,
// ErrNotHeld (Do: an overlap that never happened), and ErrNotHeld.
func TestLostReplyRecognised(t *testing.T) {
	ctx := context.Background()
	t.Run("TryAcquire", func(t *testing.T) {
		s := newLossy(t, "add")
		l := newLock(t, newCache[string](t, s, "n"), "k", time.Minute, nil)
		ok, err := l.TryAcquire(ctx)
		if !ok || err != nil {
			t.Fatalf("TryAcquire with its reply lost: got %v, %v; want true, nil", ok, err)
		}
		if s.armed.Load() {
			t.Fatal("no reply was lost: the test proves nothing")
		}
		if err := l.Release(ctx); err != nil {
			t.Fatalf("Release: %v", err)
		}
	})
	t.Run("Release", func(t *testing.T) {
		s := newLossy(t, "delete-if-equal")
		c := newCache[string](t, s, "n")
		l := newLock(t, c, "k", time.Minute, nil)
		if err := l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatalf("Release with its reply lost: %v; want nil", err)
		}
		if s.armed.Load() {
			t.Fatal("no reply was lost: the test proves nothing")
		}
		if ok, _ := s.Exists(ctx, l.Key()); ok {
			t.Fatal("lock key still there")
		}
		if ok, err := newLock(t, c, "k", time.Minute, nil).TryAcquire(ctx); !ok || err != nil {
			t.Fatalf("TryAcquire after the release: %v, %v", ok, err)
		}
	})
	t.Run("Do", func(t *testing.T) {
		s := newLossy(t, "delete-if-equal")
		l := newLock(t, newCache[string](t, s, "n"), "k", time.Minute, nil)
		if err := l.Do(ctx, func(context.Context) error { return nil }); err != nil {
			t.Fatalf("Do whose release lost its reply: %v; want nil (no overlap happened)", err)
		}
	})
	t.Run("Extend", func(t *testing.T) {
		s := newLossy(t, "extend-if-equal")
		l := newLock(t, newCache[string](t, s, "n"), "k", time.Second, nil)
		if err := l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.Extend(ctx, time.Hour); err != nil {
			t.Fatalf("Extend with its reply lost: %v; want nil", err)
		}
		if s.armed.Load() {
			t.Fatal("no reply was lost: the test proves nothing")
		}
		if d, err := s.TTL(ctx, l.Key()); err != nil || d < 59*time.Minute {
			t.Fatalf("lock key's ttl after Extend: %v, %v; want about an hour", d, err)
		}
		if r := l.Remaining(); r < 59*time.Minute {
			t.Fatalf("Remaining() = %v; want about an hour", r)
		}
	})
}

// An acquisition whose context ends while the store applies its Add leaves
// no token behind: TryAcquire reports the context's error and deletes its
// token, so the lock is not held by nobody for a lease.
func TestTryAcquireContextEndedAfterApply(t *testing.T) {
	s := newLossy(t, "add")
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	c := newCache[string](t, s, "n")
	l := newLock(t, c, "k", time.Hour, nil)
	ok, err := l.TryAcquire(ctx)
	if ok || !errors.Is(err, lock.ErrNotObtained) || !errors.Is(err, context.Canceled) {
		t.Fatalf("TryAcquire whose context ended after the Add: got %v, %v; want false, ErrNotObtained and Canceled", ok, err)
	}
	if ok, _ := s.Exists(context.Background(), l.Key()); ok {
		t.Fatal("the abandoned acquisition's token is still in the lock key")
	}
}

// lostAndDown applies an Add, loses its reply, and fails the Get that
// follows (the store is down for a moment): TryAcquire cannot tell whether
// it holds the lock, so it deletes its token, best effort.
type lostAndDown struct {
	cache.Store
	adds, gets atomic.Int64
}

func (s *lostAndDown) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.Store.Add(ctx, key, value, ttl); err != nil {
		return err
	}
	s.adds.Add(1)
	return errLost
}

func (s *lostAndDown) Get(ctx context.Context, key string) ([]byte, error) {
	s.gets.Add(1)
	return nil, errors.New("connection refused")
}

// Any acquisition error whose write may have landed, not only an ended
// context, is cleaned up (issue: TryAcquire left an unowned lock).
func TestTryAcquireCleansUpAfterAnyError(t *testing.T) {
	ctx := context.Background()
	s := &lostAndDown{Store: memStore(t)}
	l := newLock(t, newCache[string](t, s, "n"), "k", time.Hour, nil)
	ok, err := l.TryAcquire(ctx)
	if ok || !errors.Is(err, cache.ErrUncertain) {
		t.Fatalf("TryAcquire: got %v, %v; want false and the store's error", ok, err)
	}
	// One Add; reads of the lock key to settle it, repeated while they
	// fail (at most three).
	if s.adds.Load() != 1 || s.gets.Load() < 1 || s.gets.Load() > 3 {
		t.Fatalf("%d adds, %d reads; want 1 add and 1 to 3 reads", s.adds.Load(), s.gets.Load())
	}
	if ok, _ := s.Exists(ctx, l.Key()); ok {
		t.Fatal("the failed acquisition's token is still in the lock key")
	}
}

// The lock key of "bob" is no key a Cache can name: a user value under
// "bob-lock" is a value, Set and Delete of any user key never free a held
// lock, and a lock key cannot be read as a value.
func TestLockKeyOutOfUserKeys(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[string](t, s, ns)
		l := newLock(t, c, "bob", time.Minute, nil)
		if err := l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		defer l.Release(ctx)
		for _, k := range []string{"bob-lock", "bob lock", "bob:lock", "bob\\x00lock"} {
			if err := c.Set(ctx, k, "v"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := c.Get(ctx, "bob\x00lock"); !errors.Is(err, cache.ErrInvalidKey) {
			t.Fatalf("Get of the lock key's text: %v; want ErrInvalidKey", err)
		}
		if ok, err := newLock(t, c, "bob", time.Minute, nil).TryAcquire(ctx); ok || err != nil {
			t.Fatalf("a second holder after writes to look-alike user keys: %v, %v; want false, nil", ok, err)
		}
	})
}

// NewRedLock refuses the keys a Cache refuses: empty, or holding the
// reserved NUL byte; and a lease that is not positive.
func TestNewRedLockInvalid(t *testing.T) {
	c := newCache[string](t, memStore(t), "n")
	for _, k := range []string{"", "a\x00b"} {
		if _, err := lock.NewRedLock(c, k, time.Minute, nil); !errors.Is(err, cache.ErrInvalidKey) {
			t.Errorf("NewRedLock(%q): %v; want ErrInvalidKey", k, err)
		}
	}
	if _, err := lock.NewRedLock(c, "k", 0, nil); !errors.Is(err, cache.ErrInvalidTTL) {
		t.Errorf("NewRedLock with lease 0: %v; want ErrInvalidTTL", err)
	}
	// The error names the key readably, NUL and all.
	_, err := lock.NewRedLock(c, "a\x00b", time.Minute, nil)
	if err == nil || strings.ContainsRune(err.Error(), 0) {
		t.Errorf("error %q holds a raw NUL", err)
	}
}

// Every store call of a RedLock is bounded by the Cache's Timeout: against
// a Redis that accepts connections and never answers, with a background
// context, each call returns within a few Timeouts (an acquisition that
// fails makes at most two more calls to settle), not go-redis's own 3s
// read timeout. Before, TryAcquire, Extend and AcquireOrWait took 5s each.
func TestLockCallsBoundedByTimeout(t *testing.T) {
	srv := testenv.StartUnresponsive(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	store := redisstore.New(client, nil)
	t.Cleanup(func() { store.Close() })
	const timeout = 200 * time.Millisecond
	c := cache.New[string, struct{}](store, &cache.Options[string, struct{}]{Timeout: timeout})
	ctx := context.Background()
	l := newLock(t, c, "k", time.Minute, &lock.Options{ReleaseTimeout: time.Minute})
	calls := []struct {
		name string
		run  func() error
	}{
		{"TryAcquire", func() error { _, err := l.TryAcquire(ctx); return err }},
		{"Acquire", func() error { return l.Acquire(ctx) }},
		{"AcquireOrWait", func() error { _, err := l.AcquireOrWait(ctx); return err }},
		{"Extend", func() error { return l.Extend(ctx, time.Minute) }},
		{"Release", func() error { return l.Release(ctx) }},
	}
	const limit = 4*timeout + 2*time.Second // settling, plus slack for a loaded machine
	for _, call := range calls {
		start := time.Now()
		err := call.run()
		d := time.Since(start)
		if err == nil && call.name != "Extend" && call.name != "Release" {
			t.Errorf("%s against a server that never answers: no error", call.name)
		}
		if d > limit {
			t.Errorf("%s took %v with Timeout %v; want within %v", call.name, d, timeout, limit)
		}
	}
}

// lossyNet is the fault proxies in front of a Redis client's servers.
type lossyNet struct {
	setRate func(rate float64) // lose the replies of that share of writes
	dropped func() int64       // replies lost so far
}

// proxiedRedis returns a store over the shared Redis (or Cluster) through
// fault proxies, with go-redis's default options (MaxRetries 3), and the
// proxies' controls.
func proxiedRedis(t *testing.T, cluster bool) (cache.Store, lossyNet) {
	t.Helper()
	var (
		mu      sync.Mutex
		proxies = map[string]*faultproxy.Proxy{}
		rate    float64
	)
	isTx := faultproxy.Contains("exec", "EXEC")
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		p := proxies[addr]
		if p == nil {
			var err error
			if p, err = faultproxy.New(addr); err != nil {
				mu.Unlock()
				return nil, err
			}
			proxies[addr] = p
			t.Cleanup(func() { p.Close() })
			p.DropReplies(rate, isTx)
		}
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, p.Addr())
	}
	var client redis.UniversalClient
	if cluster {
		client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: testenv.RedisClusterAddrs(t), Dialer: dial})
	} else {
		client = redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t), Dialer: dial})
	}
	store := redisstore.New(client, nil)
	t.Cleanup(func() {
		store.Close()
		client.Close()
	})
	return store, lossyNet{
		setRate: func(r float64) {
			mu.Lock()
			defer mu.Unlock()
			rate = r
			for _, p := range proxies {
				p.DropReplies(r, isTx)
			}
		},
		dropped: func() int64 {
			mu.Lock()
			defer mu.Unlock()
			var n int64
			for _, p := range proxies {
				n += p.Stats().Dropped
			}
			return n
		},
	}
}

// mutexInput and mutexOutput are the calls of the lock's linearizability
// check: TryAcquire and Release by one of the workers.
type mutexInput struct {
	worker  int
	release bool
}

type mutexOutput struct{ ok bool }

// mutexModel is a lock held by at most one worker (0: none), with leases
// too long to run out during the check.
var mutexModel = porcupine.Model{
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		holder, in, out := state.(int), input.(mutexInput), output.(mutexOutput)
		if in.release {
			if out.ok {
				return holder == in.worker, 0
			}
			return holder != in.worker, holder
		}
		if out.ok {
			return holder == 0, in.worker
		}
		return holder != 0, holder
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(mutexInput), output.(mutexOutput)
		if in.release {
			return fmt.Sprintf("w%d release → %v", in.worker, out.ok)
		}
		return fmt.Sprintf("w%d try-acquire → %v", in.worker, out.ok)
	},
}

// TestLockLinearizableLostReplies runs TryAcquire and Release from workers
// on two clients of Redis (and of a Cluster) whose proxies lose the reply
// of one write in ten, with go-redis's default options, and checks with
// porcupine that the history is that of a lock: no TryAcquire fails on a
// free lock, none succeeds on a held one, and every Release of a holder
// succeeds (ErrNotHeld would be an overlap that never happened). Before,
// go-redis sent the lost writes again: TryAcquire found its own token and
// reported the lock busy, Release found the key gone and reported
// ErrNotHeld.
func TestLockLinearizableLostReplies(t *testing.T) {
	for _, topo := range []string{"redis", "cluster"} {
		t.Run(topo, func(t *testing.T) {
			ns := namespace(t)
			const workers, rounds = 6, 40
			var stores []cache.Store
			var nets []lossyNet
			for range 2 {
				s, n := proxiedRedis(t, topo == "cluster")
				stores = append(stores, s)
				nets = append(nets, n)
			}
			var (
				mu      sync.Mutex
				history []porcupine.Operation
				failed  error
				busy    atomic.Int64 // TryAcquires that found the lock held
			)
			base := time.Now()
			clock := func() int64 { return int64(time.Since(base)) }
			// Connect first, then lose replies.
			for _, s := range stores {
				if _, err := s.Exists(context.Background(), ns+":warm-up"); err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range nets {
				n.setRate(0.1)
			}
			var wg sync.WaitGroup
			for w := 1; w <= workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx := context.Background()
					c := newCache[string](t, stores[w%2], ns)
					for range rounds {
						l, err := lock.NewRedLock(c, "mutex", time.Minute, nil)
						if err != nil {
							panic(err)
						}
						start := clock()
						ok, err := l.TryAcquire(ctx)
						end := clock()
						if err != nil {
							mu.Lock()
							failed = errors.Join(failed, fmt.Errorf("w%d TryAcquire: %w", w, err))
							mu.Unlock()
							return
						}
						mu.Lock()
						history = append(history, porcupine.Operation{ClientId: w, Input: mutexInput{worker: w}, Call: start, Output: mutexOutput{ok}, Return: end})
						mu.Unlock()
						if !ok {
							busy.Add(1)
							continue
						}
						start = clock()
						err = l.Release(ctx)
						end = clock()
						if err != nil && !errors.Is(err, lock.ErrNotHeld) {
							mu.Lock()
							failed = errors.Join(failed, fmt.Errorf("w%d Release: %w", w, err))
							mu.Unlock()
							return
						}
						mu.Lock()
						history = append(history, porcupine.Operation{ClientId: w, Input: mutexInput{worker: w, release: true}, Call: start, Output: mutexOutput{err == nil}, Return: end})
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			var dropped int64
			for _, n := range nets {
				n.setRate(0)
				dropped += n.dropped()
			}
			if failed != nil {
				t.Fatal(failed)
			}
			if !porcupine.CheckOperations(mutexModel, history) {
				t.Fatalf("the history of %d lock calls is not that of a lock (%d replies lost)", len(history), dropped)
			}
			if dropped == 0 || busy.Load() == 0 {
				t.Fatalf("%d replies lost, %d acquisitions found the lock held: want both, or the check proves nothing", dropped, busy.Load())
			}
			t.Logf("%d calls, %d replies lost, %d acquisitions found the lock held", len(history), dropped, busy.Load())
		})
	}
}

// Update applies its function's result at most once, under lost replies
// on Redis with go-redis's default options: workers append unique items to
// one list with Update while the proxies lose the reply of one write in
// ten. No item may be in the list twice; every Update that succeeded is in
// it; one that failed with cache.ErrUncertain may be, once. Before, a lost
// reply made go-redis send the compare-and-swap again, which conflicted
// with its own write, and Update applied the function a second time.
func TestUpdateLostReplies(t *testing.T) {
	for _, topo := range []string{"redis", "cluster"} {
		t.Run(topo, func(t *testing.T) {
			ns := namespace(t)
			const workers, updates = 4, 40
			var stores []cache.Store
			var nets []lossyNet
			for range 2 {
				s, n := proxiedRedis(t, topo == "cluster")
				stores = append(stores, s)
				nets = append(nets, n)
			}
			for _, s := range stores {
				if _, err := s.Exists(context.Background(), ns+":warm-up"); err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range nets {
				n.setRate(0.1)
			}
			var (
				mu        sync.Mutex
				succeeded []string
				uncertain int
				failed    error
			)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx := context.Background()
					c := newCache[[]string](t, stores[w%2], ns)
					for i := range updates {
						item := fmt.Sprintf("w%d-%d", w, i)
						_, err := lock.Update(ctx, c, "list", func(old []string, _ bool) ([]string, error) {
							return append(old, item), nil
						}, &lock.UpdateOptions{MaxAttempts: 1000})
						mu.Lock()
						switch {
						case err == nil:
							succeeded = append(succeeded, item)
						case errors.Is(err, cache.ErrUncertain):
							uncertain++
						default:
							failed = errors.Join(failed, err)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			var dropped int64
			for _, n := range nets {
				n.setRate(0)
				dropped += n.dropped()
			}
			if failed != nil {
				t.Fatal(failed)
			}
			list, _, err := newCache[[]string](t, stores[0], ns).Get(context.Background(), "list")
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, it := range list {
				seen[it]++
				if seen[it] == 2 {
					t.Errorf("item %s is in the list twice: Update applied its function twice", it)
				}
			}
			for _, it := range succeeded {
				if seen[it] == 0 {
					t.Errorf("item %s of a successful Update is not in the list", it)
				}
			}
			if extra := len(list) - len(succeeded); extra < 0 || extra > uncertain {
				t.Errorf("%d items for %d successful and %d uncertain Updates", len(list), len(succeeded), uncertain)
			}
			if dropped == 0 || uncertain == 0 {
				t.Fatalf("%d replies lost, %d uncertain Updates: want both, or the test proves nothing", dropped, uncertain)
			}
			t.Logf("%d Updates succeeded, %d uncertain, %d replies lost, %d items", len(succeeded), uncertain, dropped, len(list))
		})
	}
}
