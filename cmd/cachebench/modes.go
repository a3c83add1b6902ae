package main

import (
	"context"
	"errors"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/memo"
)

// cacheTTL is the expiry of every value the benchmark caches: longer than
// a run, so that only invalidations remove values; short enough that keys
// left on a real server (memcached cannot clear a namespace) go soon.
const cacheTTL = 2 * time.Minute

// mode is one way of reading through the cache, run side by side with the
// others on the same workload.
type mode struct {
	name string
	// cached: it has a Cache, whose Stats the report shows.
	cached bool
	// local: its Cache has a local tier (Options.Local).
	local bool
	// memo: it promises one computation per cold key across instances.
	memo bool
	// coherent: it promises a bound on stale reads (see boundOf).
	coherent bool
}

// modes are the modes, in the order they run and are shown.
var modes = []mode{
	{name: "none", coherent: true},
	{name: "cache", cached: true},
	{name: "memo", cached: true, memo: true, coherent: true},
	{name: "memo+local", cached: true, local: true, memo: true, coherent: true},
}

// instance is one simulated service instance in a mode: it reads keys
// through its own store client and invalidates keys it wrote.
type instance interface {
	// get returns the record of key k, from the cache or the loader.
	get(ctx context.Context, k int) (record, error)
	// invalidate drops k from the cache after the database changed it.
	invalidate(ctx context.Context, k int) error
	// stats returns the instance's Cache's counters; zero without one.
	stats() cache.Stats
	close() error
}

// record is what the database holds for a key, and what the caches keep.
type record struct {
	Key     int    `msgpack:"k"`
	Version int64  `msgpack:"v"`
	Call    uint64 `msgpack:"c"` // the loader call that read it
}

// openInstance opens an instance of m, over a new client of b, with
// the cache namespace ns. busOff reports a local tier left off for want of
// a bus, and why.
func openInstance(m mode, cfg config, b *backend, db *database, ns string) (in instance, busOff string) {
	if !m.cached {
		return direct{db}, ""
	}
	cl := b.client()
	opts := &cache.Options[int, record]{Namespace: ns, TTL: cacheTTL, Timeout: opTimeout}
	if m.local {
		if cl.bus != nil {
			opts.Local = &cache.LocalOptions{MaxStaleness: cfg.maxStaleness, Bus: cl.bus}
		} else {
			// Without a bus the local TTL would be the only bound on
			// another instance's writes: the tier stays off.
			busOff = cl.noBus
		}
	}
	c := cache.New(cl.store, opts)
	if !m.memo {
		return &cached{c: c, db: db, cl: cl}, busOff
	}
	return &memoized{c: c, m: memo.Func(c, db.load, nil), cl: cl}, busOff
}

// direct is the "none" mode: no cache.
type direct struct{ db *database }

func (d direct) get(ctx context.Context, k int) (record, error) { return d.db.load(ctx, k) }
func (direct) invalidate(context.Context, int) error            { return nil }
func (direct) stats() cache.Stats                               { return cache.Stats{} }
func (direct) close() error                                     { return nil }

// cached is the "cache" mode: Cache.GetOrCompute, then Delete after a
// write.
type cached struct {
	c  *cache.Cache[int, record]
	db *database
	cl *client
}

func (c *cached) get(ctx context.Context, k int) (record, error) {
	return c.c.GetOrCompute(ctx, k, func(ctx context.Context) (record, error) { return c.db.load(ctx, k) })
}

func (c *cached) invalidate(ctx context.Context, k int) error {
	_, err := c.c.Delete(ctx, k)
	return err
}

func (c *cached) stats() cache.Stats { return c.c.Stats() }
func (c *cached) close() error       { return errors.Join(c.c.Close(), c.cl.close()) }

// memoized is the memo modes: a memoized loader (memo.Func), then
// Invalidate after a write.
type memoized struct {
	c  *cache.Cache[int, record]
	m  *memo.Memo[int, record]
	cl *client
}

func (m *memoized) get(ctx context.Context, k int) (record, error) { return m.m.Get(ctx, k) }
func (m *memoized) invalidate(ctx context.Context, k int) error    { return m.m.Invalidate(ctx, k) }
func (m *memoized) stats() cache.Stats                             { return m.c.Stats() }

func (m *memoized) close() error {
	m.m.Close()
	return errors.Join(m.c.Close(), m.cl.close())
}

// clearCache removes what an instance of the mode cached, on servers that can
// (memcached cannot clear a namespace: its keys expire with cacheTTL).
func clearCache(ctx context.Context, in instance) {
	var c *cache.Cache[int, record]
	switch in := in.(type) {
	case *cached:
		c = in.c
	case *memoized:
		c = in.c
	default:
		return
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	_ = c.Clear(ctx)
}
