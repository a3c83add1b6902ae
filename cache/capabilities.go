package cache

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"
)

// The fallbacks for stores without an optional capability, in one place
// (as database/sql keeps its driver fallbacks in ctxutil.go). Packages built
// on the Cache reach them through the Door.

// addLease is Leaser.AddLease where the store has it, else Add: a store
// that never evicts keys before they expire needs nothing more.
func addLease(ctx context.Context, s Store, key string, value []byte, ttl time.Duration) error {
	if l, ok := s.(Leaser); ok {
		return l.AddLease(ctx, key, value, ttl)
	}
	return s.Add(ctx, key, value, ttl)
}

// addFenced is Fencer.AddFenced where the store has it (fenced == true),
// else addLease with no fencing token.
func addFenced(ctx context.Context, s Store, key string, value []byte, ttl time.Duration) (fence int64, fenced bool, err error) {
	if f, ok := s.(Fencer); ok {
		fence, err = f.AddFenced(ctx, key, value, ttl)
		return fence, true, err
	}
	return 0, false, addLease(ctx, s, key, value, ttl)
}

// swapIfEqual is Swapper.SwapIfEqual where the store has it, else Gets,
// a comparison, and CompareAndSwap with the token read, which is as
// atomic: the write happens only if the key is unchanged since the read.
func swapIfEqual(ctx context.Context, s Store, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if sw, ok := s.(Swapper); ok {
		return sw.SwapIfEqual(ctx, key, old, value, ttl)
	}
	cur, tok, err := s.Gets(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !bytes.Equal(cur, old) {
		return false, nil
	}
	err = s.CompareAndSwap(ctx, key, value, tok, ttl)
	if errors.Is(err, ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

// wakeRegistry wakes the watchers of a record in this process when a
// holder in this process releases it, whatever the store: on a store
// without notifications (Memcached) it is the only fast wake-up, and on
// the others it saves the trip through the backend. It belongs to a Cache
// and its views. Each release closes the channel its watchers armed and
// the next arm takes a fresh one, so that a wake-up belongs to one release
// and a later acquisition can never consume it (aiocache #979).
type wakeRegistry struct {
	mu    sync.Mutex
	chans map[string]*waitList
}

type waitList struct {
	ch      chan struct{}
	waiters int // watchers holding ch
}

// arm returns the channel closed by the next release of key in this
// process, and a function to call when the caller stops waiting on it.
func (r *wakeRegistry) arm(key string) (<-chan struct{}, func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.chans == nil {
		r.chans = make(map[string]*waitList)
	}
	w := r.chans[key]
	if w == nil {
		w = &waitList{ch: make(chan struct{})}
		r.chans[key] = w
	}
	w.waiters++
	var once sync.Once
	return w.ch, func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			w.waiters--
			if w.waiters == 0 && r.chans[key] == w {
				delete(r.chans, key)
			}
		})
	}
}

// wake wakes every watcher of key in this process.
func (r *wakeRegistry) wake(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w := r.chans[key]; w != nil {
		close(w.ch)
		delete(r.chans, key)
	}
}
