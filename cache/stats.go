package cache

import (
	"math/rand/v2"
	"sync/atomic"
)

// Stats are the counters of a Cache since it was created. Views made with
// WithTTL share their parent's counters.
type Stats struct {
	Hits         int64 // keys found by Get, GetMulti (each place a key is asked for) and Gets
	Misses       int64 // keys not found by Get, GetMulti and Gets
	Sets         int64 // keys written by Set, SetMulti, Add, CompareAndSwap and GetOrCompute
	Deletes      int64 // keys Delete found and removed
	Errors       int64 // operations that failed (not counting misses, ErrExists or ErrConflict), and failed GetOrCompute computations
	DecodeErrors int64 // values that were found but failed to decode (also counted in Errors)
	Computations int64 // computations run by GetOrCompute
}

type counters struct {
	hits, misses, sets, deletes, errors, decodeErrors, computations counter
}

func (c *counters) snapshot() Stats {
	return Stats{
		Hits:         c.hits.load(),
		Misses:       c.misses.load(),
		Sets:         c.sets.load(),
		Deletes:      c.deletes.load(),
		Errors:       c.errors.load(),
		DecodeErrors: c.decodeErrors.load(),
		Computations: c.computations.load(),
	}
}

// counter is an int64 counter striped over cache lines, so that goroutines
// on different cores counting hits do not fight over one line: the hot path
// adds to a random stripe, and a read sums them.
type counter struct {
	stripes [counterStripes]struct {
		n atomic.Int64
		_ [56]byte // pad to a 64-byte cache line
	}
}

const counterStripes = 8

func (c *counter) Add(n int64) {
	c.stripes[rand.Uint32()%counterStripes].n.Add(n)
}

func (c *counter) load() int64 {
	var sum int64
	for i := range c.stripes {
		sum += c.stripes[i].n.Load()
	}
	return sum
}
