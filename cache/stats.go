package cache

import "sync/atomic"

// Stats are the counters of a Cache since it was created. Views made with
// WithTTL share their parent's counters.
type Stats struct {
	Hits         int64 // Get and GetMulti keys found
	Misses       int64 // Get and GetMulti keys not found
	Sets         int64 // keys written by Set, SetMulti, Add, CompareAndSwap and GetOrCompute
	Deletes      int64 // keys Delete found and removed
	Errors       int64 // operations that failed (not counting misses, ErrExists or ErrConflict)
	DecodeErrors int64 // values that were found but failed to decode (also counted in Errors)
	Computations int64 // computations run by GetOrCompute
}

type counters struct {
	hits, misses, sets, deletes, errors, decodeErrors, computations atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Hits:         c.hits.Load(),
		Misses:       c.misses.Load(),
		Sets:         c.sets.Load(),
		Deletes:      c.deletes.Load(),
		Errors:       c.errors.Load(),
		DecodeErrors: c.decodeErrors.Load(),
		Computations: c.computations.Load(),
	}
}
