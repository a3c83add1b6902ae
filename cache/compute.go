package cache

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"

	"github.com/typedcache/typedcache/codec"
)

// ErrPanic is wrapped by the error GetOrCompute returns when the computation
// panicked.
var ErrPanic = errors.New("cache: computation panicked")

// PanicError is the error of a computation that panicked: it matches
// ErrPanic and carries the panic's value and stack.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("cache: computation panicked: %v", e.Value) }

// Is reports whether target is ErrPanic.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Unwrap returns the panic value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Recover runs fn and turns a panic into a *PanicError. Packages that run
// computations for many waiters (memo) use it so that one panic reaches every
// waiter as an error instead of crashing the process.
func Recover[T any](fn func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return fn()
}

// GetOrCompute returns the value of k, computing and storing it on a miss.
// In this process, concurrent callers for one key share a single
// computation (singleflight). The computation runs on a context detached
// from every caller's (it keeps the values of the first caller's context)
// and bounded by Options.ComputeTimeout, so it does not die with the first
// caller; each caller stops waiting when its own context ends. Its result is
// written with the cache's TTL (the view's, for a view made by WithTTL:
// views with different TTLs do not share computations). An error or a panic
// of the computation, or of the codec or store under it, reaches every
// waiter (a panic as an error matching ErrPanic), is counted once in
// Stats.Errors, and nothing is cached. A failure to write the computed value
// is counted in Stats but not returned: the caller still gets the value. A
// stored value that fails to decode is treated as a miss: it is recomputed
// and overwritten (and counted in Stats.DecodeErrors).
//
// Across processes, use memo.GetOrCompute, which adds a lock.
func (c *Cache[K, V]) GetOrCompute(ctx context.Context, k K, compute func(ctx context.Context) (V, error)) (V, error) {
	var zero V
	key, err := c.buildKey(k)
	if err != nil {
		return zero, c.fail("compute", key, err)
	}
	if _, err := c.writeTTL(); err != nil {
		return zero, c.fail("compute", key, err)
	}
	v, found, err := c.Get(ctx, k)
	if found {
		return v, nil
	}
	if err != nil && !errors.Is(err, codec.ErrDecode) {
		return zero, err
	}
	ch := c.flights.DoChan(c.flightKey(key), func() (any, error) {
		v, err := Recover(func() (V, error) { return c.computeAndStore(ctx, k, key, compute) })
		if err != nil {
			c.stats.errors.Add(1)
		}
		return v, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return zero, &OpError{Op: "compute", Key: key, Err: res.Err}
		}
		v, _ := res.Val.(V) // a nil interface V comes back as a nil any
		return v, nil
	case <-ctx.Done():
		return zero, &OpError{Op: "compute", Key: key, Err: context.Cause(ctx)}
	}
}

// flightKey is the singleflight key of a computation of key: the key, and
// the TTL of a view whose TTL is not the cache's default, so that a caller
// never gets its value written with another view's TTL.
func (c *Cache[K, V]) flightKey(key string) string {
	if c.ttl == c.defaultTTL {
		return key
	}
	return key + "\x00" + strconv.FormatInt(int64(c.ttl), 10)
}

// computeAndStore is the shared flight of GetOrCompute: re-check, compute,
// write.
func (c *Cache[K, V]) computeAndStore(ctx context.Context, k K, key string, compute func(ctx context.Context) (V, error)) (V, error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.computeTimeout)
	defer cancel()
	// Another flight may have stored the value since our miss. This read is
	// the flight's, not a caller's: it is not counted.
	octx, ocancel := c.opContext(cctx)
	data, err := c.store.Get(octx, key)
	ocancel()
	if err == nil {
		if v, err := c.codec.Decode(data); err == nil {
			return v, nil
		}
	}
	c.stats.computations.Add(1)
	v, err := compute(cctx)
	if err != nil {
		return v, err
	}
	_ = c.Set(cctx, k, v) // a failure is counted by Set; the value is still good
	return v, nil
}
