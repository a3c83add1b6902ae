package lock

import (
	"math/rand/v2"
	"sync"
	"time"
)

// releases wakes the waiters of this process when a holder in this process
// releases a lock. Each release closes the channel its waiters took and
// installs a fresh one, so a wake-up belongs to one release and can never be
// consumed by a later acquisition (aiocache #979).
var releases = struct {
	mu    sync.Mutex
	chans map[lockID]*waitList
}{chans: make(map[lockID]*waitList)}

// lockID names a lock within the process: the store (its identity.Of name)
// and the lock key.
type lockID struct {
	store any
	key   string
}

type waitList struct {
	ch      chan struct{}
	waiters int // goroutines holding ch
}

// waitRelease returns the channel closed by the next release of id in this
// process, and a function to call when the caller stops waiting.
func waitRelease(id lockID) (<-chan struct{}, func()) {
	releases.mu.Lock()
	defer releases.mu.Unlock()
	w := releases.chans[id]
	if w == nil {
		w = &waitList{ch: make(chan struct{})}
		releases.chans[id] = w
	}
	w.waiters++
	return w.ch, func() {
		releases.mu.Lock()
		w.waiters--
		if w.waiters == 0 && releases.chans[id] == w {
			delete(releases.chans, id)
		}
		releases.mu.Unlock()
	}
}

// wakeReleased wakes every waiter of id in this process.
func wakeReleased(id lockID) {
	releases.mu.Lock()
	defer releases.mu.Unlock()
	if w := releases.chans[id]; w != nil {
		close(w.ch)
		delete(releases.chans, id)
	}
}

// backoff is a jittered exponential backoff between min and max.
type backoff struct {
	min, max, next time.Duration
}

func newBackoff(min, max time.Duration) *backoff {
	return &backoff{min: min, max: max, next: min}
}

// delay returns the next delay: uniformly random in [d/2, d], where d
// doubles from min up to max with each call, and is capped by limit when
// limit is positive (the doubling goes on under the cap).
func (b *backoff) delay(limit time.Duration) time.Duration {
	d := b.next
	if b.next < b.max {
		if b.next > b.max/2 {
			b.next = b.max
		} else {
			b.next *= 2
		}
	}
	if limit > 0 && d > limit {
		d = limit
	}
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}
