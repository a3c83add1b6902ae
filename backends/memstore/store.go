package memstore

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/typedcache/typedcache/cache"
)

// DefaultMaxEntries is the bound of a Store whose Options set neither
// MaxEntries nor MaxBytes.
const DefaultMaxEntries = 100_000

// entryOverhead is the weight, in bytes, that MaxBytes adds to the key and
// the value of every entry: an estimate of the Store's and otter's
// bookkeeping per entry.
const entryOverhead = 128

var (
	_ cache.Store    = (*Store)(nil)
	_ cache.Notifier = (*Store)(nil)
	_ cache.Fencer   = (*Store)(nil)
	_ cache.Leaser   = (*Store)(nil)
	_ cache.Swapper  = (*Store)(nil)
	_ cache.Bus      = (*Store)(nil)
)

// Options configure a Store. A nil *Options, and a zero Options, mean a
// Store bounded to DefaultMaxEntries entries.
type Options struct {
	// MaxEntries bounds the number of entries. Past it, otter evicts the
	// entries least likely to be used again (W-TinyLFU). Zero means
	// DefaultMaxEntries unless MaxBytes is set.
	MaxEntries int

	// MaxBytes bounds the total weight of the entries instead of their
	// number. An entry weighs the length of its key plus the length of its
	// value plus 128 bytes of bookkeeping. A value heavier than MaxBytes is
	// evicted as soon as it is written. Setting both MaxEntries and MaxBytes
	// is an error.
	//
	// Entries written by AddLease or AddFenced with a ttl (lease locks:
	// lock.RedLock writes them) are outside either bound: they leave when
	// they expire or are deleted, never for size, since a lease lock
	// evicted while held would let a second holder in.
	MaxBytes int64
}

// entry is what the Store keeps under a key. It is immutable: every change
// of a key, even of its expiry alone, stores a new entry.
type entry struct {
	value     []byte // owned by the entry, never handed out
	expiresAt int64  // on the Store's clock (unix nanoseconds); 0 = never
	version   uint64 // store-wide, new for every write of the value
	// pinned marks a lease: an entry written by AddLease or AddFenced with
	// a ttl. While it has an expiry, it weighs nothing, so otter never
	// evicts it for size (see weigh): evicted, a lease lock would let a
	// second holder in.
	pinned bool
}

// live reports whether e has not expired at now.
func (e *entry) live(now int64) bool {
	return e.expiresAt == 0 || now < e.expiresAt
}

// Store is a cache.Store kept in the memory of the process, over an otter
// cache bounded in entries or in bytes. It also implements cache.Notifier
// (waiters of a key wake when it is released), cache.Fencer and cache.Bus
// (messages between the Caches over the Store, within the process).
//
// A Store is safe for concurrent use. Close stops its background goroutine
// and those of its bus subscriptions.
type Store struct {
	c       *otter.Cache[string, *entry]
	start   time.Time // the clock's origin: now() is monotonic from it
	startNs int64     // start.UnixNano()
	version atomic.Uint64
	closed  atomic.Bool

	fence atomic.Int64 // the last fencing token (see AddFenced)

	watch watchers
	bus   bus
}

// New returns a Store bounded as opts says (nil = DefaultMaxEntries
// entries). It returns an error if MaxEntries or MaxBytes is negative, or if
// both are set.
//
// The Store runs one background goroutine, otter's periodic clean-up of
// expired entries, until Close; otter may also run short-lived goroutines
// for its maintenance after writes.
func New(opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	switch {
	case o.MaxEntries < 0:
		return nil, errors.New("memstore: negative MaxEntries")
	case o.MaxBytes < 0:
		return nil, errors.New("memstore: negative MaxBytes")
	case o.MaxEntries > 0 && o.MaxBytes > 0:
		return nil, errors.New("memstore: MaxEntries and MaxBytes are mutually exclusive")
	}
	now := time.Now()
	s := &Store{
		start:   now,
		startNs: now.UnixNano(),
	}
	s.watch.init()
	s.bus.init()
	// Always weighted, so that pinned entries can weigh nothing: by bytes
	// for MaxBytes, else one per entry.
	oo := &otter.Options[string, *entry]{
		ExpiryCalculator: otter.ExpiryWritingFunc(expiresAfter),
	}
	if o.MaxBytes > 0 {
		oo.MaximumWeight = uint64(o.MaxBytes)
		oo.Weigher = weigh
	} else {
		oo.MaximumWeight = uint64(o.MaxEntries)
		if oo.MaximumWeight == 0 {
			oo.MaximumWeight = DefaultMaxEntries
		}
		oo.Weigher = weighOne
	}
	c, err := otter.New(oo)
	if err != nil {
		return nil, err
	}
	s.c = c
	return s, nil
}

// expiresAfter tells otter when an entry it writes expires: at the entry's
// own deadline. Otter's clock and the Store's are both unix nanoseconds
// advanced by the monotonic clock, so they agree.
func expiresAfter(e otter.Entry[string, *entry]) time.Duration {
	if e.Value.expiresAt == 0 {
		return math.MaxInt64 // otter's "never"
	}
	return time.Duration(max(e.Value.expiresAt-e.SnapshotAtNano, 1))
}

// weigh is the weigher of a Store bounded by MaxBytes.
func weigh(key string, e *entry) uint32 {
	if e.unevictable() {
		return 0
	}
	return uint32(min(int64(len(key))+int64(len(e.value))+entryOverhead, math.MaxUint32))
}

// weighOne is the weigher of a Store bounded by MaxEntries.
func weighOne(_ string, e *entry) uint32 {
	if e.unevictable() {
		return 0
	}
	return 1
}

// unevictable reports whether otter must not evict e for size: a pinned
// entry with an expiry, which leaves when it expires or is deleted. A pinned
// entry without expiry (Expire with 0 removed it) is evicted as any other,
// or it could stay for ever.
func (e *entry) unevictable() bool { return e.pinned && e.expiresAt != 0 }

// now returns the Store's clock: unix nanoseconds that advance with the
// monotonic clock, so that a change of the wall clock does not move expiries.
// It does not allocate.
func (s *Store) now() int64 {
	return s.startNs + int64(time.Since(s.start))
}

// deadline returns the expiry of a write with ttl made at now (0 = never).
func deadline(now int64, ttl time.Duration) int64 {
	if ttl == 0 {
		return 0
	}
	if int64(ttl) > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(ttl)
}

// check returns the error an operation must return before doing anything:
// the context's, or cache.ErrClosed.
func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return cache.ErrClosed
	}
	return nil
}

// newEntry returns an entry holding a copy of value (never nil) with a new
// version.
func (s *Store) newEntry(value []byte, expiresAt int64) *entry {
	v := make([]byte, len(value))
	copy(v, value)
	return &entry{value: v, expiresAt: expiresAt, version: s.version.Add(1)}
}

// lookup returns the live entry of key, or nil.
func (s *Store) lookup(key string) *entry {
	e, ok := s.c.GetIfPresent(key)
	if !ok || (e.expiresAt != 0 && s.now() >= e.expiresAt) {
		return nil
	}
	return e
}

// read is lookup for the plain reads (Get, GetMulti, Exists): otter's
// GetIfPresent already refuses an entry past its deadline, on its own
// clock, which runs as the Store's, so the hot path reads no clock twice.
func (s *Store) read(key string) *entry {
	e, _ := s.c.GetIfPresent(key)
	return e
}

// clone returns a copy of b that the caller owns, never nil.
func clone(b []byte) []byte {
	v := make([]byte, len(b))
	copy(v, b)
	return v
}

// Get returns a copy of the value of key, or cache.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	e := s.read(key)
	if e == nil {
		return nil, cache.ErrNotFound
	}
	return clone(e.value), nil
}

// GetMulti returns copies of the values of keys, nil for a miss. The
// copies share one allocation, each capped to its own length, so that an
// append to one never writes into another.
func (s *Store) GetMulti(ctx context.Context, keys []string) ([][]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var small [16]*entry
	hits := small[:0]
	if len(keys) > len(small) {
		hits = make([]*entry, 0, len(keys))
	}
	total := 0
	for _, k := range keys {
		e := s.read(k)
		if e != nil {
			total += len(e.value)
		}
		hits = append(hits, e)
	}
	out := make([][]byte, len(keys))
	buf := make([]byte, total)
	for i, e := range hits {
		if e != nil {
			n := copy(buf, e.value)
			out[i] = buf[:n:n]
			buf = buf[n:]
		}
	}
	return out, nil
}

// Set stores a copy of value under key with ttl (0 = no expiry).
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if ttl < 0 {
		return cache.ErrInvalidTTL
	}
	s.c.Set(key, s.newEntry(value, deadline(s.now(), ttl)))
	return nil
}

// SetMulti sets every item with its own ttl. It checks every ttl before it
// writes anything.
func (s *Store) SetMulti(ctx context.Context, items []cache.Item) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	for _, it := range items {
		if it.TTL < 0 {
			return cache.ErrInvalidTTL
		}
	}
	now := s.now()
	for _, it := range items {
		s.c.Set(it.Key, s.newEntry(it.Value, deadline(now, it.TTL)))
	}
	return nil
}

// Delete removes keys and reports how many held a live value. It wakes the
// watchers of every key it removes.
func (s *Store) Delete(ctx context.Context, keys ...string) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		if e, ok := s.c.Invalidate(k); ok {
			if e.live(s.now()) {
				n++
			}
			s.watch.wake(k)
		}
	}
	return n, nil
}

// Exists reports whether key holds a live value.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	return s.read(key) != nil, nil
}

// TTL returns the remaining time to live of key, cache.NoExpiration for a
// key without expiry, or cache.ErrNotFound.
func (s *Store) TTL(ctx context.Context, key string) (time.Duration, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	e, ok := s.c.GetIfPresent(key)
	if !ok {
		return 0, cache.ErrNotFound
	}
	if e.expiresAt == 0 {
		return cache.NoExpiration, nil
	}
	left := e.expiresAt - s.now()
	if left <= 0 {
		return 0, cache.ErrNotFound
	}
	return time.Duration(left), nil
}

// Clear deletes exactly the keys that start with prefix; "" deletes every
// key. A non-empty prefix walks every key of the Store: it is O(n) in the
// number of entries. Clear wakes the watchers of the keys it may remove.
// Fencing tokens keep growing after it (see AddFenced).
func (s *Store) Clear(ctx context.Context, prefix string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if prefix == "" {
		s.c.InvalidateAll()
		s.watch.wakePrefix("")
		return nil
	}
	var keys []string
	for k := range s.c.Keys() {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		s.c.Invalidate(k)
	}
	s.watch.wakePrefix(prefix)
	return nil
}

// Close stops the Store's background goroutine, drops its entries, wakes
// every watcher and stops every bus subscription (waiting for its
// goroutine, then calling its state(false)). Later operations return
// cache.ErrClosed. Close is idempotent and always returns nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.c.StopAllGoroutines()
	s.c.InvalidateAll()
	s.watch.wakePrefix("")
	s.bus.close()
	return nil
}
