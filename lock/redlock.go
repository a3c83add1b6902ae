package lock

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/typedcache/typedcache/cache"
)

// Options configure a RedLock. A nil *Options, and every zero field, means
// the default.
type Options struct {
	// MinBackoff and MaxBackoff bound the jittered exponential backoff with
	// which waiters poll a store that cannot notify them of a release
	// (Memcached). Defaults: 2ms and 100ms. On stores that notify (Redis,
	// memory), a waiter sends no request while it waits: it wakes on the
	// release, or when the holder's lease runs out (the store reports the
	// remaining lease), whichever comes first.
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
	// second) the check after an acquisition that failed (see TryAcquire).
	// The Cache's Timeout bounds each store call within it, as every call
	// of a RedLock.
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
	rec   *cache.Record
	lease time.Duration
	opts  Options

	mu      sync.Mutex
	token   []byte    // the current acquisition's token; nil when not held
	fence   int64     // the current acquisition's fencing token
	expires time.Time // local estimate of the end of the lease
	// releasing marks a Release whose delete may have reached the store
	// (its reply was lost): a later Release that finds the key gone before
	// the lease ends knows that the delete was its own.
	releasing bool
}

// LockSuffix names the record of a value's key that holds its lock: the
// lock of key k is the store key of k, the reserved NUL byte, then "lock"
// (see cache.Door.Record). No key of any Cache can name it.
const LockSuffix = "lock"

// NewRedLock returns a RedLock for key of cache c, held for lease at each
// acquisition. The lock key is c's store key of key followed by the
// reserved NUL byte and LockSuffix, in c's store, where no key of any Cache
// can read, write or delete it. A nil opts means the defaults.
//
// A lock on a bare name needs no value type: keep one
// cache.Cache[string, struct{}] for the locks of a service, with their
// namespace and the Timeout of their store calls, and make each lock from
// it (see the example).
//
// NewRedLock fails with an error matching cache.ErrInvalidKey for a key
// the cache cannot build (empty, or holding a NUL byte), and with one
// matching cache.ErrInvalidTTL for a lease that is not positive.
func NewRedLock[K comparable, V any](c *cache.Cache[K, V], key K, lease time.Duration, opts *Options) (*RedLock, error) {
	rec, err := c.Door().Record(key, LockSuffix)
	if err != nil {
		return nil, &cache.OpError{Pkg: "lock", Op: "new", Key: c.Key(key), Err: err}
	}
	if lease <= 0 {
		return nil, &cache.OpError{Pkg: "lock", Op: "new", Key: rec.Key(), Err: cache.ErrInvalidTTL}
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
	return &RedLock{rec: rec, lease: lease, opts: o}, nil
}

// Key returns the store key of the lock.
func (l *RedLock) Key() string { return l.rec.Key() }

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

// settleTimeout bounds, together with Options.ReleaseTimeout, the check
// after an acquisition whose outcome is unknown, so that a caller whose
// context has ended is not held up long by a slow store.
const settleTimeout = time.Second

// fail returns the error of op on the lock: "lock: <op> <key>: <cause>".
func (l *RedLock) fail(op string, err error) error {
	return &cache.OpError{Pkg: "lock", Op: op, Key: l.rec.Key(), Err: err}
}

// notObtained returns the error of an acquisition stopped by the end of
// ctx: ErrNotObtained joined with ctx.Err() (context.Canceled or
// context.DeadlineExceeded) and, when it differs, context.Cause(ctx), so
// that errors.Is matches each of them.
func (l *RedLock) notObtained(op string, ctx context.Context) error {
	return l.fail(op, errors.Join(ErrNotObtained, ctxErr(ctx)))
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
// An acquisition that fails with an error may have reached the store all
// the same: the reply was lost (cache.ErrUncertain), the context ended
// while the store applied it, the connection broke. TryAcquire then reads
// the lock key back, on a context detached from ctx and bounded by the
// shorter of Options.ReleaseTimeout and one second:
//   - this acquisition's token: the lock is held, and TryAcquire reports
//     (true, nil), unless ctx has ended or the fencing token is unknown,
//     when it deletes its token and reports the error;
//   - another holder's token: (false, nil), the lock is busy;
//   - no token: the write did not land; TryAcquire tries again (twice at
//     most);
//   - the read fails too: it deletes its token, best effort, and reports
//     the error.
//
// The lock is therefore not left held by nobody for a lease, except when
// the store is unreachable for both the read and the delete, or when the
// write reaches the store after them (Memcached: a call whose context ends
// first goes on in the background).
func (l *RedLock) TryAcquire(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token != nil && time.Now().Before(l.expires) {
		return false, l.fail("acquire", errHeldAlready)
	}
	if ctx.Err() != nil {
		return false, l.notObtained("acquire", ctx) // nothing sent: nothing to clean up
	}
	token := []byte(uuid.NewString())
	start := time.Now()
	fence, err := l.add(ctx, token)
	for attempt := 0; ; attempt++ {
		switch {
		case err == nil:
			l.hold(token, fence, start)
			return true, nil
		case errors.Is(err, cache.ErrExists):
			return false, nil
		}
		switch l.settle(ctx, token) {
		case settledHeld:
			l.hold(token, 0, start)
			return true, nil
		case settledBusy:
			return false, nil
		case settledFree:
			if attempt < 2 && ctx.Err() == nil {
				// The write did not land: the lock is free. Try once more.
				start = time.Now()
				fence, err = l.add(ctx, token)
				continue
			}
		}
		if ctx.Err() != nil {
			return false, l.notObtained("acquire", ctx)
		}
		return false, l.fail("acquire", err)
	}
}

// add writes token to the lock key if it is absent, with a fencing token
// when the lock takes them.
func (l *RedLock) add(ctx context.Context, token []byte) (fence int64, err error) {
	if l.opts.Fencing {
		fence, _, err = l.rec.AddFenced(ctx, token, l.lease)
		return fence, err
	}
	return 0, l.rec.AddLease(ctx, token, l.lease)
}

func (l *RedLock) hold(token []byte, fence int64, start time.Time) {
	l.token, l.fence, l.expires, l.releasing = token, fence, start.Add(l.lease), false
}

// settled is what settle found.
type settled int

const (
	settledUnknown settled = iota // the lock key could not be read; the token was deleted, best effort
	settledHeld                   // the key holds the token: the lock is held
	settledBusy                   // the key holds another holder's token
	settledFree                   // the key is absent: the write did not land
)

// settle finds out whether an acquisition that failed took the lock all
// the same. It reports settledHeld only when the lock is held with token
// and may be kept (ctx has not ended, and no fencing token is missing);
// otherwise it leaves no token of its own in the store, as far as it can.
func (l *RedLock) settle(ctx context.Context, token []byte) settled {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(l.opts.ReleaseTimeout, settleTimeout))
	defer cancel()
	cur, err := l.rec.Get(dctx)
	for try := 1; try < 3 && err != nil && !errors.Is(err, cache.ErrNotFound) && dctx.Err() == nil; try++ {
		cur, err = l.rec.Get(dctx) // a read is safe to repeat
	}
	switch {
	case err == nil && bytes.Equal(cur, token):
		if ctx.Err() == nil && !l.opts.Fencing {
			return settledHeld // the reply was lost, not the lock
		}
	case err == nil:
		return settledBusy
	case errors.Is(err, cache.ErrNotFound):
		return settledFree
	}
	_, _ = l.rec.DeleteIfEqual(dctx, token)
	return settledUnknown
}

// Acquire takes the lock, waiting as long as it takes, until ctx ends; then
// it returns an error joining ErrNotObtained, ctx's error and its cause. It
// never reports success without holding the lock. A store error ends the
// wait.
//
// A free lock costs one store call. When the lock is busy, Acquire starts
// watching for its release (on Redis, a subscription), reads the holder's
// remaining lease, and waits: on a store that notifies releases (Redis,
// memory), until the release or the end of that lease, with no request in
// between; elsewhere (Memcached), polling with backoff capped by the lease.
func (l *RedLock) Acquire(ctx context.Context) error {
	ok, err := l.TryAcquire(ctx)
	if ok || err != nil {
		return err
	}
	w := l.rec.Watch(ctx)
	defer w.Stop()
	b := newBackoff(l.opts.MinBackoff, l.opts.MaxBackoff)
	for {
		// The lock was busy: wait for its release, read after the watch
		// was in place so that a release in between is not missed.
		d, gone, err := l.pollDelay(ctx, w, b, nil)
		if err != nil {
			return err
		}
		if !gone {
			if _, err := w.Wait(ctx, d); err != nil {
				return l.notObtained("acquire", ctx)
			}
		}
		ok, err := l.TryAcquire(ctx)
		if ok || err != nil {
			return err
		}
	}
}

// pollDelay reads whether the lock is still held and returns how long to
// wait for its release before looking again: the holder's remaining lease
// on a store that notifies releases (no poll before it ends), else the
// next backoff delay capped by the remaining lease, or, where the store
// cannot tell the lease, by this lock's own. gone reports that the lock is
// free (or, with holder set, no longer held by holder). It returns an
// error only when ctx ends.
func (l *RedLock) pollDelay(ctx context.Context, w *cache.Watch, b *backoff, holder []byte) (d time.Duration, gone bool, err error) {
	if ctx.Err() != nil {
		return 0, false, l.notObtained("acquire", ctx)
	}
	limit, exact := l.lease, false
	ttl, err := l.rec.TTL(ctx)
	switch {
	case err == nil && ttl >= 0:
		limit, exact = ttl+time.Millisecond, true
	case errors.Is(err, cache.ErrNotFound):
		return 0, true, nil
	case errors.Is(err, cache.ErrUnsupported):
		// The store cannot tell the lease (Memcached): read the holder.
		cur, err := l.rec.Get(ctx)
		if errors.Is(err, cache.ErrNotFound) || (err == nil && holder != nil && !bytes.Equal(cur, holder)) {
			return 0, true, nil
		}
	}
	if ctx.Err() != nil {
		return 0, false, l.notObtained("acquire", ctx)
	}
	switch {
	case w.Notified() && exact:
		return limit, false, nil // woken by the release, or at the lease's end
	case w.Notified():
		return min(l.opts.MaxBackoff, limit), false, nil
	case exact:
		return min(b.delay(0), limit), false, nil // wake when the lease ends, not before
	}
	return b.delay(limit), false, nil // jittered below the limit, for many waiters
}

// AcquireOrWait is the bounded wait of aiocache's RedLock: it takes the
// lock if it is free (held == true); otherwise it waits until the holder
// releases it or its lease runs out, at most the lease, and returns held ==
// false. The caller then goes on without the lock, usually to read the
// value the holder has just stored. It returns an error, joined with
// ErrNotObtained for a context that ends, only when it could not wait.
//
// As with Acquire, a free lock costs one store call; the watch for the
// release starts only when the lock is busy, and the holder is read after
// it is in place, so that a release in between is not missed. The wait
// ends when the holder's token is gone (released, expired, or replaced by
// another holder's), never on a stale wake-up.
func (l *RedLock) AcquireOrWait(ctx context.Context) (held bool, err error) {
	ok, err := l.TryAcquire(ctx)
	if ok || err != nil {
		return ok, err
	}
	w := l.rec.Watch(ctx)
	defer w.Stop()
	// The holder to wait for: a wake-up counts only once its token is
	// gone. Read after the watch started: a release before it shows here.
	holder, err := l.rec.Get(ctx)
	if errors.Is(err, cache.ErrNotFound) {
		return false, nil // released meanwhile
	}
	if ctx.Err() != nil {
		return false, l.notObtained("acquire", ctx)
	}
	b := newBackoff(l.opts.MinBackoff, l.opts.MaxBackoff)
	deadline := time.Now().Add(l.lease)
	for time.Now().Before(deadline) {
		d, gone, err := l.pollDelay(ctx, w, b, holder)
		if err != nil {
			return false, err
		}
		if gone {
			return false, nil
		}
		released, err := w.Wait(ctx, min(d, time.Until(deadline)))
		if err != nil {
			return false, l.notObtained("acquire", ctx)
		}
		if !released {
			continue
		}
		if holder == nil {
			return false, nil // could not read the holder: trust the wake-up
		}
		cur, err := l.rec.Get(ctx)
		if errors.Is(err, cache.ErrNotFound) || (err == nil && !bytes.Equal(cur, holder)) {
			return false, nil
		}
	}
	return false, nil
}

// Release releases the lock if this RedLock still holds it, and wakes its
// waiters. It returns ErrNotHeld, deleting nothing, when the lock was not
// acquired, was released already, or its lease ran out (another holder's
// lock is left in place). It works even when ctx is already cancelled: it
// runs on a context detached from ctx and bounded by Options.ReleaseTimeout.
//
// When the reply of the delete is lost, Release reads the lock key back:
// still this RedLock's token, it deletes again; gone or another holder's
// before the lease has run out on the local clock, the delete was its own
// and the lock is released. When the store fails, the lock is still held
// by this RedLock, and Release may be called again.
func (l *RedLock) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	token := l.token
	if token == nil {
		return l.fail("release", ErrNotHeld)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.ReleaseTimeout)
	defer cancel()
	deleted, err := l.rec.DeleteIfEqual(ctx, token)
	if err != nil {
		l.releasing = true
		cur, rerr := l.rec.Get(ctx)
		switch {
		case rerr == nil && bytes.Equal(cur, token):
			// The delete did not happen: the lock is still ours.
			if deleted, err = l.rec.DeleteIfEqual(ctx, token); err != nil {
				return l.fail("release", err) // keep the token: try again
			}
		case rerr == nil || errors.Is(rerr, cache.ErrNotFound):
			deleted, err = false, nil // gone: see below
		default:
			return l.fail("release", err) // keep the token: try again
		}
	}
	if !deleted && l.releasing && time.Now().Before(l.expires) {
		// An earlier delete of this release reached the store: the key
		// cannot have expired before the lease the local clock measures.
		deleted = true
	}
	l.token, l.fence, l.releasing = nil, 0, false
	if !deleted {
		return l.fail("release", ErrNotHeld)
	}
	return nil
}

// Extend resets the lease of a held lock to lease from now, only if this
// RedLock still holds it; otherwise it returns ErrNotHeld. A lost reply is
// settled by reading the lock key back.
func (l *RedLock) Extend(ctx context.Context, lease time.Duration) error {
	if lease <= 0 {
		return l.fail("extend", cache.ErrInvalidTTL)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token == nil {
		return l.fail("extend", ErrNotHeld)
	}
	start := time.Now()
	ok, err := l.rec.ExtendIfEqual(ctx, l.token, lease)
	if err != nil {
		// Extending is idempotent: if the key still holds the token, extend
		// again.
		cur, rerr := l.rec.Get(ctx)
		switch {
		case rerr == nil && bytes.Equal(cur, l.token):
			start = time.Now()
			if ok, err = l.rec.ExtendIfEqual(ctx, l.token, lease); err != nil {
				return l.fail("extend", err)
			}
		case rerr == nil || errors.Is(rerr, cache.ErrNotFound):
			ok = false
		default:
			return l.fail("extend", err)
		}
	}
	if !ok {
		l.token, l.fence = nil, 0
		return l.fail("extend", ErrNotHeld)
	}
	l.expires = start.Add(lease)
	return nil
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
