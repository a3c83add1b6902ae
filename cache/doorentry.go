package cache

import (
	"bytes"
	"context"
	"errors"
	"time"
)

// Entry is what the Door read under a key (Load), or an entry to write
// (Add, Swap): a value, a cached "not found", a computation's lease, or
// nothing, with the metadata of the entry header (see Entries in the
// package documentation). Packages built on the Cache (memo) use it; users
// of the Cache do not.
type Entry[V any] struct {
	Value    V
	HasValue bool // the entry holds Value
	NotFound bool // a cached "not found" answer

	Written    time.Time // when it was written; zero for plain bytes
	FreshUntil time.Time // its logical expiry; zero: fresh until it expires
	Lease      bool      // a computation holds a lease on the key
	LeaseEnd   time.Time // with Lease: when the lease ends
	ID         uint64    // the write's random id; with Lease, the lease's token

	// Read only.
	Plain   bool  // plain bytes without a header: a fresh value, no metadata
	Corrupt error // the bytes did not decode (matches codec.ErrDecode); the rest is zero

	raw   []byte // the bytes read or written; nil for a missing key
	local bool   // read from the local tier: a value, without its bytes
}

// Exists reports whether the key held anything when it was read (a value,
// a "not found", a lease, or bytes that did not decode).
func (e *Entry[V]) Exists() bool { return e.raw != nil || e.local }

// Local reports whether the entry was read from the local tier: it holds a
// value and its metadata, but not the store's bytes, so a Swap from it
// needs a LoadFresh first.
func (e *Entry[V]) Local() bool { return e.local }

// Fresh reports whether the entry has not passed its logical expiry at now.
func (e *Entry[V]) Fresh(now time.Time) bool {
	return e.FreshUntil.IsZero() || now.Before(e.FreshUntil)
}

// Held reports whether the entry's lease has not ended at now.
func (e *Entry[V]) Held(now time.Time) bool { return e.Lease && now.Before(e.LeaseEnd) }

// Bytes returns the entry's bytes as the store holds them (nil for a
// missing key). The caller must not change them.
func (e *Entry[V]) Bytes() []byte { return e.raw }

// entryOf reads the bytes data of a key (nil: missing) into an Entry.
func (c *Cache[K, V]) entryOf(data []byte) Entry[V] {
	e := Entry[V]{raw: data}
	if data == nil {
		return e
	}
	if c.raw || !isEntry(data) {
		v, err := c.codec.Decode(data)
		if err != nil {
			e.Corrupt = err
			return e
		}
		e.Value, e.HasValue, e.Plain = v, true, true
		return e
	}
	m, payload, err := parseEntry(data)
	if err != nil {
		e.Corrupt = err
		return e
	}
	e.Written, e.FreshUntil, e.ID = fromMilli(m.written), fromMilli(m.freshUntil), m.id
	e.NotFound = m.flags&flagNotFound != 0
	if m.flags&flagLease != 0 {
		e.Lease, e.LeaseEnd = true, fromMilli(m.leaseEnd)
	}
	if m.flags&flagValue != 0 {
		v, err := c.decodePayload(m, payload)
		if err != nil {
			return Entry[V]{raw: data, Corrupt: err}
		}
		e.Value, e.HasValue = v, true
	}
	return e
}

// encodeEntry fills in what a write of e leaves to the Door (the time of
// writing, an id) and returns its bytes.
func (c *Cache[K, V]) encodeEntry(e *Entry[V]) ([]byte, error) {
	if c.raw {
		return nil, ErrRaw
	}
	if e.Written.IsZero() {
		e.Written = time.Now()
	}
	if e.ID == 0 {
		e.ID = newID()
	}
	m := entryMeta{written: unixMilli(e.Written), freshUntil: unixMilli(e.FreshUntil), id: e.ID}
	var payload []byte
	switch {
	case e.HasValue:
		m.flags = flagValue
		data, err := c.codec.Encode(e.Value)
		if err != nil {
			return nil, err
		}
		payload = data
		if z := c.compressed(data); z != nil {
			payload, m.flags = z, flagValue|flagCompressed
		}
	case e.NotFound:
		m.flags = flagNotFound
	}
	if e.Lease {
		m.flags |= flagLease
		m.leaseEnd = unixMilli(e.LeaseEnd)
	}
	if m.flags == 0 {
		return nil, errors.New("cache: an entry with neither a value, not found nor a lease")
	}
	hl := entryHeaderLen
	if e.Lease {
		hl = entryLeaseHeaderLen
	}
	e.Plain, e.Corrupt = false, nil
	e.raw = appendEntry(make([]byte, 0, hl+len(payload)), m, payload)
	return e.raw, nil
}

// Load reads k (whose store key is key, from Key) into an Entry: from the
// local tier when it holds the value (Options.Local; counted in
// Stats.LocalHits, so the caller counts only the store's hits), else from
// the store, filling the local tier with a value it finds. A missing key is an Entry
// that does not exist, bytes that do not decode one whose Corrupt is set.
// Errors are the store's (a miss is none).
func (d Door[K, V]) Load(ctx context.Context, k K, key string) (Entry[V], error) {
	l := d.c.local
	if l == nil {
		return d.LoadFresh(ctx, key)
	}
	if le, ok := l.get(k); ok {
		d.c.stats.localHits.Add(1)
		return Entry[V]{Value: l.value(le), HasValue: true, Written: le.written, FreshUntil: le.freshUntil, Plain: le.plain, local: true}, nil
	}
	gen := l.generation(key)
	e, err := d.LoadFresh(ctx, key)
	if err == nil && e.HasValue && e.Corrupt == nil && e.Fresh(time.Now()) {
		d.c.fill(k, key, gen, &e)
	}
	return e, err
}

// LoadFresh reads key from the store, never from the local tier, as Load
// does: the entry carries the store's bytes, for a Swap.
func (d Door[K, V]) LoadFresh(ctx context.Context, key string) (_ Entry[V], err error) {
	if d.c.obs.tracer != nil {
		var end func(error)
		if ctx, end = d.c.obs.start(ctx, OpGet, key); end != nil {
			defer func() { end(err) }()
		}
	}
	b := d.c.base()
	bctx, cancel := b.bound(ctx)
	data, err := b.store.Get(bctx, key)
	cancel()
	if errors.Is(err, ErrNotFound) {
		return Entry[V]{}, nil
	}
	if err != nil {
		return Entry[V]{}, b.failed(err)
	}
	if data == nil {
		data = []byte{} // a hit with an empty value
	}
	return d.c.entryOf(data), nil
}

// LoadMulti reads ks (whose store keys are keys) as Load reads one: from
// the local tier what it holds, the rest in one store call.
func (d Door[K, V]) LoadMulti(ctx context.Context, ks []K, keys []string) ([]Entry[V], error) {
	out := make([]Entry[V], len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	l := d.c.local
	ask := make([]int, 0, len(keys))
	var gens []uint64
	for i := range keys {
		if l != nil {
			if le, ok := l.get(ks[i]); ok {
				d.c.stats.localHits.Add(1)
				out[i] = Entry[V]{Value: l.value(le), HasValue: true, Written: le.written, FreshUntil: le.freshUntil, Plain: le.plain, local: true}
				continue
			}
			gens = append(gens, l.generation(keys[i]))
		}
		ask = append(ask, i)
	}
	if len(ask) == 0 {
		return out, nil
	}
	names := make([]string, len(ask))
	for j, i := range ask {
		names[j] = keys[i]
	}
	b := d.c.base()
	bctx, cancel := b.bound(ctx)
	defer cancel()
	vals, err := b.store.GetMulti(bctx, names)
	if err != nil {
		return nil, b.failed(err)
	}
	now := time.Now()
	for j, data := range vals {
		i := ask[j]
		out[i] = d.c.entryOf(data)
		if e := &out[i]; l != nil && e.HasValue && e.Corrupt == nil && e.Fresh(now) {
			d.c.fill(ks[i], keys[i], gens[j], e)
		}
	}
	return out, nil
}

// Add writes e under key with ttl only if key is absent, and returns an
// error matching ErrExists otherwise. An entry with a lease and no value
// is written as a lease the store keeps until it expires (see Leaser). It
// fills in e's time of writing and id, and its bytes.
func (d Door[K, V]) Add(ctx context.Context, key string, e *Entry[V], ttl time.Duration) (err error) {
	if d.c.obs.tracer != nil {
		var end func(error)
		if ctx, end = d.c.obs.start(ctx, OpSet, key); end != nil {
			defer func() { end(err) }()
		}
	}
	data, err := d.c.encodeEntry(e)
	if err != nil {
		return err
	}
	b := d.c.base()
	ctx, cancel := b.bound(ctx)
	defer cancel()
	if e.Lease && !e.HasValue {
		err = addLease(ctx, b.store, key, data, ttl)
	} else {
		err = b.store.Add(ctx, key, data, ttl)
	}
	if errors.Is(err, ErrExists) {
		return err
	}
	return notInvalidated(b.failed(err), d.c.wroteKey(ctx, key))
}

// Swap writes e under key with ttl only if key still holds the bytes old
// was read (or written) with, and reports whether it did; either way it
// wakes the watchers of key, in this process and, where the store can, in
// others (see Swapper). A swap whose reply was lost (ErrUncertain) is
// settled by reading key back: it holds e's bytes (e has a fresh id) only
// if the swap landed. It fills in e's time of writing and id, and its
// bytes.
func (d Door[K, V]) Swap(ctx context.Context, key string, old, e *Entry[V], ttl time.Duration) (_ bool, err error) {
	if d.c.obs.tracer != nil {
		var end func(error)
		if ctx, end = d.c.obs.start(ctx, OpSet, key); end != nil {
			defer func() { end(err) }()
		}
	}
	data, err := d.c.encodeEntry(e)
	if err != nil {
		return false, err
	}
	if old.raw == nil {
		return false, nil // a missing key holds no bytes
	}
	b := d.c.base()
	sctx, cancel := b.bound(ctx)
	ok, err := swapIfEqual(sctx, b.store, key, old.raw, data, ttl)
	cancel()
	b.wakes.wake(key)
	if errors.Is(err, ErrUncertain) {
		if landed, settled := d.settle(ctx, key, data); settled {
			ok, err = landed, nil
		}
	}
	err = b.failed(err)
	if ok || err != nil {
		err = notInvalidated(err, d.c.wroteKey(ctx, key))
	}
	return ok, err
}

// Remove deletes key only if it still holds the bytes old was read (or
// written) with, and reports whether it did, waking the key's watchers
// after a delete: how a computation that failed gives up its lease.
func (d Door[K, V]) Remove(ctx context.Context, key string, old *Entry[V]) (_ bool, err error) {
	if d.c.obs.tracer != nil {
		var end func(error)
		if ctx, end = d.c.obs.start(ctx, OpDelete, key); end != nil {
			defer func() { end(err) }()
		}
	}
	if old.raw == nil {
		return false, nil
	}
	b := d.c.base()
	rctx, cancel := b.bound(ctx)
	ok, err := b.store.DeleteIfEqual(rctx, key, old.raw)
	cancel()
	if errors.Is(err, ErrUncertain) {
		if cur, settled := d.settleRead(ctx, key); settled {
			ok, err = cur == nil || !bytes.Equal(cur, old.raw), nil
		}
	}
	if ok {
		b.wakes.wake(key)
	}
	err = b.failed(err)
	if ok || err != nil {
		err = notInvalidated(err, d.c.wroteKey(ctx, key))
	}
	return ok, err
}

// settle reads key back after a write of data whose reply was lost, and
// reports whether it landed (key holds data), and whether it could tell.
func (d Door[K, V]) settle(ctx context.Context, key string, data []byte) (landed, ok bool) {
	cur, ok := d.settleRead(ctx, key)
	return ok && bytes.Equal(cur, data), ok
}

// settleRead reads key on a context detached from ctx, bounded by the
// Timeout (a second without one), trying up to three times: cur is nil for
// a missing key, and ok false when no read succeeded.
func (d Door[K, V]) settleRead(ctx context.Context, key string) (cur []byte, ok bool) {
	b := d.c.base()
	bound := b.timeout
	if bound <= 0 {
		bound = time.Second
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bound)
	defer cancel()
	for try := 0; try < 3 && rctx.Err() == nil; try++ {
		cur, err := b.store.Get(rctx, key)
		if errors.Is(err, ErrNotFound) {
			return nil, true
		}
		if err == nil {
			if cur == nil {
				cur = []byte{}
			}
			return cur, true
		}
	}
	return nil, false
}

// Delete removes keys (store keys), as Cache.Delete does, counting the
// deletes.
func (d Door[K, V]) Delete(ctx context.Context, keys ...string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	b := d.c.base()
	ctx, cancel := b.bound(ctx)
	defer cancel()
	n, err := b.store.Delete(ctx, keys...)
	d.c.shared.flightsByKey.forget(keys...)
	d.c.stats.deletes.Add(int64(n))
	var perr error
	for _, k := range keys {
		b.wakes.wake(k)
		perr = errors.Join(perr, d.c.wroteKey(ctx, k))
	}
	return n, notInvalidated(b.failed(err), perr)
}

// Watch starts watching key (a value's store key) for the end of a
// computation's lease (a Swap or a Remove, in this process or, where the
// store notifies, in any), as Record.Watch does for a record. Stop must be
// called.
func (d Door[K, V]) Watch(ctx context.Context, key string) *Watch {
	return d.c.base().watch(ctx, key)
}
