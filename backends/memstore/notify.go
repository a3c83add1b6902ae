package memstore

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
)

// watchers holds the channels of the Watch calls in progress, by key.
type watchers struct {
	n  atomic.Int64 // number of channels registered, so wakes skip the lock when 0
	mu sync.Mutex
	m  map[string]map[chan struct{}]struct{}
}

func (w *watchers) init() { w.m = make(map[string]map[chan struct{}]struct{}) }

// add registers ch as a watcher of key.
func (w *watchers) add(key string, ch chan struct{}) {
	w.mu.Lock()
	set := w.m[key]
	if set == nil {
		set = make(map[chan struct{}]struct{})
		w.m[key] = set
	}
	set[ch] = struct{}{}
	w.n.Add(1)
	w.mu.Unlock()
}

// remove unregisters ch; removing it twice does nothing.
func (w *watchers) remove(key string, ch chan struct{}) {
	w.mu.Lock()
	if set := w.m[key]; set != nil {
		if _, ok := set[ch]; ok {
			delete(set, ch)
			w.n.Add(-1)
			if len(set) == 0 {
				delete(w.m, key)
			}
		}
	}
	w.mu.Unlock()
}

// wake signals every watcher of key without blocking.
func (w *watchers) wake(key string) {
	if w.n.Load() == 0 {
		return
	}
	w.mu.Lock()
	for ch := range w.m[key] {
		signal(ch)
	}
	w.mu.Unlock()
}

// wakePrefix signals every watcher of a key that starts with prefix.
func (w *watchers) wakePrefix(prefix string) {
	if w.n.Load() == 0 {
		return
	}
	w.mu.Lock()
	for key, set := range w.m {
		if strings.HasPrefix(key, prefix) {
			for ch := range set {
				signal(ch)
			}
		}
	}
	w.mu.Unlock()
}

// signal sends on ch unless a signal is already pending.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Watch returns a channel that receives a value after key is released, and
// a stop function that ends the watch; stop must be called, and calling it
// more than once is harmless. The watch is in place when Watch returns.
//
// The channel has a buffer of one: wake-ups that arrive before the
// previous one is received coalesce. Besides a successful DeleteIfEqual of
// key, Delete of key, Clear of a prefix of key and Close also wake its
// watchers, so wake-ups may be spurious; expiries are not reported. The
// channel is never closed, and ctx only bounds the call itself.
func (s *Store) Watch(ctx context.Context, key string) (<-chan struct{}, func(), error) {
	if err := s.check(ctx); err != nil {
		return nil, nil, err
	}
	ch := make(chan struct{}, 1)
	s.watch.add(key, ch)
	if s.closed.Load() {
		signal(ch) // Close may have woken the watchers before ch was added
	}
	return ch, func() { s.watch.remove(key, ch) }, nil
}
