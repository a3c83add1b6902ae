package cache

import (
	"context"
	"errors"
	"time"
)

// Record is one key of the store kept beside a value's key by a package
// built on the Cache (a lock's token), with the store operations such a
// package needs on it, each bounded by the Cache's Timeout. Get one with
// [Door.Record]. Its methods return the store's errors as they are (the
// sentinels of this package, ctx's errors, the backend's): the caller
// wraps them once, in its own words. Failures count in the Cache's
// Stats.Errors.
type Record struct {
	s   *bounded
	key string
}

// Key returns the record's store key.
func (r *Record) Key() string { return r.key }

// Get returns the record's value, or ErrNotFound.
func (r *Record) Get(ctx context.Context) ([]byte, error) {
	ctx, cancel := r.s.bound(ctx)
	defer cancel()
	v, err := r.s.store.Get(ctx, r.key)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, r.s.failed(err)
	}
	return v, err
}

// Exists reports whether the record holds a value.
func (r *Record) Exists(ctx context.Context) (bool, error) {
	ctx, cancel := r.s.bound(ctx)
	defer cancel()
	ok, err := r.s.store.Exists(ctx, r.key)
	return ok, r.s.failed(err)
}

// TTL returns the record's remaining time to live, NoExpiration, or
// ErrNotFound; ErrUnsupported where the store cannot tell (Memcached).
func (r *Record) TTL(ctx context.Context) (time.Duration, error) {
	ctx, cancel := r.s.bound(ctx)
	defer cancel()
	d, err := r.s.store.TTL(ctx, r.key)
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrUnsupported) {
		return 0, r.s.failed(err)
	}
	return d, err
}

// AddLease stores token with ttl only if the record is absent (ErrExists
// otherwise), as a lease the store never evicts before it expires (see
// Leaser; stores without that capability get a plain Add).
func (r *Record) AddLease(ctx context.Context, token []byte, ttl time.Duration) error {
	ctx, cancel := r.s.bound(ctx)
	defer cancel()
	err := addLease(ctx, r.s.store, r.key, token, ttl)
	if err != nil && !errors.Is(err, ErrExists) {
		return r.s.failed(err)
	}
	return err
}

// AddFenced is AddLease that also takes a fencing token (see Fencer). On a
// store that cannot hand them out, it is AddLease, and fenced is false.
func (r *Record) AddFenced(ctx context.Context, token []byte, ttl time.Duration) (fence int64, fenced bool, err error) {
	ctx, cancel := r.s.bound(ctx)
	defer cancel()
	fence, fenced, err = addFenced(ctx, r.s.store, r.key, token, ttl)
	if err != nil && !errors.Is(err, ErrExists) {
		return 0, fenced, r.s.failed(err)
	}
	return fence, fenced, err
}

// DeleteIfEqual deletes the record only if it holds token, and reports
// whether it did. After a delete it wakes the record's watchers in this
// process (those of the same Cache and its views) at once; the store wakes
// those of other processes where it can (Notifier).
func (r *Record) DeleteIfEqual(ctx context.Context, token []byte) (bool, error) {
	ctx, cancel := r.s.bound(ctx)
	defer cancel()
	ok, err := r.s.store.DeleteIfEqual(ctx, r.key, token)
	if err != nil {
		return false, r.s.failed(err)
	}
	if ok {
		r.s.wakes.wake(r.key)
	}
	return ok, nil
}

// ExtendIfEqual sets the record's ttl only if it holds token, and reports
// whether it did.
func (r *Record) ExtendIfEqual(ctx context.Context, token []byte, ttl time.Duration) (bool, error) {
	ctx, cancel := r.s.bound(ctx)
	defer cancel()
	ok, err := r.s.store.ExtendIfEqual(ctx, r.key, token, ttl)
	return ok, r.s.failed(err)
}

// Watch starts watching the record for releases (a DeleteIfEqual that
// deleted it, in this process or, on a store that can tell, in any), so
// that Wait returns when one may have happened. Stop must be called. The
// watch is in place when Watch returns: a release after it is never
// missed. On a store without notifications (Memcached), only releases in
// this process wake it, and the caller polls for the others.
func (r *Record) Watch(ctx context.Context) *Watch { return r.s.watch(ctx, r.key) }

// watch starts a Watch of key.
func (b *bounded) watch(ctx context.Context, key string) *Watch {
	w := &Watch{b: b, key: key}
	w.local, w.disarm = b.wakes.arm(key)
	if n, ok := b.store.(Notifier); ok {
		ctx, cancel := b.bound(ctx)
		ch, stop, err := n.Watch(ctx, key)
		cancel()
		if err == nil { // without the store's watch, the caller polls
			w.notified, w.stop = ch, stop
		}
	}
	return w
}

// Watch is a watch of a key's releases; see Record.Watch and Door.Watch.
type Watch struct {
	b        *bounded
	key      string
	local    <-chan struct{} // closed by the next release in this process
	disarm   func()
	notified <-chan struct{} // the store's wake-ups; nil without
	stop     func()
}

// Notified reports whether releases in other processes wake the watch
// (the store notifies): without, the caller must poll to see them.
func (w *Watch) Notified() bool { return w.notified != nil }

// Wait returns released == true when a release of the record may have
// happened since the watch started or since the previous Wait returned
// true (wake-ups may be spurious), false when d passed first (d <= 0: no
// wait), and ctx's error when ctx ends first.
func (w *Watch) Wait(ctx context.Context, d time.Duration) (released bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	select {
	case <-w.local:
		w.rearm()
		return true, nil
	case <-w.notified:
		return true, nil
	default:
	}
	if d <= 0 {
		return false, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.local:
		w.rearm()
		return true, nil
	case <-w.notified: // nil without the store's watch: never ready
		return true, nil
	case <-t.C:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// rearm takes the channel of the next release in the process, so that a
// release after Wait returns wakes the next Wait.
func (w *Watch) rearm() {
	w.disarm()
	w.local, w.disarm = w.b.wakes.arm(w.key)
}

// Stop ends the watch.
func (w *Watch) Stop() {
	w.disarm()
	if w.stop != nil {
		w.stop()
	}
}
