package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// A read is stale when it returns a version of its key older than one
// whose write and invalidation were acknowledged before the read started.
// Two checks look for them:
//
//   - every read of the timed phase, held to its mode's bound (boundOf);
//   - the audit, which reads the store itself, and finds stale sets: values
//     stored after an invalidation that should have removed them. memo
//     promises none, and the audit needs no allowance of time to see one.

// boundOf returns how stale a read of m may be (from the acknowledgment to
// the read's start), or -1 for a mode that claims no bound.
//
//   - none reads the database: 0.
//   - cache claims nothing: a computation that read the database before a
//     write stores its value after the write's Delete (the cache-aside
//     race), and the old value stays until the next write or its TTL.
//   - memo promises no stale sets (the audit checks it), not that reads
//     are never stale: a computation running when Invalidate returns still
//     hands its value to its callers, in every instance that waits for it,
//     and a read that starts meanwhile joins it (one flight per key per
//     process). Its reads are allowed -max-staleness, far more than a
//     computation lasts, to catch what is stale for good.
//   - memo+local: the same -max-staleness is its local tier's
//     LocalOptions.MaxStaleness, the allowance for the bus to deliver the
//     invalidation to the other instances.
func boundOf(m mode, cfg config) time.Duration {
	switch {
	case !m.coherent:
		return -1
	case !m.memo:
		return 0
	}
	return cfg.maxStaleness
}

// staleRead describes a stale read.
type staleRead struct {
	key        int
	got, newer int64         // the version read; the newer one acknowledged before the read
	age        time.Duration // from that acknowledgment to the read's start
	call       uint64        // the loader call whose value it got
}

func (s staleRead) String() string {
	return fmt.Sprintf("key %d read at version %d, %s after version %d was acknowledged", s.key, s.got, fmtDur(s.age), s.newer)
}

// staleness counts stale reads against a bound.
type staleness struct {
	stale     int64     // stale reads
	pastBound int64     // of which the bound does not allow
	worst     staleRead // the stalest
	worstPast staleRead // the stalest the bound does not allow
}

// add counts s, against bound (< 0: none).
func (st *staleness) add(s staleRead, bound time.Duration) {
	st.stale++
	if s.age > st.worst.age {
		st.worst = s
	}
	if bound >= 0 && s.age > bound {
		st.pastBound++
		if s.age > st.worstPast.age {
			st.worstPast = s
		}
	}
}

func (st *staleness) merge(o staleness) {
	st.stale += o.stale
	st.pastBound += o.pastBound
	if o.worst.age > st.worst.age {
		st.worst = o.worst
	}
	if o.worstPast.age > st.worstPast.age {
		st.worstPast = o.worstPast
	}
}

// auditResult is what the audit of a mode's store found.
type auditResult struct {
	reads  int64     // values the audit read
	stale  staleness // of them, the stale ones
	sets   int       // stale sets: distinct stale values (a key and the loader call that read it)
	errors int64
	err    error // the first error
}

// audit reads the store of the mode whose caches use namespace ns, through
// a client and a Cache of its own (no local tier), until end, keys chosen
// as the workload chooses them. A value older than one whose invalidation
// was acknowledged before the audit's read started was stored after the
// invalidation removed the key: a stale set. (With memo, a value can only
// be stored over its computation's lease, which the invalidation removed,
// and a computation that took a lease after it read the database after the
// write.)
func audit(ctx context.Context, cfg config, b *backend, db *database, ns string, end time.Time) auditResult {
	cl := b.client()
	c := cache.New(cl.store, &cache.Options[int, record]{Namespace: ns, Timeout: opTimeout})
	defer func() {
		_ = c.Close()
		_ = cl.close()
	}()
	r := rand.New(rand.NewPCG(0xa0d17, 0x9e3779b97f4a7c15))
	z := rand.NewZipf(r, cfg.zipf, 1, uint64(cfg.keys-1))
	var res auditResult
	sets := make(map[[2]uint64]bool)
	for ctx.Err() == nil {
		start := time.Now()
		if !start.Before(end) {
			break
		}
		k := int(z.Uint64())
		rec, found, err := c.Get(ctx, k)
		if err != nil {
			res.errors++
			if res.err == nil {
				res.err = err
			}
			continue
		}
		if !found {
			continue
		}
		res.reads++
		if newer, stale := db.staleness(k, rec.Version, start); stale {
			res.stale.add(staleRead{key: k, got: rec.Version, newer: newer.version, age: start.Sub(newer.at), call: rec.Call}, 0)
			sets[[2]uint64{uint64(k), rec.Call}] = true
		}
	}
	res.sets = len(sets)
	return res
}
