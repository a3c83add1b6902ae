package teststores

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// Counting wraps a store and counts the calls of some of its operations, for
// tests that check how many reads and writes a feature makes. It keeps the
// optional interfaces of the store it wraps working: Watch and AddFenced are
// passed on when the inner store has them.
type Counting struct {
	cache.Store
	// GetCalls counts the Gets of values; LockGetCalls the Gets of lock
	// keys (ending in NUL "lock"), which waiters make to follow the holder.
	GetCalls, LockGetCalls atomic.Int64
	// TTLCalls counts TTL calls: a waiter reads the holder's remaining
	// lease before each wait.
	TTLCalls                                            atomic.Int64
	SetCalls, AddCalls, DeleteCalls, DeleteIfEqualCalls atomic.Int64
	// SwapCalls counts SwapIfEqual calls (passed on where the inner store
	// has them; the Door's fallback otherwise).
	SwapCalls atomic.Int64
	// GetMultiCalls counts GetMulti calls (one per call, whatever the
	// number of keys); SetMultiCalls likewise.
	GetMultiCalls, SetMultiCalls atomic.Int64
}

var (
	_ cache.Notifier = (*Counting)(nil)
	_ cache.Fencer   = (*Counting)(nil)
	_ cache.Swapper  = (*Counting)(nil)
	_ cache.Leaser   = (*Counting)(nil)
)

// NewCounting wraps s.
func NewCounting(s cache.Store) *Counting { return &Counting{Store: s} }

// Get counts a Get once it has returned, so that a test that sees the
// count knows the caller has the value.
func (c *Counting) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := c.Store.Get(ctx, key)
	if strings.HasSuffix(key, "\x00lock") {
		c.LockGetCalls.Add(1)
	} else {
		c.GetCalls.Add(1)
	}
	return v, err
}

// TTL counts a TTL call once it has returned.
func (c *Counting) TTL(ctx context.Context, key string) (time.Duration, error) {
	d, err := c.Store.TTL(ctx, key)
	c.TTLCalls.Add(1)
	return d, err
}

func (c *Counting) GetMulti(ctx context.Context, keys []string) ([][]byte, error) {
	c.GetMultiCalls.Add(1)
	return c.Store.GetMulti(ctx, keys)
}

func (c *Counting) SetMulti(ctx context.Context, items []cache.Item) error {
	c.SetMultiCalls.Add(1)
	return c.Store.SetMulti(ctx, items)
}

func (c *Counting) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.SetCalls.Add(1)
	return c.Store.Set(ctx, key, value, ttl)
}

func (c *Counting) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.AddCalls.Add(1)
	return c.Store.Add(ctx, key, value, ttl)
}

func (c *Counting) Delete(ctx context.Context, keys ...string) (int, error) {
	c.DeleteCalls.Add(1)
	return c.Store.Delete(ctx, keys...)
}

func (c *Counting) DeleteIfEqual(ctx context.Context, key string, value []byte) (bool, error) {
	c.DeleteIfEqualCalls.Add(1)
	return c.Store.DeleteIfEqual(ctx, key, value)
}

// Watch passes on to the inner store's Watch, or fails so that the caller
// polls, as it would with the inner store.
func (c *Counting) Watch(ctx context.Context, key string) (<-chan struct{}, func(), error) {
	if n, ok := c.Store.(cache.Notifier); ok {
		return n.Watch(ctx, key)
	}
	return nil, nil, errors.New("teststores: store has no Watch")
}

// AddFenced passes on to the inner store's AddFenced; without one it counts
// an Add and returns the fence 0 (no fencing), as the lock treats a store
// without fencing.
func (c *Counting) AddFenced(ctx context.Context, key string, value []byte, ttl time.Duration) (int64, error) {
	c.AddCalls.Add(1)
	if f, ok := c.Store.(cache.Fencer); ok {
		return f.AddFenced(ctx, key, value, ttl)
	}
	return 0, c.Store.Add(ctx, key, value, ttl)
}

// SwapIfEqual passes on to the inner store's SwapIfEqual; without one it
// does what the Door's fallback does (Gets, compare, CompareAndSwap).
func (c *Counting) SwapIfEqual(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	c.SwapCalls.Add(1)
	if sw, ok := c.Store.(cache.Swapper); ok {
		return sw.SwapIfEqual(ctx, key, old, value, ttl)
	}
	cur, tok, err := c.Store.Gets(ctx, key)
	if errors.Is(err, cache.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if string(cur) != string(old) {
		return false, nil
	}
	err = c.Store.CompareAndSwap(ctx, key, value, tok, ttl)
	if errors.Is(err, cache.ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

// AddLease passes on to the inner store's AddLease, or Add; it counts an
// Add.
func (c *Counting) AddLease(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.AddCalls.Add(1)
	if l, ok := c.Store.(cache.Leaser); ok {
		return l.AddLease(ctx, key, value, ttl)
	}
	return c.Store.Add(ctx, key, value, ttl)
}
