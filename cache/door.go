package cache

import (
	"context"
	"strings"
	"time"
)

// Door is the one way into a Cache's store for the packages built on the
// Cache (lock and memo in this module, and yours): it builds their store
// keys, bounds each store call by the Cache's Timeout, counts in the
// Cache's Stats, and keeps the fallbacks for stores that lack an optional
// capability (Leaser, Fencer, Notifier) in one place (capabilities.go), so
// that no package above the Cache asks which store it runs on. Get one
// with [Cache.Door]; it is a small value, safe for concurrent use.
//
// Users of the Cache do not need it.
type Door[K comparable, V any] struct {
	c *Cache[K, V]
}

// Door returns the door of c, for packages built on the Cache.
func (c *Cache[K, V]) Door() Door[K, V] { return Door[K, V]{c: c} }

// Key returns the store key of k, or an error matching ErrInvalidKey when
// the key function gives an empty key or one that holds the reserved NUL
// byte.
func (d Door[K, V]) Key(k K) (string, error) { return d.c.buildKey(k) }

// Record returns the record of k named suffix: a key of the store kept
// beside k's value, k's store key followed by the reserved NUL byte and
// suffix, which no key of any Cache can be (lock keeps a lock's token in
// the record "lock" of the protected key). It fails with an error matching
// ErrInvalidKey where Key does, and for an empty suffix.
func (d Door[K, V]) Record(k K, suffix string) (*Record, error) {
	key, err := d.c.buildKey(k)
	if err != nil {
		return nil, err
	}
	if suffix == "" || strings.IndexByte(suffix, ReservedKeyByte) >= 0 {
		return nil, ErrInvalidKey
	}
	return &Record{s: d.c.shared.base(), key: key + string(ReservedKeyByte) + suffix}, nil
}

// Count adds n to the counter st of the Cache's Stats.
func (d Door[K, V]) Count(st Stat, n int64) {
	if c := d.c.stats.of(st); c != nil {
		c.Add(n)
	}
}

// Raw reports whether the cache was made with Options.Raw: it stores no
// entries, and the Door's entry operations fail with ErrRaw.
func (d Door[K, V]) Raw() bool { return d.c.raw }

// Timeout returns the bound of each store call (Options.Timeout; 0 =
// none), for a package that must tell its callers.
func (d Door[K, V]) Timeout() time.Duration { return d.c.timeout }

// bounded is the part of a Cache's shared state that does not depend on
// its types: what a Record needs.
type bounded struct {
	store   Store
	timeout time.Duration
	stats   *counters
	wakes   *wakeRegistry
}

// bound applies the Timeout to ctx.
func (b *bounded) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if b.timeout <= 0 {
		return ctx, noCancel
	}
	return context.WithTimeout(ctx, b.timeout)
}

// failed counts a store error.
func (b *bounded) failed(err error) error {
	if err != nil {
		b.stats.errors.Add(1)
	}
	return err
}
