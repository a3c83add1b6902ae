package cachetest

import (
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// Harness describes a store under test and what its backend can do. The
// suite never asks which store it is testing: every difference between
// backends is one of these fields.
type Harness struct {
	// NewStore returns a store to test. The suite closes it when the test
	// ends. Stores returned by several calls may share one backend; the
	// suite keeps each test's keys apart with a unique prefix.
	NewStore func(t *testing.T) cache.Store

	// Exclusive reports that nothing else uses the backend while the suite
	// runs, so that Clear("") (which empties the whole store) may be tested.
	// Leave it false for a backend shared with other tests.
	Exclusive bool

	// TTLResolution is the granularity of the store's expiry: a TTL is
	// honoured to within it (time.Millisecond for Redis and memory,
	// time.Second for Memcached). Zero means time.Millisecond.
	TTLResolution time.Duration

	// TTLUnreadable reports that Store.TTL returns cache.ErrUnsupported
	// (Memcached).
	TTLUnreadable bool

	// NoClearPrefix reports that Store.Clear with a non-empty prefix returns
	// cache.ErrUnsupported (Memcached).
	NoClearPrefix bool

	// MaxValueSize is the largest value the store must hold, under any key
	// the suite uses; zero means 1 MiB.
	MaxValueSize int

	// TooLargeSize, when positive, is the size of a value the store
	// refuses under any key the suite uses (Memcached's item size limit):
	// every write of it (Set, SetMulti, Add, CompareAndSwap) must fail with
	// an error matching cache.ErrTooLarge and leave the key as it was. Zero
	// means the store has no such limit, and the case is skipped.
	TooLargeSize int

	// MaxKeySize is the longest key the suite uses; zero means 1000 bytes.
	MaxKeySize int

	// Skip names cases that do not hold on this backend, each with the
	// reason, by their path below the suite ("Increment/NotInteger"). It is
	// for stand-ins of a real backend (miniredis for Redis), whose own
	// harness runs every case on the real one: a store that means to be a
	// backend of its own passes every case.
	Skip map[string]string

	// DropReplies, for a store whose connection to its backend passes
	// through a fault proxy (see the redisstore tests), starts losing the
	// replies of writes after the backend applied them, at random and
	// with the connection reset, and returns a function that stops it.
	// The suite then also checks a linearizable history in which writes
	// may fail with an error matching cache.ErrUncertain: each such call
	// is kept with an unknown outcome (it may have taken effect at any
	// instant after it started, or not at all), and every other result
	// must still be explained. A store whose client sends a write again
	// after its reply was lost fails it. Nil for a store without faults.
	DropReplies func(t *testing.T) (stop func())
}
