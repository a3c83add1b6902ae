package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/typedcache/typedcache/codec"
)

// Cache is a typed cache over a Store: it builds keys (namespace and key
// function), encodes and decodes values with its codec, applies the default
// TTL and the per-operation timeout, validates input, wraps errors with the
// operation and the key, and counts statistics. It is safe for concurrent
// use.
type Cache[K comparable, V any] struct {
	*shared[K, V]
	ttl time.Duration // expiry of writes; 0 = none; < 0 invalid (a bad WithTTL)
}

// shared is the state a Cache shares with the views WithTTL makes of it.
type shared[K comparable, V any] struct {
	store          Store
	prefix         string // "namespace:" or ""
	key            func(K) string
	codec          codec.Codec[V]
	defaultTTL     time.Duration // Options.TTL
	raw            bool          // Options.Raw
	compress       Compression   // Options.Compression, with defaults; Compressor nil when off
	timeout        time.Duration
	computeTimeout time.Duration
	flights        singleflight.Group
	stats          counters
	wakes          wakeRegistry
	local          *local[K, V] // the local tier; nil without Options.Local
	obs            observer
	flightsByKey   flights // the Door's flights (memo)
	bounded        bounded // the untyped part, for Records
}

// base returns the untyped part of s.
func (s *shared[K, V]) base() *bounded { return &s.bounded }

// New returns a Cache over store. A nil opts means the defaults (see
// Options). New panics if store is nil, if opts.TTL, opts.Timeout or
// opts.ComputeTimeout is negative, or if opts.Namespace contains a NUL byte:
// all are programming errors.
func New[K comparable, V any](store Store, opts *Options[K, V]) *Cache[K, V] {
	if store == nil {
		panic("cache: New with a nil Store")
	}
	var o Options[K, V]
	if opts != nil {
		o = *opts
	}
	if o.TTL < 0 {
		panic("cache: New with a negative TTL")
	}
	if o.Timeout < 0 || o.ComputeTimeout < 0 {
		panic("cache: New with a negative timeout")
	}
	if strings.IndexByte(o.Namespace, ReservedKeyByte) >= 0 {
		panic("cache: New with a Namespace that contains a NUL byte")
	}
	if o.Raw && o.Compression != nil {
		panic("cache: New with both Raw and Compression: compressed values are entries")
	}
	s := &shared[K, V]{
		store:          store,
		key:            o.Key,
		codec:          o.Codec,
		defaultTTL:     o.TTL,
		raw:            o.Raw,
		compress:       compressionOf(o.Compression),
		timeout:        o.Timeout,
		computeTimeout: o.ComputeTimeout,
	}
	if o.Namespace != "" {
		s.prefix = o.Namespace + ":"
	}
	if s.key == nil {
		s.key = defaultKey[K]()
	}
	if s.codec == nil {
		s.codec = codec.Default[V]()
	}
	if s.computeTimeout == 0 {
		s.computeTimeout = DefaultComputeTimeout
	}
	s.obs = observer{name: o.Name, obs: o.Observer, log: o.Logger}
	if s.obs.name == "" {
		s.obs.name = o.Namespace
	}
	if t, ok := o.Observer.(Tracer); ok {
		s.obs.tracer = t
	}
	s.bounded = bounded{store: store, timeout: s.timeout, stats: &s.stats, wakes: &s.wakes}
	if o.Local != nil {
		l, err := newLocal[K, V](store, s.prefix, o.TTL, o.Local, &s.obs)
		if err != nil {
			panic("cache: New: local tier: " + err.Error())
		}
		s.local = l
	}
	return &Cache[K, V]{shared: s, ttl: o.TTL}
}

// WithTTL returns a view of the cache whose writes (Set, SetMulti, Add,
// CompareAndSwap, GetOrCompute) expire after ttl instead of the default; a
// ttl of 0 means no expiry. The view shares the store, the statistics and
// the in-flight computations of c. Writes through a view with a negative ttl
// fail with ErrInvalidTTL.
func (c *Cache[K, V]) WithTTL(ttl time.Duration) *Cache[K, V] {
	return &Cache[K, V]{shared: c.shared, ttl: ttl}
}

// WriteTTL returns the expiry of the cache's writes: the view's, for a view
// made by WithTTL, else Options.TTL; 0 means no expiry.
func (c *Cache[K, V]) WriteTTL() time.Duration { return c.ttl }

// Key returns the full store key of k: the namespace prefix and the key
// function's text. It does not validate the key.
func (c *Cache[K, V]) Key(k K) string {
	if c.prefix == "" {
		return c.key(k)
	}
	return c.prefix + c.key(k)
}

// Namespace returns the store key prefix of the cache ("namespace:"), or "".
func (c *Cache[K, V]) Namespace() string { return c.prefix }

// Stats returns a snapshot of the cache's counters.
func (c *Cache[K, V]) Stats() Stats { return c.stats.snapshot() }

// Close closes the store. A store never closes a client the user passed in.
func (c *Cache[K, V]) Close() error {
	if c.local != nil {
		c.local.close()
	}
	return c.store.Close()
}

// buildKey returns the full store key of k, like Key, or an error matching
// ErrInvalidKey if the key function gives an empty key or one that contains
// a NUL byte (see ReservedKeyByte).
func (c *Cache[K, V]) buildKey(k K) (string, error) {
	s := c.key(k)
	if s == "" || strings.IndexByte(s, ReservedKeyByte) >= 0 {
		return "", ErrInvalidKey
	}
	if c.prefix == "" {
		return s, nil
	}
	return c.prefix + s, nil
}

// ReservedKeyByte, NUL, never appears in a key the Cache builds: Door.Key
// rejects a key whose text contains it, and New a namespace. Packages built
// on the Cache (memo) derive keys of their own by appending it and a suffix
// to a Cache key, so that no user key can ever be one of them.
const ReservedKeyByte = '\x00'

// noCancel is the cancel function of a context without a timeout. It is a
// package variable so that the hot path allocates no closure.
var noCancel context.CancelFunc = func() {}

// opContext applies the cache's Timeout to ctx.
func (c *Cache[K, V]) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout <= 0 {
		return ctx, noCancel
	}
	return context.WithTimeout(ctx, c.timeout)
}

// fail counts err unless it is an expected outcome and wraps it.
func (c *Cache[K, V]) fail(op, key string, err error) error {
	if !errors.Is(err, ErrExists) && !errors.Is(err, ErrConflict) {
		c.stats.errors.Add(1)
	}
	return &OpError{Op: op, Key: key, Err: err}
}

func (c *Cache[K, V]) writeTTL() (time.Duration, error) {
	if c.ttl < 0 {
		return 0, ErrInvalidTTL
	}
	return c.ttl, nil
}

// Get returns the value of k. A miss is found == false with a nil error; err
// is set only for failures, including a stored value that does not decode
// (it wraps codec.ErrDecode and the value is left in the store).
// A cached zero value is a hit.
func (c *Cache[K, V]) Get(ctx context.Context, k K) (v V, found bool, err error) {
	if c.obs.obs == nil {
		// The hot path: a local hit returns from here, without the
		// results get adds for the Observer, and with local.get and
		// local.value written out (the compiler does not inline them).
		if l := c.local; l != nil && !l.off.Load() {
			if e, ok := l.c.GetIfPresent(k); ok {
				c.stats.localHits.Add(1)
				if l.clone == nil {
					return e.v, true, nil
				}
				return l.cloned(e), true, nil
			}
		}
		v, found, _, err = c.getStore(ctx, k)
		return v, found, err
	}
	start := time.Now()
	v, found, layer, key, err := c.get(ctx, k)
	if key == "" {
		key = c.Key(k)
	}
	c.obs.emit(ctx, Event{Op: OpGet, Layer: layer, Result: readResult(found, err), Key: key, Duration: time.Since(start), Err: err})
	return v, found, err
}

// observeWrite reports a write (or delete) of key that started at start
// and ended with *err.
func (c *Cache[K, V]) observeWrite(ctx context.Context, op Op, key string, start time.Time, err *error) {
	c.obs.emit(ctx, Event{Op: op, Result: writeResult(*err), Key: key, Duration: time.Since(start), Err: *err})
}

// readResult is the Result of a read.
func readResult(found bool, err error) Result {
	switch {
	case err != nil:
		return ResultError
	case found:
		return ResultHit
	}
	return ResultMiss
}

// writeResult is the Result of a write.
func writeResult(err error) Result {
	if err != nil {
		return ResultError
	}
	return ResultOK
}

// get is Get, reporting where the read was answered and the store key
// ("" for a local hit).
func (c *Cache[K, V]) get(ctx context.Context, k K) (v V, found bool, layer Layer, key string, err error) {
	if l := c.local; l != nil {
		if e, ok := l.get(k); ok {
			c.stats.localHits.Add(1)
			return l.value(e), true, LayerLocal, "", nil
		}
	}
	v, found, key, err = c.getStore(ctx, k)
	return v, found, LayerStore, key, err
}

// getStore is get once the local tier has not answered: a read of the
// store, filling the local tier with the value found.
func (c *Cache[K, V]) getStore(ctx context.Context, k K) (v V, found bool, key string, err error) {
	key, err = c.buildKey(k)
	if err != nil {
		return v, false, key, c.fail("get", key, err)
	}
	var gen uint64
	if c.local != nil {
		gen = c.local.generation(key)
	}
	ctx, cancel := c.opContext(ctx)
	data, err := c.store.Get(ctx, key)
	cancel()
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			c.stats.misses.Add(1)
			return v, false, key, nil
		}
		return v, false, key, c.fail("get", key, err)
	}
	if c.local != nil {
		e := c.entryOf(data)
		if e.Corrupt != nil {
			c.stats.decodeErrors.Add(1)
			return v, false, key, c.fail("get", key, e.Corrupt)
		}
		if !e.HasValue || !e.Fresh(time.Now()) {
			c.stats.misses.Add(1)
			return v, false, key, nil
		}
		c.fill(k, key, gen, &e)
		c.stats.hits.Add(1)
		return e.Value, true, key, nil
	}
	v, found, err = c.decodeValue(data, time.Now)
	if err != nil {
		c.stats.decodeErrors.Add(1)
		return v, false, key, c.fail("get", key, err)
	}
	if !found {
		c.stats.misses.Add(1)
		return v, false, key, nil
	}
	c.stats.hits.Add(1)
	return v, true, key, nil
}

// fill keeps the value of e, read from the store for k (store key key)
// when the key's generation was gen, in the local tier.
func (c *Cache[K, V]) fill(k K, key string, gen uint64, e *Entry[V]) {
	v := e.Value
	if c.local.clone != nil {
		// The reader gets e.Value, and may change it: the tier keeps a
		// copy of its own.
		v, _ = c.local.clone(v).(V)
	}
	c.local.install(k, key, gen, localEntry[V]{v: v, written: e.Written, freshUntil: e.FreshUntil, plain: e.Plain}, e.FreshUntil)
}

// generation returns the local tier's generation of key, to give to
// wrote after a write of key; 0 without a local tier.
func (c *Cache[K, V]) generation(key string) uint64 {
	if c.local == nil {
		return 0
	}
	return c.local.generation(key)
}

// wrote updates the local tier after a write of key (k) through this
// Cache, or one that may have reached the store: it drops the key (moving
// its generation, so that no older fill lands after), keeps v when given
// (the writer's own fresh copy) unless an invalidation of the key arrived
// since gen was taken before the write (another write may have followed
// this one in the store), and publishes the invalidation to the other
// processes. It returns the publication's error, wrapped with
// ErrNotInvalidated; nil without a local tier.
func (c *Cache[K, V]) wrote(ctx context.Context, k K, key string, gen uint64, v *V, ttl time.Duration) error {
	l := c.local
	if l == nil {
		return nil
	}
	l.invalidate(key)
	if v != nil {
		var until time.Time
		if ttl > 0 {
			until = time.Now().Add(ttl)
		}
		// With a Clone hook the writer may change v once the write has
		// returned: the tier keeps a copy of its own.
		kept := *v
		if l.clone != nil {
			kept, _ = l.clone(kept).(V)
		}
		// The generation has moved once, by the invalidate above, if
		// nothing else invalidated the key since before the write.
		l.install(k, key, gen+1, localEntry[V]{v: kept, plain: true}, until)
	}
	return c.publish(ctx, invKey, key)
}

// wroteKey is wrote for a store key whose typed key is not at hand (the
// Door's writes): it drops the key and publishes.
func (c *Cache[K, V]) wroteKey(ctx context.Context, key string) error {
	l := c.local
	if l == nil {
		return nil
	}
	l.invalidate(key)
	return c.publish(ctx, invKey, key)
}

// publish sends the invalidation of key (kind invKey or invPrefix) on the
// local tier's bus, bounded by the Timeout as every store operation. A
// failure is a background failure (counted, reported, logged), returned to
// the writer too, wrapped with ErrNotInvalidated.
func (c *Cache[K, V]) publish(ctx context.Context, kind byte, key string) error {
	var (
		octx   context.Context
		cancel context.CancelFunc
	)
	if ctx.Err() != nil {
		// The caller's context ended, maybe during the write, which may
		// have landed: the invalidation goes out all the same, on a
		// context detached from ctx and bounded by the Timeout (a second
		// without one), as landed reads.
		bound := c.timeout
		if bound <= 0 {
			bound = time.Second
		}
		octx, cancel = context.WithTimeout(context.WithoutCancel(ctx), bound)
	} else {
		octx, cancel = c.opContext(ctx)
	}
	err := c.local.publish(octx, kind, key)
	cancel()
	if err == nil {
		return nil
	}
	c.stats.backgroundErrors.Add(1)
	c.obs.background(ctx, "invalidation", key, err)
	return errors.Join(ErrNotInvalidated, err)
}

// notInvalidated adds to err, the error of a write that may have landed
// (nil if it did), perr, the failure to publish its invalidation
// (ErrNotInvalidated): the caller learns that other Caches may serve the
// old value.
func notInvalidated(err, perr error) error {
	switch {
	case perr == nil:
		return err
	case err == nil:
		return perr
	}
	return errors.Join(err, perr)
}

// decodeValue decodes what a plain read found: plain bytes are a value; an
// entry is a value while it is fresh, and a miss when it holds only a lease,
// a cached "not found", or a value past its logical expiry. now is called
// only for entries with a logical expiry.
func (c *Cache[K, V]) decodeValue(data []byte, now func() time.Time) (v V, found bool, err error) {
	if c.raw || !isEntry(data) {
		v, err = c.codec.Decode(data)
		return v, err == nil, err
	}
	m, payload, err := parseEntry(data)
	if err != nil {
		return v, false, err
	}
	if m.flags&flagValue == 0 || (m.freshUntil != 0 && now().UnixMilli() >= m.freshUntil) {
		return v, false, nil
	}
	v, err = c.decodePayload(m, payload)
	return v, err == nil, err
}

// decodePayload decodes the value of an entry.
func (c *Cache[K, V]) decodePayload(m entryMeta, payload []byte) (V, error) {
	if m.flags&flagCompressed != 0 {
		var zero V
		data, err := c.decompress(payload)
		if err != nil {
			return zero, err
		}
		return c.codec.Decode(data)
	}
	return c.codec.Decode(payload)
}

// compressionOf returns the compression settings of o with defaults, or
// the zero value (off) for nil; its MaxDecompressed is always set, for
// reading entries others compressed.
func compressionOf(o *Compression) Compression {
	var r Compression
	if o != nil {
		r = *o
		if r.Compressor == nil {
			r.Compressor = codec.S2()
		}
		if r.Threshold <= 0 {
			r.Threshold = DefaultCompressionThreshold
		}
	}
	if r.MaxDecompressed <= 0 {
		r.MaxDecompressed = DefaultMaxDecompressed
	}
	return r
}

// compressed returns the payload of a compressed entry of data (the
// compressor's ID, then the compressed bytes), or nil when compression is
// off, data is under the threshold, or compressing would not make it
// smaller.
func (c *Cache[K, V]) compressed(data []byte) []byte {
	comp := c.compress.Compressor
	if comp == nil || len(data) < c.compress.Threshold {
		return nil
	}
	out := comp.Compress(append(make([]byte, 0, len(data)/2+16), comp.ID()), data)
	if len(out) >= len(data) {
		return nil
	}
	return out
}

// decompress returns the value's encoding from a compressed payload.
func (c *Cache[K, V]) decompress(payload []byte) ([]byte, error) {
	if len(payload) == 0 {
		return nil, fmt.Errorf("%w: %w: compressed payload without a compressor id", codec.ErrDecode, errEntry)
	}
	id := payload[0]
	comp := c.compress.Compressor
	if comp == nil || comp.ID() != id {
		comp = codec.CompressorByID(id)
	}
	if comp == nil {
		return nil, fmt.Errorf("%w: %w: unknown compressor %d", codec.ErrDecode, errEntry, id)
	}
	return comp.Decompress(nil, payload[1:], c.compress.MaxDecompressed)
}

// encodeValue returns the bytes a plain write stores for v: the codec's,
// or, when they start with the entry magic byte (and the cache is not Raw),
// or are to be compressed (Options.Compression), an entry holding them, so
// that no read takes them for what they are not. With withID
// (CompareAndSwap), it is always an entry, with a fresh id (unless the
// cache is Raw).
func (c *Cache[K, V]) encodeValue(v V, withID bool) ([]byte, error) {
	data, err := c.codec.Encode(v)
	if err != nil || c.raw {
		return data, err
	}
	m := entryMeta{flags: flagValue}
	if z := c.compressed(data); z != nil {
		data, m.flags = z, flagValue|flagCompressed
	} else if !withID && !isEntry(data) {
		return data, nil
	}
	m.written, m.id = time.Now().UnixMilli(), newID()
	return appendEntry(make([]byte, 0, entryHeaderLen+len(data)), m, data), nil
}

// GetMulti returns the values of keys that are in the cache; misses are
// absent from the map. It reads all keys in one store call. Values that fail
// to decode are left out of the map and reported in the error (joined, one
// per key, each wrapping codec.ErrDecode); the other hits are still returned.
func (c *Cache[K, V]) GetMulti(ctx context.Context, keys []K) (out map[K]V, err error) {
	var local map[K]bool // with an Observer: the keys the local tier answered
	if c.obs.obs != nil {
		local = make(map[K]bool)
		defer func(start time.Time) {
			d := time.Since(start)
			for _, k := range keys {
				ev := Event{Op: OpGet, Layer: LayerStore, Result: ResultMiss, Key: c.Key(k), Duration: d}
				if _, ok := out[k]; ok {
					ev.Result = ResultHit
				}
				if local[k] {
					ev.Layer = LayerLocal
				}
				if err != nil && out == nil {
					ev.Result, ev.Err = ResultError, err
				}
				c.obs.emit(ctx, ev)
			}
		}(time.Now())
	}
	out = make(map[K]V, len(keys))
	var hits, misses int64
	// The keys the local tier does not hold, with their store keys and the
	// generations to fill them with.
	ask := keys
	if c.local != nil {
		ask = make([]K, 0, len(keys))
		for _, k := range keys {
			if e, ok := c.local.get(k); ok {
				out[k] = c.local.value(e)
				c.stats.localHits.Add(1)
				if local != nil {
					local[k] = true
				}
				continue
			}
			ask = append(ask, k)
		}
	}
	skeys := make([]string, len(ask))
	for i, k := range ask {
		key, err := c.buildKey(k)
		if err != nil {
			return nil, c.fail("get-multi", key, err)
		}
		skeys[i] = key
	}
	if len(ask) == 0 {
		c.stats.hits.Add(hits)
		return out, nil
	}
	var gens []uint64
	if c.local != nil {
		gens = make([]uint64, len(skeys))
		for i, key := range skeys {
			gens[i] = c.local.generation(key)
		}
	}
	octx, cancel := c.opContext(ctx)
	vals, err := c.store.GetMulti(octx, skeys)
	cancel()
	if err != nil {
		return nil, c.fail("get-multi", "", err)
	}
	var errs []error
	now := time.Now()
	for i, data := range vals {
		if data == nil {
			misses++
			continue
		}
		e := c.entryOf(data)
		if e.Corrupt != nil {
			c.stats.decodeErrors.Add(1)
			errs = append(errs, c.fail("get-multi", skeys[i], e.Corrupt))
			continue
		}
		if !e.HasValue || !e.Fresh(now) {
			misses++
			continue
		}
		if c.local != nil {
			c.fill(ask[i], skeys[i], gens[i], &e)
		}
		hits++
		out[ask[i]] = e.Value
	}
	c.stats.hits.Add(hits)
	c.stats.misses.Add(misses)
	return out, errors.Join(errs...)
}

// Set stores v under k with the cache's TTL.
func (c *Cache[K, V]) Set(ctx context.Context, k K, v V) (err error) {
	if c.obs.obs != nil {
		defer c.observeWrite(ctx, OpSet, c.Key(k), time.Now(), &err)
	}
	key, err := c.buildKey(k)
	if err != nil {
		return c.fail("set", key, err)
	}
	ttl, err := c.writeTTL()
	if err != nil {
		return c.fail("set", key, err)
	}
	data, err := c.encodeValue(v, false)
	if err != nil {
		return c.fail("set", key, err)
	}
	gen := c.generation(key)
	octx, cancel := c.opContext(ctx)
	err = c.store.Set(octx, key, data, ttl)
	cancel()
	if err != nil {
		perr := c.wrote(ctx, k, key, 0, nil, 0) // it may have landed
		return c.fail("set", key, notInvalidated(err, perr))
	}
	c.stats.sets.Add(1)
	if err := c.wrote(ctx, k, key, gen, &v, ttl); err != nil {
		return c.fail("set", key, err)
	}
	return nil
}

// SetMulti stores every entry of items with the cache's TTL, pipelined where
// the store allows. It is not atomic: on error some entries may be written.
// Nothing is written if a key or a value is invalid.
func (c *Cache[K, V]) SetMulti(ctx context.Context, items map[K]V) (err error) {
	if c.obs.obs != nil {
		defer func(start time.Time) {
			for k := range items {
				c.observeWrite(ctx, OpSet, c.Key(k), start, &err)
			}
		}(time.Now())
	}
	ttl, err := c.writeTTL()
	if err != nil {
		return c.fail("set-multi", "", err)
	}
	batch := make([]Item, 0, len(items))
	var gens map[string]uint64 // with a local tier: the keys' generations before the write
	if c.local != nil {
		gens = make(map[string]uint64, len(items))
	}
	for k, v := range items {
		key, err := c.buildKey(k)
		if err != nil {
			return c.fail("set-multi", key, err)
		}
		data, err := c.encodeValue(v, false)
		if err != nil {
			return c.fail("set-multi", key, err)
		}
		batch = append(batch, Item{Key: key, Value: data, TTL: ttl})
		if gens != nil {
			gens[key] = c.local.generation(key)
		}
	}
	if len(batch) == 0 {
		return nil
	}
	octx, cancel := c.opContext(ctx)
	err = c.store.SetMulti(octx, batch)
	cancel()
	var perr error
	if c.local != nil {
		for k, v := range items {
			key := c.Key(k)
			if err != nil {
				perr = errors.Join(perr, c.wrote(ctx, k, key, 0, nil, 0))
			} else {
				perr = errors.Join(perr, c.wrote(ctx, k, key, gens[key], &v, ttl))
			}
		}
	}
	if err != nil {
		return c.fail("set-multi", "", notInvalidated(err, perr))
	}
	c.stats.sets.Add(int64(len(batch)))
	if perr != nil {
		return c.fail("set-multi", "", perr)
	}
	return nil
}

// Add stores v under k with the cache's TTL only if k is absent, atomically.
// It returns an error matching ErrExists if k holds a value.
func (c *Cache[K, V]) Add(ctx context.Context, k K, v V) (err error) {
	if c.obs.obs != nil {
		defer c.observeWrite(ctx, OpSet, c.Key(k), time.Now(), &err)
	}
	key, err := c.buildKey(k)
	if err != nil {
		return c.fail("add", key, err)
	}
	ttl, err := c.writeTTL()
	if err != nil {
		return c.fail("add", key, err)
	}
	data, err := c.encodeValue(v, false)
	if err != nil {
		return c.fail("add", key, err)
	}
	gen := c.generation(key)
	octx, cancel := c.opContext(ctx)
	err = c.store.Add(octx, key, data, ttl)
	cancel()
	if err != nil {
		if !errors.Is(err, ErrExists) {
			err = notInvalidated(err, c.wrote(ctx, k, key, 0, nil, 0)) // it may have landed
		}
		return c.fail("add", key, err)
	}
	c.stats.sets.Add(1)
	if err := c.wrote(ctx, k, key, gen, &v, ttl); err != nil {
		return c.fail("add", key, err)
	}
	return nil
}

// Delete removes the keys and reports how many existed.
func (c *Cache[K, V]) Delete(ctx context.Context, keys ...K) (_ int, err error) {
	if c.obs.obs != nil {
		defer func(start time.Time) {
			for _, k := range keys {
				c.observeWrite(ctx, OpDelete, c.Key(k), start, &err)
			}
		}(time.Now())
	}
	skeys := make([]string, len(keys))
	for i, k := range keys {
		key, err := c.buildKey(k)
		if err != nil {
			return 0, c.fail("delete", key, err)
		}
		skeys[i] = key
	}
	if len(skeys) == 0 {
		return 0, nil
	}
	octx, cancel := c.opContext(ctx)
	n, err := c.store.Delete(octx, skeys...)
	cancel()
	c.shared.flightsByKey.forget(skeys...)
	var perr error
	if c.local != nil {
		for i, k := range keys {
			perr = errors.Join(perr, c.wrote(ctx, k, skeys[i], 0, nil, 0))
		}
	}
	key := ""
	if len(skeys) == 1 {
		key = skeys[0]
	}
	if err != nil {
		return n, c.fail("delete", key, notInvalidated(err, perr))
	}
	c.stats.deletes.Add(int64(n))
	if perr != nil {
		return n, c.fail("delete", key, perr)
	}
	return n, nil
}

// Exists reports whether k holds a value.
func (c *Cache[K, V]) Exists(ctx context.Context, k K) (bool, error) {
	key, err := c.buildKey(k)
	if err != nil {
		return false, c.fail("exists", key, err)
	}
	ctx, cancel := c.opContext(ctx)
	ok, err := c.store.Exists(ctx, key)
	cancel()
	if err != nil {
		return false, c.fail("exists", key, err)
	}
	return ok, nil
}

// Expire sets the expiry of k to ttl from now (0 removes it) and reports
// whether k existed.
func (c *Cache[K, V]) Expire(ctx context.Context, k K, ttl time.Duration) (bool, error) {
	key, err := c.buildKey(k)
	if err != nil {
		return false, c.fail("expire", key, err)
	}
	if ttl < 0 {
		return false, c.fail("expire", key, ErrInvalidTTL)
	}
	octx, cancel := c.opContext(ctx)
	ok, err := c.store.Expire(octx, key, ttl)
	cancel()
	perr := c.wrote(ctx, k, key, 0, nil, 0) // the local copy's expiry is no longer right
	if err != nil {
		return false, c.fail("expire", key, notInvalidated(err, perr))
	}
	if perr != nil {
		return ok, c.fail("expire", key, perr)
	}
	return ok, nil
}

// TTL returns the remaining time to live of k: NoExpiration for a key that
// never expires, an error matching ErrNotFound for a missing key, and one
// matching ErrUnsupported on a store that cannot tell (Memcached).
func (c *Cache[K, V]) TTL(ctx context.Context, k K) (time.Duration, error) {
	key, err := c.buildKey(k)
	if err != nil {
		return 0, c.fail("ttl", key, err)
	}
	ctx, cancel := c.opContext(ctx)
	d, err := c.store.TTL(ctx, key)
	cancel()
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return 0, &OpError{Op: "ttl", Key: key, Err: err}
		}
		return 0, c.fail("ttl", key, err)
	}
	return d, nil
}

// Increment adds delta to the integer stored under k, atomically, and
// returns the result; a missing key is created holding delta, without
// expiry. The value is decimal text, so a Cache[K, int64] (whose default
// codec is decimal text) reads it with Get. A value that is not an integer
// gives an error matching ErrNotInteger.
func (c *Cache[K, V]) Increment(ctx context.Context, k K, delta int64) (_ int64, err error) {
	if c.obs.obs != nil {
		defer c.observeWrite(ctx, OpSet, c.Key(k), time.Now(), &err)
	}
	key, err := c.buildKey(k)
	if err != nil {
		return 0, c.fail("increment", key, err)
	}
	octx, cancel := c.opContext(ctx)
	n, err := c.store.Increment(octx, key, delta)
	cancel()
	perr := c.wrote(ctx, k, key, 0, nil, 0)
	if err != nil {
		return 0, c.fail("increment", key, notInvalidated(err, perr))
	}
	if perr != nil {
		return n, c.fail("increment", key, perr)
	}
	return n, nil
}

// Clear deletes every key of the cache's namespace and no other key. A
// cache without a namespace clears the whole store, including keys written
// by others. On Memcached, clearing a namespace is not possible and returns
// an error matching ErrUnsupported.
func (c *Cache[K, V]) Clear(ctx context.Context) error {
	octx, cancel := c.opContext(ctx)
	err := c.store.Clear(octx, c.prefix)
	cancel()
	c.shared.flightsByKey.forgetPrefix(c.prefix)
	var perr error
	if l := c.local; l != nil {
		l.invalidatePrefix(c.prefix)
		perr = c.publish(ctx, invPrefix, c.prefix)
	}
	if err != nil {
		return c.fail("clear", c.prefix, notInvalidated(err, perr))
	}
	if perr != nil {
		return c.fail("clear", c.prefix, perr)
	}
	return nil
}

// Gets returns the value of k, whether it was found, and a token for
// CompareAndSwap. On a miss the token is the absent token, except when the
// key holds an entry without a value (a computation's lease, a cached "not
// found", a value past its logical expiry): then it is the token of that
// entry, and a CompareAndSwap with it replaces it. A value that fails to
// decode is an error wrapping codec.ErrDecode.
func (c *Cache[K, V]) Gets(ctx context.Context, k K) (v V, found bool, token Token, err error) {
	key, err := c.buildKey(k)
	if err != nil {
		return v, false, token, c.fail("gets", key, err)
	}
	ctx, cancel := c.opContext(ctx)
	data, token, err := c.store.Gets(ctx, key)
	cancel()
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			c.stats.misses.Add(1)
			return v, false, AbsentToken(), nil
		}
		return v, false, token, c.fail("gets", key, err)
	}
	v, found, err = c.decodeValue(data, time.Now)
	if err != nil {
		c.stats.decodeErrors.Add(1)
		return v, false, token, c.fail("gets", key, err)
	}
	if !found {
		// A lease, a cached "not found" or an expired value: a miss, but
		// the key is not absent, and the token says so.
		c.stats.misses.Add(1)
		return v, false, token, nil
	}
	c.stats.hits.Add(1)
	return v, true, token, nil
}

// CompareAndSwap stores v under k with the cache's TTL only if k is
// unchanged since token was read by Gets; for the absent token, only if k is
// still absent. Otherwise it returns an error matching ErrConflict.
//
// Unless the cache is Raw, v is written as an entry with a fresh random id
// (28 bytes before the codec's): when the store reports the reply lost
// (ErrUncertain), CompareAndSwap reads the key back, and if it holds this
// write, the write succeeded. Only a write it cannot settle returns
// ErrUncertain (with a Raw cache, every lost reply does).
func (c *Cache[K, V]) CompareAndSwap(ctx context.Context, k K, v V, token Token) (err error) {
	if c.obs.obs != nil {
		defer c.observeWrite(ctx, OpSet, c.Key(k), time.Now(), &err)
	}
	key, err := c.buildKey(k)
	if err != nil {
		return c.fail("cas", key, err)
	}
	ttl, err := c.writeTTL()
	if err != nil {
		return c.fail("cas", key, err)
	}
	data, err := c.encodeValue(v, true)
	if err != nil {
		return c.fail("cas", key, err)
	}
	gen := c.generation(key)
	octx, cancel := c.opContext(ctx)
	err = c.store.CompareAndSwap(octx, key, data, token, ttl)
	cancel()
	if errors.Is(err, ErrUncertain) && !c.raw && c.landed(ctx, key, data) {
		err = nil // the reply was lost, not the write
	}
	if err != nil {
		if !errors.Is(err, ErrConflict) {
			err = notInvalidated(err, c.wrote(ctx, k, key, 0, nil, 0)) // it may have landed
		}
		return c.fail("cas", key, err)
	}
	c.stats.sets.Add(1)
	if err := c.wrote(ctx, k, key, gen, &v, ttl); err != nil {
		return c.fail("cas", key, err)
	}
	return nil
}

// landed reports whether key holds exactly data, an entry with a fresh id
// that only this write stored: a write whose reply was lost landed. It
// reads on a context detached from ctx (which may have ended with the
// write) and bounded by the Timeout, or by a second without one.
func (c *Cache[K, V]) landed(ctx context.Context, key string, data []byte) bool {
	bound := c.timeout
	if bound <= 0 {
		bound = time.Second
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bound)
	defer cancel()
	for try := 0; try < 3 && rctx.Err() == nil; try++ {
		cur, err := c.store.Get(rctx, key)
		if err == nil || errors.Is(err, ErrNotFound) {
			return err == nil && bytes.Equal(cur, data)
		}
	}
	return false
}

// Check reports the server and client settings under which the cache's
// store cannot keep its guarantees (an eviction policy that can evict a
// held lease, a client that ignores context deadlines, a value size limit):
// one *SettingError per finding, joined, each matching ErrUnsafeConfig; nil
// when there is none, or when the store cannot check (it does not implement
// Checker). Run it once when a service starts and log what it returns.
func (c *Cache[K, V]) Check(ctx context.Context) error {
	ch, ok := c.store.(Checker)
	if !ok {
		return nil
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	return ch.Check(ctx)
}
