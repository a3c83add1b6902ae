package lock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/identity"
)

// Options configure a RedLock. A nil *Options, and every zero field, means
// the default.
type Options struct {
	// MinBackoff and MaxBackoff bound the jittered exponential backoff with
	// which waiters poll a store that cannot notify them of a release
	// (Memcached). Defaults: 2ms and 100ms. On stores that notify (Redis,
	// memory), waiters poll only to see a lease expire, at most every
	// MaxBackoff.
	//
	// Whatever the backoff, a waiter never sleeps past the end of the
	// holder's lease: each poll is capped by the holder's remaining lease
	// where the store reports it (Store.TTL), and where it does not
	// (Memcached) by the waiter's own lease, on the assumption that the
	// holders of one lock key take the same lease. A waiter whose lease is
	// shorter than the holder's polls more often; one whose lease is longer
	// may notice an expired holder late, by up to its own lease.
	MinBackoff, MaxBackoff time.Duration

	// ReleaseTimeout bounds Release, which runs even when its context is
	// already cancelled. Default: 5s. It also bounds (to at most one
	// second) the clean-up after an acquisition that failed because its
	// context ended (see TryAcquire).
	ReleaseTimeout time.Duration

	// Fencing makes every acquisition also take a fencing token (see
	// Fence), on stores that hand them out (cache.Fencer: Redis and
	// memory). On Redis the token's state is a key of its own beside the
	// lock key, which never expires: one small key for every lock name
	// ever fenced. Turn it on for locks whose names are a bounded set, not
	// for a lock per cached item.
	Fencing bool
}

// RedLock is a lease lock kept in the cache's store: the lock key holds a
// random token for the lease, set only if absent, and only the holder of the
// token can release or extend it. Waiters wake when the lock is released:
// at once within the process, through the store's notification across
// processes where the store has one (Redis pub/sub), and otherwise by
// polling with jittered backoff capped by the holder's remaining lease (or,
// where the store cannot tell it, by this lock's own lease; see Options).
//
// A RedLock is one would-be holder: give each goroutine its own (they are
// cheap). Its methods are safe for concurrent use, but a RedLock holds the
// lock at most once at a time.
//
// RedLock is an efficiency lock, not a correctness lock: a lease can expire
// while its holder still works (a GC pause, a slow network), and a Redis
// failover can lose the lock key and grant the lock twice. It stops
// duplicate work; it does not guarantee mutual exclusion. Where correctness
// depends on it, have the protected resource check the fencing token (see
// Fence) and reject writes carrying a smaller one.
type RedLock struct {
	store cache.Store
	key   string
	id    lockID // in-process registry name; valid when local
	local bool   // the store has an identity: in-process wake-ups work
	lease time.Duration
	opts  Options

	mu      sync.Mutex
	token   []byte    // the current acquisition's token; nil when not held
	fence   int64     // the current acquisition's fencing token
	expires time.Time // local estimate of the end of the lease
}

// NewRedLock returns a RedLock for key of cache c, held for lease at each
// acquisition. The lock key is c.Key(key) + "-lock", in c's store. A nil
// opts means the defaults. NewRedLock panics if lease is not positive.
func NewRedLock[K comparable, V any](c *cache.Cache[K, V], key K, lease time.Duration, opts *Options) *RedLock {
	if lease <= 0 {
		panic("lock: NewRedLock with a lease that is not positive")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 2 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.ReleaseTimeout <= 0 {
		o.ReleaseTimeout = 5 * time.Second
	}
	l := &RedLock{store: c.Store(), key: c.Key(key) + "-lock", lease: lease, opts: o}
	if name, ok := identity.Of(l.store); ok {
		l.id, l.local = lockID{store: name, key: l.key}, true
	}
	return l
}

// Key returns the store key of the lock.
func (l *RedLock) Key() string { return l.key }

// Lease returns the lease of each acquisition.
func (l *RedLock) Lease() time.Duration { return l.lease }

// Held reports whether this RedLock holds the lock by its own account: it
// acquired it, did not release it, and the lease has not run out on the
// local clock. Only a store operation (Extend) can confirm it.
func (l *RedLock) Held() bool { return l.Remaining() > 0 }

// Remaining returns how much of the lease is left by the local clock, or 0
// when the lock is not held.
func (l *RedLock) Remaining() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token == nil {
		return 0
	}
	return max(time.Until(l.expires), 0)
}

// Fence returns the fencing token of the current acquisition: a positive
// number greater than the token of every earlier acquisition of the lock
// key, whoever the holder. ok is false when the lock is not held, when the
// RedLock was made without Options.Fencing, or when the store cannot hand
// out fencing tokens (it does not implement cache.Fencer; Memcached).
//
// Tokens are not consecutive: the Redis and memory stores take them from a
// hybrid logical clock, the greater of the last token plus one and the
// time in microseconds, so that they keep growing when the store loses
// its count (an eviction, a restart without persistence, a failover to a
// replica that lags) as long as the clock has moved forward past the lost
// tokens. The store's documentation states the exact conditions
// (cache.Fencer).
func (l *RedLock) Fence() (fence int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token == nil || l.fence == 0 {
		return 0, false
	}
	return l.fence, true
}

var errHeldAlready = errors.New("lock: this RedLock holds the lock already")

// abandonTimeout bounds, together with Options.ReleaseTimeout, the clean-up
// after an acquisition that failed because its context ended, so that the
// caller, whose context has ended, is not held up long by a slow store.
const abandonTimeout = time.Second

// notObtained returns the error of an acquisition stopped by the end of
// ctx: ErrNotObtained joined with ctx.Err() (context.Canceled or
// context.DeadlineExceeded) and, when it differs, context.Cause(ctx), so
// that errors.Is matches each of them.
func (l *RedLock) notObtained(ctx context.Context) error {
	return fmt.Errorf("lock %s: %w", l.key, errors.Join(ErrNotObtained, ctxErr(ctx)))
}

// ctxErr returns ctx.Err() joined with context.Cause(ctx) when the cause is
// another error (a cause given to context.WithCancelCause, say), or nil
// while ctx has not ended.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return errors.Join(err, cause)
	}
	return err
}

// TryAcquire takes the lock if it is free and reports whether it did; it
// never waits. Held by another holder is (false, nil); a context that ends
// gives an error joining ErrNotObtained, the context's error and its cause.
//
// When the context ends during the store call, the store may have taken the
// lock all the same; TryAcquire then deletes its token again (only its own),
// on a context detached from ctx and bounded by the shorter of
// Options.ReleaseTimeout and one second, so that the lock is usually not
// left held by nobody for a whole lease. The clean-up is best effort: it
// fails with the store, and a store call can outlive its context. On
// Memcached, whose client takes no context, a call whose context ends first
// goes on in the background, so its Add can land after the clean-up's
// delete; the lock is then held by nobody until its lease runs out.
func (l *RedLock) TryAcquire(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token != nil && time.Now().Before(l.expires) {
		return false, fmt.Errorf("lock %s: %w", l.key, errHeldAlready)
	}
	if ctx.Err() != nil {
		return false, l.notObtained(ctx) // nothing sent: nothing to clean up
	}
	token := []byte(uuid.NewString())
	start := time.Now()
	var fence int64
	var err error
	f, fencer := l.store.(cache.Fencer)
	lsr, leaser := l.store.(cache.Leaser)
	switch {
	case fencer && l.opts.Fencing:
		fence, err = f.AddFenced(ctx, l.key, token, l.lease)
	case leaser: // a store that may evict keys must keep this one
		err = lsr.AddLease(ctx, l.key, token, l.lease)
	default:
		err = l.store.Add(ctx, l.key, token, l.lease)
	}
	if errors.Is(err, cache.ErrExists) {
		return false, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			l.abandon(ctx, token)
			return false, l.notObtained(ctx)
		}
		return false, fmt.Errorf("lock %s: acquire: %w", l.key, err)
	}
	l.token, l.fence, l.expires = token, fence, start.Add(l.lease)
	return true, nil
}

// abandon deletes token from the lock key if an acquisition that reported
// an error took the lock all the same (its context ended after the store
// applied the Add). It is best effort: an error leaves the lock to expire
// with its lease.
func (l *RedLock) abandon(ctx context.Context, token []byte) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(l.opts.ReleaseTimeout, abandonTimeout))
	defer cancel()
	if deleted, err := l.store.DeleteIfEqual(ctx, l.key, token); err == nil && deleted && l.local {
		wakeReleased(l.id)
	}
}

// Acquire takes the lock, waiting as long as it takes, until ctx ends; then
// it returns an error joining ErrNotObtained, ctx's error and its cause. It
// never reports success without holding the lock. A store error ends the
// wait.
//
// A free lock costs one store call: only when the lock is busy does Acquire
// start watching for its release (on Redis, a subscription), and it tries
// once more after the watch is in place, so that a release in between is
// not missed.
func (l *RedLock) Acquire(ctx context.Context) error {
	ok, err := l.TryAcquire(ctx)
	if ok || err != nil {
		return err
	}
	w := l.startWait(ctx)
	defer w.stop()
	for {
		ok, err := l.TryAcquire(ctx)
		if ok || err != nil {
			return err
		}
		if _, err := w.wait(ctx, time.Time{}, nil); err != nil {
			return err
		}
	}
}

// AcquireOrWait is the bounded wait of aiocache's RedLock, which memo uses:
// it takes the lock if it is free (held == true); otherwise it waits until
// the holder releases it or its lease runs out, at most the lease, and
// returns held == false. The caller then goes on without the lock, usually
// to read the value the holder has just stored. It returns an error, joined
// with ErrNotObtained for a context that ends, only when it could not wait.
//
// As with Acquire, a free lock costs one store call; the watch for the
// release starts only when the lock is busy, and the holder is read after
// it is in place, so that a release in between is not missed. On a store
// that cannot report the remaining lease (Memcached), each poll reads the
// holder's token, so that the wait ends when the holder is gone even if
// another has taken the lock since. Elsewhere releases are notified and
// polls end with the holder's lease, so the wait runs on into a new
// holder's lease only if it took the lock between an expiry and the poll
// that would have seen it (and never for longer than the lease in all).
func (l *RedLock) AcquireOrWait(ctx context.Context) (held bool, err error) {
	ok, err := l.TryAcquire(ctx)
	if ok || err != nil {
		return ok, err
	}
	w := l.startWait(ctx)
	defer w.stop()
	// The holder to wait for: a wake-up counts only once its token is
	// gone, so a spurious or stale wake-up does not end the wait. Read
	// after the watch started: a release before it shows here.
	holder, err := l.store.Get(ctx, l.key)
	if errors.Is(err, cache.ErrNotFound) {
		return false, nil // released meanwhile
	}
	deadline := time.Now().Add(l.lease)
	for time.Now().Before(deadline) {
		released, err := w.wait(ctx, deadline, holder)
		if err != nil {
			return false, err
		}
		if !released {
			continue
		}
		if holder == nil {
			return false, nil // could not read the holder: trust the wake-up
		}
		cur, err := l.store.Get(ctx, l.key)
		if errors.Is(err, cache.ErrNotFound) || (err == nil && !bytes.Equal(cur, holder)) {
			return false, nil
		}
		if ctx.Err() != nil {
			return false, l.notObtained(ctx)
		}
	}
	return false, nil
}

// Release releases the lock if this RedLock still holds it, and wakes its
// waiters. It returns ErrNotHeld, deleting nothing, when the lock was not
// acquired, was released already, or its lease ran out (another holder's
// lock is left in place). It works even when ctx is already cancelled: it
// runs on a context detached from ctx and bounded by Options.ReleaseTimeout.
// When the store fails, the lock is still held by this RedLock, and Release
// may be called again.
func (l *RedLock) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	token := l.token
	if token == nil {
		return fmt.Errorf("lock %s: release: %w", l.key, ErrNotHeld)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.ReleaseTimeout)
	defer cancel()
	deleted, err := l.store.DeleteIfEqual(ctx, l.key, token)
	if err != nil {
		// Keep the token: the caller may try again.
		return fmt.Errorf("lock %s: release: %w", l.key, err)
	}
	l.token, l.fence = nil, 0
	if !deleted {
		return fmt.Errorf("lock %s: release: %w", l.key, ErrNotHeld)
	}
	if l.local {
		wakeReleased(l.id)
	}
	return nil
}

// Extend resets the lease of a held lock to lease from now, only if this
// RedLock still holds it; otherwise it returns ErrNotHeld.
func (l *RedLock) Extend(ctx context.Context, lease time.Duration) error {
	if lease <= 0 {
		return fmt.Errorf("lock %s: extend: %w", l.key, cache.ErrInvalidTTL)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token == nil {
		return fmt.Errorf("lock %s: extend: %w", l.key, ErrNotHeld)
	}
	start := time.Now()
	ok, err := l.store.ExtendIfEqual(ctx, l.key, l.token, lease)
	if err != nil {
		return fmt.Errorf("lock %s: extend: %w", l.key, err)
	}
	if !ok {
		l.token, l.fence = nil, 0
		return fmt.Errorf("lock %s: extend: %w", l.key, ErrNotHeld)
	}
	l.expires = start.Add(lease)
	return nil
}

// waiter waits for a release of one lock: in the process through the
// release registry, across processes through the store's Notifier if it has
// one, and by polling otherwise.
type waiter struct {
	l       *RedLock
	watch   <-chan struct{}
	unwatch func()
	backoff *backoff
}

func (l *RedLock) startWait(ctx context.Context) *waiter {
	w := &waiter{l: l, backoff: newBackoff(l.opts.MinBackoff, l.opts.MaxBackoff)}
	if n, ok := l.store.(cache.Notifier); ok {
		// Without a watch, waiters fall back to polling.
		if ch, stop, err := n.Watch(ctx, l.key); err == nil {
			w.watch, w.unwatch = ch, stop
		}
	}
	return w
}

func (w *waiter) stop() {
	if w.unwatch != nil {
		w.unwatch()
	}
}

// wait returns after a release may have happened (released == true): a
// release in this process, a notification from the store, the lock key
// found gone (released, or its lease ran out); or after a poll interval or
// the deadline (if not zero) passed (released == false). It returns an error
// only when ctx ends.
//
// holder, if not nil, is the token of the holder waited for: where the store
// cannot report the remaining lease, the poll reads the lock key (at the
// cost of the Exists it replaces) and counts a different token as a release.
func (w *waiter) wait(ctx context.Context, deadline time.Time, holder []byte) (released bool, err error) {
	var local <-chan struct{} // nil without an in-process registry: never ready
	if w.l.local {
		ch, done := waitRelease(w.l.id)
		defer done()
		local = ch
	}

	// Is the lock still held? Never sleep past the end of the holder's
	// lease: its remaining lease where the store can tell it, else this
	// lock's own lease, assuming the holder took the same (see Options).
	limit, exact := w.l.lease, false
	ttl, err := w.l.store.TTL(ctx, w.l.key)
	switch {
	case err == nil && ttl >= 0:
		limit, exact = ttl+time.Millisecond, true
	case errors.Is(err, cache.ErrNotFound):
		return true, nil // released (or expired) meanwhile
	case errors.Is(err, cache.ErrUnsupported) && holder != nil:
		cur, err := w.l.store.Get(ctx, w.l.key)
		if errors.Is(err, cache.ErrNotFound) || (err == nil && !bytes.Equal(cur, holder)) {
			return true, nil // released, expired, or taken by another since
		}
	case errors.Is(err, cache.ErrUnsupported):
		if held, err := w.l.store.Exists(ctx, w.l.key); err == nil && !held {
			return true, nil
		}
	}
	var d time.Duration
	switch {
	case w.watch != nil:
		d = min(w.l.opts.MaxBackoff, limit) // notified of releases; poll only for expiry
	case exact:
		d = min(w.backoff.delay(0), limit) // wake when the lease ends, not before
	default:
		d = w.backoff.delay(limit) // jittered below the limit, for many waiters
	}
	if !deadline.IsZero() {
		d = min(d, time.Until(deadline))
	}
	if d <= 0 {
		return false, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-local:
		return true, nil
	case <-w.watch: // nil when there is no watch: never ready
		return true, nil
	case <-t.C:
		return false, nil
	case <-ctx.Done():
		return false, w.l.notObtained(ctx)
	}
}

// Do acquires the lock (waiting as Acquire does), runs fn, and releases the
// lock even if fn panics. It returns fn's error, joined with the error of
// Release if the lease was lost meanwhile (so the caller learns that the
// critical section may have overlapped another holder's).
func (l *RedLock) Do(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if err := l.Acquire(ctx); err != nil {
		return err
	}
	defer func() {
		if rerr := l.Release(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	return fn(ctx)
}
