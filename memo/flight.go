package memo

import (
	"context"
	"reflect"
	"sync"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/identity"
)

// flights deduplicates computations in the process, per store, value type
// and key. It is singleflight with one addition GetOrComputeMulti needs: a
// caller can lead the flights of many keys at once, and a single-key caller
// joins the flight of its key whoever leads it.
var flights = struct {
	mu sync.Mutex
	m  map[flightKey]*flight
}{m: make(map[flightKey]*flight)}

// flightKey names a flight: two caches of different value types over one
// store and namespace never share one.
type flightKey struct {
	store any // identity.Of the store
	typ   reflect.Type
	key   string
}

type flight struct {
	k          flightKey
	registered bool
	done       chan struct{}
	val        any
	err        error
}

// join returns the flight of key, and whether the caller leads it (and must
// finish it). A store that has no identity in the process gets a flight of
// its own for every caller: no deduplication, but no panic.
func join[V any](store cache.Store, key string) (f *flight, leader bool) {
	name, ok := identity.Of(store)
	if !ok {
		return &flight{done: make(chan struct{})}, true
	}
	k := flightKey{store: name, typ: reflect.TypeFor[V](), key: key}
	flights.mu.Lock()
	defer flights.mu.Unlock()
	if f := flights.m[k]; f != nil {
		return f, false
	}
	f = &flight{k: k, registered: true, done: make(chan struct{})}
	flights.m[k] = f
	return f, true
}

// finish records the result of a flight led by the caller and wakes its
// followers.
func (f *flight) finish(val any, err error) {
	if f.registered {
		flights.mu.Lock()
		delete(flights.m, f.k)
		flights.mu.Unlock()
	}
	f.val, f.err = val, err
	close(f.done)
}

// wait waits for f or for ctx to end.
func wait[V any](ctx context.Context, f *flight) (V, error) {
	select {
	case <-f.done:
		v, _ := f.val.(V) // the flight's type is V: only a nil value fails
		return v, f.err
	case <-ctx.Done():
		var zero V
		return zero, context.Cause(ctx)
	}
}

// tracker counts background goroutines so that Memo.Close can wait for
// them. Unlike a sync.WaitGroup, goroutines may be added while Close waits.
type tracker struct {
	mu   sync.Mutex
	n    int
	idle *sync.Cond
}

func newTracker() *tracker {
	t := &tracker{}
	t.idle = sync.NewCond(&t.mu)
	return t
}

func (t *tracker) add() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.n++
	t.mu.Unlock()
}

func (t *tracker) done() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.n--
	if t.n == 0 {
		t.idle.Broadcast()
	}
	t.mu.Unlock()
}

// wait returns once no goroutine is running.
func (t *tracker) wait() {
	t.mu.Lock()
	for t.n > 0 {
		t.idle.Wait()
	}
	t.mu.Unlock()
}
