package typedcache_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/faultproxy"
	"github.com/typedcache/typedcache/internal/testing/testenv"
	"github.com/typedcache/typedcache/internal/testing/teststores"
)

// The bound of TestLocalStalenessBound.
//
// While the bus is connected, how long a local copy outlives a write is
// the bus's delivery time, which nothing in the library bounds: the test
// takes MaxStaleness as its bound (delivery on loopback takes about a
// millisecond). While the bus is down, the tier serves its copies at most
// MaxStaleness after it learns of the outage: a reset connection is
// reported once go-redis's attempt to replace it has failed (two health
// intervals at most: see redisstore.Options.HealthCheckInterval), and the
// MaxStaleness timer runs on a loaded machine. stalenessAllowance covers
// those two: two health intervals, and 200ms for the scheduling of the
// run's busy goroutines, the subscriber's and the timer's on a shared
// 2-core machine under the race detector (where up to 100ms were seen);
// the bound is MaxStaleness plus it.
const (
	mixMaxStaleness    = 200 * time.Millisecond
	mixHealthInterval  = 50 * time.Millisecond
	stalenessAllowance = 2*mixHealthInterval + 200*time.Millisecond
	stalenessBound     = mixMaxStaleness + stalenessAllowance

	mixKeys    = 200
	mixPhase   = time.Second // connected, bus cut, reconnected
	mixWorkers = 2           // per instance
)

// mixKey is one key of the mixed run: its writes are serialized across
// both instances, so that versions are stored in order.
type mixKey struct {
	mu sync.Mutex
	// acks[v] is when the write of version v returned (since the run
	// started); acks[0] is unused. Replaced, never changed, by writes.
	acks atomic.Pointer[[]time.Duration]
}

// mixStats are what one instance saw in one phase.
type mixStats struct {
	reads, writes int64
	stale         int64         // reads that returned a version older than one acknowledged before they started
	maxStale      time.Duration // the longest such staleness
	checked       int64         // reads that started past the bound of a write of the phase: those the bound constrains
	violated      int64         // reads that broke the bound
	violations    []string      // the first few
}

func (s *mixStats) add(o *mixStats) {
	s.reads += o.reads
	s.writes += o.writes
	s.stale += o.stale
	s.checked += o.checked
	s.maxStale = max(s.maxStale, o.maxStale)
	s.violated += o.violated
	s.violations = append(s.violations, o.violations...)
}

var mixPhases = [3]string{"connected", "bus cut", "reconnected"}

// A cachebench-style mixed run (zipf reads, 1 % writes by Set and
// Increment) on two instances over Redis, each with its own client and
// local tier, never reads a value older than an acknowledged write beyond
// stalenessBound: no read that started more than the bound after the
// write of version v returned a version older than v. The second of three
// phases cuts the second instance's pub/sub connection (reset, and new
// connections unanswered); it does not write meanwhile, since its
// invalidations could not be sent (such writes fail with
// ErrNotInvalidated and are not acknowledged).
func TestLocalStalenessBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs := teststores.Get(t, "redis")
	ns := teststores.Namespace("lmix")
	p := faultproxy.Start(t, testenv.RedisAddr(t))
	bus := proxiedBus(t, p, mixHealthInterval)
	opts := cache.LocalOptions{MaxStaleness: mixMaxStaleness}
	a := localCache(t, rs.New(t), ns, opts)
	opts.Bus = bus
	b := localCache(t, rs.New(t), ns, opts)
	instances := []*cache.Cache[string, int64]{a, b}

	keys := make([]mixKey, mixKeys)
	names := make([]string, mixKeys)
	t0 := time.Now()
	for i := range keys {
		names[i] = "k" + strconv.Itoa(i)
		if err := a.Set(ctx, names[i], 1); err != nil {
			t.Fatal(err)
		}
		acks := []time.Duration{0, time.Since(t0)}
		keys[i].acks.Store(&acks)
	}

	var (
		phase      atomic.Int32
		phaseStart [3]atomic.Int64 // since t0
		stop       atomic.Bool
		bWrites    atomic.Bool  // the second instance may write
		bGate      sync.RWMutex // held for reading by its writes
		wg         sync.WaitGroup
		stats      [2][mixWorkers][3]mixStats
	)
	phaseStart[0].Store(int64(time.Since(t0)))
	bWrites.Store(true)
	for in, c := range instances {
		for w := range mixWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(in), uint64(w)))
				zipf := rand.NewZipf(rng, 1.1, 1, mixKeys-1)
				for !stop.Load() {
					ph := phase.Load()
					st := &stats[in][w][ph]
					i := int(zipf.Uint64())
					if rng.IntN(100) == 0 {
						wrote, err := mixWrite(ctx, c, &keys[i], names[i], rng, t0, func() bool { return in == 0 || bWrites.Load() }, &bGate)
						if err != nil {
							t.Error(err)
							return
						}
						if wrote {
							st.writes++
							continue
						}
					}
					start := time.Since(t0)
					v, found, err := c.Get(ctx, names[i])
					if err != nil || !found {
						t.Errorf("instance %d: Get(%s) = %d, %v, %v; want a version", in, names[i], v, found, err)
						return
					}
					st.reads++
					mixCheck(st, names[i], v, start, *keys[i].acks.Load(), time.Duration(phaseStart[ph].Load()))
				}
			}()
		}
	}

	time.Sleep(mixPhase)
	bWrites.Store(false)
	bGate.Lock()
	// The second instance's writes in progress are done, and the next
	// ones see bWrites false.
	phaseStart[1].Store(int64(time.Since(t0)))
	bGate.Unlock()
	phase.Store(1)
	cut(p, true)
	time.Sleep(mixPhase)
	phaseStart[2].Store(int64(time.Since(t0)))
	phase.Store(2)
	p.SetBlackhole(false)
	// The second instance writes again once its bus takes messages.
	for bus.Publish(ctx, ns+"-probe", nil) != nil && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	bWrites.Store(true)
	time.Sleep(mixPhase)
	stop.Store(true)
	wg.Wait()

	var total [2][3]mixStats
	for in := range stats {
		for w := range stats[in] {
			for ph := range stats[in][w] {
				total[in][ph].add(&stats[in][w][ph])
			}
		}
	}
	for in := range total {
		st := instances[in].Stats()
		t.Logf("instance %d: %d local hits of %d hits", in, st.LocalHits, st.Hits)
		for ph, s := range total[in] {
			t.Logf("instance %d, %s: %d reads, %d writes, %d stale reads (longest %v), %d constrained by the bound %v",
				in, mixPhases[ph], s.reads, s.writes, s.stale, s.maxStale.Round(time.Millisecond), s.checked, stalenessBound)
			for j, v := range s.violations {
				if j == 10 {
					break
				}
				t.Errorf("instance %d, %s: %s", in, mixPhases[ph], v)
			}
			if s.violated > 10 {
				t.Errorf("instance %d, %s: ... %d reads broke the bound", in, mixPhases[ph], s.violated)
			}
		}
	}
	// The cut phase proves something only if the second instance read
	// keys the first had written during it, past the bound.
	if n := total[1][1].checked; n == 0 {
		t.Errorf("the second instance made no read, while its bus was cut, that a write of the outage constrains; want some")
	}
	if p.Stats().Resets == 0 {
		t.Error("the proxy reset no connection: the bus was never cut")
	}
}

// mixWrite writes the next version of key k (name), by Set or Increment,
// and records when it returned; it writes nothing, under gate, unless
// allowed says so.
func mixWrite(ctx context.Context, c *cache.Cache[string, int64], k *mixKey, name string, rng *rand.Rand, t0 time.Time, allowed func() bool, gate *sync.RWMutex) (bool, error) {
	gate.RLock()
	defer gate.RUnlock()
	if !allowed() {
		return false, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	acks := *k.acks.Load()
	v := int64(len(acks))
	if rng.IntN(2) == 0 {
		if err := c.Set(ctx, name, v); err != nil {
			return false, err
		}
	} else {
		n, err := c.Increment(ctx, name, 1)
		if err != nil {
			return false, err
		}
		if n != v {
			return false, fmt.Errorf("Increment(%s) = %d; want %d", name, n, v)
		}
	}
	ack := time.Since(t0)
	next := append(acks[:len(acks):len(acks)], ack)
	k.acks.Store(&next)
	return true, nil
}

// mixCheck checks a read of key name that started at start and returned
// version v, against the acknowledgements acks of the key's writes.
func mixCheck(st *mixStats, name string, v int64, start time.Duration, acks []time.Duration, phaseStart time.Duration) {
	if v < 1 || v >= int64(len(acks)) {
		// A version not yet acknowledged when acks was read: newer than
		// every acknowledged one.
		return
	}
	// The oldest version newer than v that was acknowledged before the
	// read started, if any, made v stale that long ago.
	if next := v + 1; next < int64(len(acks)) && acks[next] < start {
		stale := start - acks[next]
		st.stale++
		st.maxStale = max(st.maxStale, stale)
		if stale > stalenessBound {
			st.violated++
			if len(st.violations) < 10 {
				st.violations = append(st.violations, fmt.Sprintf("a read of %s that started %v after version %d was acknowledged returned %d (bound %v)",
					name, stale.Round(time.Millisecond), next, v, stalenessBound))
			}
		}
	}
	// The newest version the bound requires: acknowledged more than the
	// bound before the read started.
	u := sort.Search(len(acks)-1, func(i int) bool { return acks[i+1] >= start-stalenessBound })
	if u >= 1 && acks[u] >= phaseStart && acks[u] > acks[1] {
		st.checked++
	}
}
