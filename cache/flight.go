package cache

import (
	"context"
	"strings"
	"sync"
)

// Flight is one computation in the process that the callers of a key share:
// singleflight, with what the read-through layer needs besides (a caller
// may lead the flights of many keys at once, and a single-key caller joins
// the flight of its key whoever leads it). Flights belong to a Cache and its
// views: callers through other Caches over the same store meet through the
// store instead (memo's leases). Get one with Door.JoinFlight.
type Flight struct {
	f    *flights
	k    flightKey
	done chan struct{}
	val  any
	err  error
}

// FlightKind tells apart the flights of one key: a computation that its
// callers wait for, and a refresh that nobody waits for.
type FlightKind uint8

const (
	ComputeFlight FlightKind = iota
	RefreshFlight
)

type flightKey struct {
	kind FlightKind
	key  string
}

// flights is a Cache's registry of running flights.
type flights struct {
	mu sync.Mutex
	m  map[flightKey]*Flight
}

// JoinFlight returns the flight of kind for key (a store key), and whether
// the caller leads it: the leader must call Finish, once.
func (d Door[K, V]) JoinFlight(kind FlightKind, key string) (f *Flight, leader bool) {
	fs := &d.c.shared.flightsByKey
	k := flightKey{kind, key}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.m[k]; f != nil {
		return f, false
	}
	if fs.m == nil {
		fs.m = make(map[flightKey]*Flight)
	}
	f = &Flight{f: fs, k: k, done: make(chan struct{})}
	fs.m[k] = f
	return f, true
}

// forget removes the compute flights of keys (store keys) from the
// registry after a delete of them, so that the next caller of each starts
// a flight of its own rather than get the value of a computation that
// started before the delete. Such a flight goes on for the callers that
// joined it (its value, written over a lease the delete removed, is
// dropped).
func (fs *flights) forget(keys ...string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, key := range keys {
		delete(fs.m, flightKey{ComputeFlight, key})
	}
}

// forgetPrefix is forget for every key that starts with prefix (Clear).
func (fs *flights) forgetPrefix(prefix string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for k := range fs.m {
		if k.kind == ComputeFlight && strings.HasPrefix(k.key, prefix) {
			delete(fs.m, k)
		}
	}
}

// Finish records the flight's result, wakes its followers and removes it,
// so that the next caller of the key starts a flight of its own.
func (f *Flight) Finish(val any, err error) {
	f.f.mu.Lock()
	if f.f.m[f.k] == f {
		delete(f.f.m, f.k)
	}
	f.f.mu.Unlock()
	f.val, f.err = val, err
	close(f.done)
}

// Done returns a channel closed when the flight finishes.
func (f *Flight) Done() <-chan struct{} { return f.done }

// Result returns the flight's result once Done is closed.
func (f *Flight) Result() (any, error) {
	<-f.done
	return f.val, f.err
}

// Wait waits for the flight, or for ctx to end (then it returns ctx's
// error).
func (f *Flight) Wait(ctx context.Context) (any, error) {
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
