package memo

import (
	"context"
	"sync"

	"github.com/typedcache/typedcache/cache"
)

// flights deduplicates computations in the process, per store and key.
// It is singleflight with one addition GetOrComputeMulti needs: a caller can
// lead the flights of many keys at once, and a single-key caller joins the
// flight of its key whoever leads it.
var flights = struct {
	mu sync.Mutex
	m  map[flightKey]*flight
}{m: make(map[flightKey]*flight)}

type flightKey struct {
	store cache.Store
	key   string
}

type flight struct {
	done chan struct{}
	val  any
	err  error
}

// join returns the flight of key, and whether the caller leads it (and must
// finish it).
func join(store cache.Store, key string) (f *flight, leader bool) {
	k := flightKey{store, key}
	flights.mu.Lock()
	defer flights.mu.Unlock()
	if f := flights.m[k]; f != nil {
		return f, false
	}
	f = &flight{done: make(chan struct{})}
	flights.m[k] = f
	return f, true
}

// finish records the result of a flight led by the caller and wakes its
// followers.
func finish(store cache.Store, key string, f *flight, val any, err error) {
	flights.mu.Lock()
	delete(flights.m, flightKey{store, key})
	flights.mu.Unlock()
	f.val, f.err = val, err
	close(f.done)
}

// wait waits for f or for ctx to end.
func wait[V any](ctx context.Context, f *flight) (V, error) {
	select {
	case <-f.done:
		v, _ := f.val.(V)
		return v, f.err
	case <-ctx.Done():
		var zero V
		return zero, context.Cause(ctx)
	}
}
