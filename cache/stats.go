package cache

import (
	"sync/atomic"
	"unsafe"
)

// Stats are the counters of a Cache since it was created: everything done
// through it, including what packages built on it (memo, lock) did
// through its Door. Views made with WithTTL share their parent's counters.
type Stats struct {
	Hits         int64 // keys found by Get, GetMulti (each place a key is asked for), Gets, and memo's reads (LocalHits included)
	Misses       int64 // keys not found by those reads
	Sets         int64 // keys written by Set, SetMulti, Add, CompareAndSwap, GetOrCompute and memo
	Deletes      int64 // keys Delete (and memo's Invalidate) found and removed
	Errors       int64 // operations that failed (not counting misses, ErrExists or ErrConflict), and failed computations
	DecodeErrors int64 // values that were found but failed to decode (also counted in Errors)
	Computations int64 // computations run by GetOrCompute and memo (refreshes included)

	// LocalHits are the Hits served by the local tier (Options.Local),
	// without a store call.
	LocalHits int64

	// Counted by memo.
	NegativeHits     int64 // reads answered by a cached "not found"
	Refreshes        int64 // refresh-ahead recomputations
	LeaseWaits       int64 // calls that waited for another caller's computation (its lease)
	FailOpen         int64 // store failures a computation went on through (memo's FailOpen)
	Healed           int64 // values that failed to decode and were recomputed and overwritten
	StaleServed      int64 // calls answered with a stale value because the computation failed or was slow (fail-safe): one per caller
	BackgroundErrors int64 // failures of work no caller waits for (refreshes, writes of computed values)
}

type counters struct {
	hits, localHits, misses, sets, deletes, errors, decodeErrors, computations counter

	negativeHits, refreshes, leaseWaits, failOpen, healed, staleServed, backgroundErrors counter
}

func (c *counters) snapshot() Stats {
	return Stats{
		Hits:         c.hits.load() + c.localHits.load(),
		LocalHits:    c.localHits.load(),
		Misses:       c.misses.load(),
		Sets:         c.sets.load(),
		Deletes:      c.deletes.load(),
		Errors:       c.errors.load(),
		DecodeErrors: c.decodeErrors.load(),
		Computations: c.computations.load(),

		NegativeHits:     c.negativeHits.load(),
		Refreshes:        c.refreshes.load(),
		LeaseWaits:       c.leaseWaits.load(),
		FailOpen:         c.failOpen.load(),
		Healed:           c.healed.load(),
		StaleServed:      c.staleServed.load(),
		BackgroundErrors: c.backgroundErrors.load(),
	}
}

// Stat names a counter of Stats that a package built on the Cache adds to
// through its Door (Door.Count).
type Stat uint8

// The counters of Door.Count, each a field of Stats.
const (
	StatHit Stat = iota
	StatMiss
	StatSet
	StatError
	StatDecodeError
	StatComputation
	StatNegativeHit
	StatRefresh
	StatLeaseWait
	StatFailOpen
	StatHealed
	StatStaleServed
	StatBackgroundError
)

func (c *counters) of(st Stat) *counter {
	switch st {
	case StatHit:
		return &c.hits
	case StatMiss:
		return &c.misses
	case StatSet:
		return &c.sets
	case StatError:
		return &c.errors
	case StatDecodeError:
		return &c.decodeErrors
	case StatComputation:
		return &c.computations
	case StatNegativeHit:
		return &c.negativeHits
	case StatRefresh:
		return &c.refreshes
	case StatLeaseWait:
		return &c.leaseWaits
	case StatFailOpen:
		return &c.failOpen
	case StatHealed:
		return &c.healed
	case StatStaleServed:
		return &c.staleServed
	case StatBackgroundError:
		return &c.backgroundErrors
	}
	return nil
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

const (
	counterBits    = 3
	counterStripes = 1 << counterBits
)

// Add adds n to the stripe of the calling goroutine's stack: goroutines
// run on stacks kilobytes apart, so those counting at once on different
// cores mostly land on different stripes, at the cost of reading an
// address (a random number costs ten times more on the hot path). The
// address is hashed (Fibonacci hashing, the top 3 bits of the product):
// stacks of the same size are aligned alike, and their addresses taken
// modulo the stripe count would share a stripe.
func (c *counter) Add(n int64) {
	var here byte
	c.stripes[(uint64(uintptr(unsafe.Pointer(&here))>>10)*0x9E3779B97F4A7C15)>>(64-counterBits)].n.Add(n)
}

func (c *counter) load() int64 {
	var sum int64
	for i := range c.stripes {
		sum += c.stripes[i].n.Load()
	}
	return sum
}
