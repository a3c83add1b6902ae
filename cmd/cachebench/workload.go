package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// coldKeys is how many keys the stampede reads, one after the other: keys
// outside the workload's key space, that nothing else reads or writes.
const coldKeys = 8

// database is the slow source of truth that the caches front: a version
// per key, bumped by each write, read by the loader after a latency, with
// the calls of the loader counted per key, and the acknowledged writes
// recorded for the staleness check.
type database struct {
	latency time.Duration
	keys    []dbKey // the workload's keys, then the cold keys
	calls   atomic.Int64
}

type dbKey struct {
	calls   atomic.Int64
	mu      sync.RWMutex
	version int64
	acks    []ack // in the order of their times
}

// ack records that a write of the key was acknowledged: its invalidation
// returned.
type ack struct {
	at      time.Time
	version int64 // the highest version acknowledged by then
}

func newDatabase(keys int, latency time.Duration) *database {
	return &database{latency: latency, keys: make([]dbKey, keys+coldKeys)}
}

// coldKey returns the i-th key of the stampede.
func (db *database) coldKey(i int) int { return len(db.keys) - coldKeys + i }

// load is the loader: it answers after the latency with the version the
// key had halfway through (a query sent, executed, then answered), and the
// number of the call, which tells its value from every other call's.
func (db *database) load(ctx context.Context, k int) (record, error) {
	if k < 0 || k >= len(db.keys) {
		return record{}, fmt.Errorf("database: no key %d", k)
	}
	d := &db.keys[k]
	d.calls.Add(1)
	call := uint64(db.calls.Add(1))
	half := db.latency / 2
	if err := sleep(ctx, half); err != nil {
		return record{}, err
	}
	d.mu.RLock()
	v := d.version
	d.mu.RUnlock()
	if err := sleep(ctx, db.latency-half); err != nil {
		return record{}, err
	}
	return record{Key: k, Version: v, Call: call}, nil
}

// write updates k and returns its new version.
func (db *database) write(k int) int64 {
	d := &db.keys[k]
	d.mu.Lock()
	defer d.mu.Unlock()
	d.version++
	return d.version
}

// acknowledge records that the write of version v of k has been
// invalidated: from now on, a coherent read of k returns v or newer.
func (db *database) acknowledge(k int, v int64) {
	d := &db.keys[k]
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := len(d.acks); n > 0 {
		v = max(v, d.acks[n-1].version)
	}
	d.acks = append(d.acks, ack{at: time.Now(), version: v})
}

// staleness reports whether a read of k that started at start and
// returned version v is stale: whether a newer version had been
// acknowledged before it started. It returns the first such
// acknowledgment.
func (db *database) staleness(k int, v int64, start time.Time) (newer ack, stale bool) {
	d := &db.keys[k]
	d.mu.RLock()
	defer d.mu.RUnlock()
	i := sort.Search(len(d.acks), func(i int) bool { return d.acks[i].version > v })
	if i == len(d.acks) || !d.acks[i].at.Before(start) {
		return ack{}, false
	}
	return d.acks[i], true
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stampedeResult is what the stampede saw.
type stampedeResult struct {
	callers int     // readers of each cold key, all at once
	calls   []int64 // loader calls per cold key
	misses  int64   // cache misses of the callers (Stats.Misses), all cold keys
	errors  int64
	err     error // the first error
}

// maxCalls returns the most loader calls a cold key got.
func (s *stampedeResult) maxCalls() int64 {
	if len(s.calls) == 0 {
		return 0
	}
	return slices.Max(s.calls)
}

// stampede has every goroutine of every instance read each cold key at
// the same instant, one key after the other, and counts the loader's
// calls per key.
func stampede(ctx context.Context, db *database, insts []instance, goroutines int) stampedeResult {
	res := stampedeResult{callers: len(insts) * goroutines}
	var mu sync.Mutex
	for c := range coldKeys {
		k := db.coldKey(c)
		start := make(chan struct{})
		var ready, done sync.WaitGroup
		for _, in := range insts {
			for range goroutines {
				ready.Add(1)
				done.Add(1)
				go func() {
					defer done.Done()
					ready.Done()
					<-start
					rec, err := in.get(ctx, k)
					if err == nil && rec.Key != k {
						err = fmt.Errorf("read of cold key %d returned the record of key %d", k, rec.Key)
					}
					if err != nil {
						mu.Lock()
						res.errors++
						if res.err == nil {
							res.err = err
						}
						mu.Unlock()
					}
				}()
			}
		}
		ready.Wait()
		close(start)
		done.Wait()
		res.calls = append(res.calls, db.keys[k].calls.Load())
	}
	return res
}

// warmUp reads every key of the workload once, spread over the instances
// and their goroutines, so that the timed phase starts from a full cache
// and its loader calls are the reloads its writes cause. It returns the
// number of reads that failed, and the first error.
func warmUp(ctx context.Context, cfg config, insts []instance) (int64, error) {
	var next atomic.Int64
	var failed atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for _, in := range insts {
		for range cfg.goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					k := int(next.Add(1) - 1)
					if k >= cfg.keys {
						return
					}
					if _, err := in.get(ctx, k); err != nil {
						failed.Add(1)
						mu.Lock()
						if first == nil {
							first = err
						}
						mu.Unlock()
					}
				}
			}()
		}
	}
	wg.Wait()
	return failed.Load(), first
}

// loadResult is what the timed phase saw, all instances together.
type loadResult struct {
	elapsed               time.Duration
	reads, writes, errors int64
	err                   error           // the first error
	latencies             []time.Duration // of the reads, sorted
	wrong                 int64           // reads that returned another key's record
	stale                 staleness       // of the reads, against the mode's bound
}

// worker is one goroutine of the timed phase, with what it saw.
type worker struct {
	loadResult
}

// loadPhase runs the timed phase: goroutines per instance read zipf keys
// and, now and then, write a key and invalidate it, until end. Their
// stale reads are counted against bound (see boundOf).
func loadPhase(ctx context.Context, cfg config, db *database, insts []instance, end time.Time, bound time.Duration) loadResult {
	start := time.Now()
	ws := make([]worker, len(insts)*cfg.goroutines)
	var wg sync.WaitGroup
	for i, in := range insts {
		for g := range cfg.goroutines {
			n := i*cfg.goroutines + g
			wg.Add(1)
			go func() {
				defer wg.Done()
				ws[n].run(ctx, cfg, db, in, end, bound, uint64(n))
			}()
		}
	}
	wg.Wait()
	res := loadResult{elapsed: time.Since(start)}
	for i := range ws {
		w := &ws[i].loadResult
		res.reads += w.reads
		res.writes += w.writes
		res.errors += w.errors
		if res.err == nil {
			res.err = w.err
		}
		res.wrong += w.wrong
		res.stale.merge(w.stale)
		res.latencies = append(res.latencies, w.latencies...)
	}
	slices.Sort(res.latencies)
	return res
}

func (w *worker) run(ctx context.Context, cfg config, db *database, in instance, end time.Time, bound time.Duration, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	z := rand.NewZipf(r, cfg.zipf, 1, uint64(cfg.keys-1))
	for ctx.Err() == nil {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		k := int(z.Uint64())
		if r.Float64() < cfg.writes {
			v := db.write(k)
			if err := in.invalidate(ctx, k); err != nil {
				w.fail(err) // not acknowledged: no read is held to it
				continue
			}
			db.acknowledge(k, v)
			w.writes++
			continue
		}
		rec, err := in.get(ctx, k)
		lat := time.Since(now)
		if err != nil {
			w.fail(err)
			continue
		}
		w.reads++
		w.latencies = append(w.latencies, lat)
		if rec.Key != k {
			w.wrong++
			continue
		}
		if newer, stale := db.staleness(k, rec.Version, now); stale {
			w.stale.add(staleRead{key: k, got: rec.Version, newer: newer.version, age: now.Sub(newer.at), call: rec.Call}, bound)
		}
	}
}

func (w *worker) fail(err error) {
	w.errors++
	if w.err == nil {
		w.err = err
	}
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// sumStats adds the instances' counters up.
func sumStats(insts []instance) cache.Stats {
	var s cache.Stats
	for _, in := range insts {
		t := in.stats()
		s.Hits += t.Hits
		s.LocalHits += t.LocalHits
		s.Misses += t.Misses
		s.Computations += t.Computations
		s.LeaseWaits += t.LeaseWaits
		s.Errors += t.Errors
	}
	return s
}

// statsSince returns the counters of s less those of before.
func statsSince(s, before cache.Stats) cache.Stats {
	return cache.Stats{
		Hits:         s.Hits - before.Hits,
		LocalHits:    s.LocalHits - before.LocalHits,
		Misses:       s.Misses - before.Misses,
		Computations: s.Computations - before.Computations,
		LeaseWaits:   s.LeaseWaits - before.LeaseWaits,
		Errors:       s.Errors - before.Errors,
	}
}

// runMode runs m on a new database, with cfg.instances new instances: the
// warm-up (modes with a cache), the stampede, then the timed phase.
func runMode(ctx context.Context, cfg config, b *backend, m mode, bar *progress) (*result, error) {
	res := &result{mode: m}
	if m.local {
		if why := b.localSkip(); why != "" {
			res.skipped = why
			bar.skip()
			return res, nil
		}
	}
	db := newDatabase(cfg.keys, cfg.loaderLatency)
	ns := b.namespace + ":" + m.name
	insts := make([]instance, cfg.instances)
	for i := range insts {
		in, off := openInstance(m, cfg, b, db, ns)
		if off != "" {
			res.localOff = off
		}
		if cfg.wrap != nil {
			in = cfg.wrap(m, db, in)
		}
		insts[i] = in
	}
	defer func() {
		clearCache(context.WithoutCancel(ctx), insts[0])
		for _, in := range insts {
			_ = in.close()
		}
	}()

	res.bound = boundOf(m, cfg)
	if m.cached {
		bar.describe(m.name + ": warm-up")
		res.warmUpErrors, res.warmUpErr = warmUp(ctx, cfg, insts)
	}
	bar.describe(m.name + ": stampede")
	before := sumStats(insts)
	res.stampede = stampede(ctx, db, insts, cfg.goroutines)
	mid := sumStats(insts)
	res.stampede.misses = mid.Misses - before.Misses

	bar.begin(m.name)
	calls := db.calls.Load()
	end := time.Now().Add(cfg.duration)
	audited := make(chan auditResult, 1)
	if m.cached {
		go func() { audited <- audit(ctx, cfg, b, db, ns, end) }()
	} else {
		audited <- auditResult{}
	}
	res.load = loadPhase(ctx, cfg, db, insts, end, res.bound)
	res.audit = <-audited
	res.loaderCalls = db.calls.Load() - calls
	res.stats = statsSince(sumStats(insts), mid)
	bar.end()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return res, nil
}
