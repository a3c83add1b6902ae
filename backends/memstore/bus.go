package memstore

import (
	"context"
	"sync"
)

// bus holds the Store's bus subscriptions, by channel.
type bus struct {
	mu     sync.Mutex
	closed bool
	subs   map[string]map[*busSub]struct{}
}

func (b *bus) init() { b.subs = make(map[string]map[*busSub]struct{}) }

// busSub is one subscription: the messages published to it wait in queue
// for its goroutine (run), which hands them to handle one at a time.
type busSub struct {
	handle func(msg []byte)
	state  func(connected bool) // may be nil
	wake   chan struct{}        // capacity 1: queue grew, or stopped was set
	exited chan struct{}        // closed when run returns

	mu      sync.Mutex
	queue   [][]byte
	stopped bool
}

// Publish sends msg on channel (cache.Bus) to every subscription of
// channel on the Store, this caller's included: each gets a copy of msg,
// queued for its goroutine, so Publish never waits for a handler. Every
// subscription sees the messages of a channel in the order their Publish
// calls took the Store's bus lock. It returns cache.ErrClosed after Close.
func (s *Store) Publish(ctx context.Context, channel string, msg []byte) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	b := &s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	for sub := range b.subs[channel] {
		m := make([]byte, len(msg))
		copy(m, msg)
		sub.push(m)
	}
	return nil
}

// Subscribe delivers the messages published on channel through this Store
// to handle (cache.Bus), in order, from a goroutine of the subscription's
// own, until the returned stop function is called. The subscription is in
// place when Subscribe returns. The Store is never disconnected: state is
// called only by Close, with false (state may be nil). Subscribe returns
// cache.ErrClosed after Close, and panics if handle is nil.
//
// handle gets a slice of its own, and should return quickly: the messages
// published meanwhile wait in memory. stop drops the messages not yet
// delivered, waits for a running call of handle to return and for the
// goroutine to end, so it must not be called from handle. Calling it more
// than once, or after Close, is harmless.
func (s *Store) Subscribe(ctx context.Context, channel string, handle func(msg []byte), state func(connected bool)) (stop func(), err error) {
	if handle == nil {
		panic("memstore: Subscribe with a nil handle")
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	sub := &busSub{handle: handle, state: state, wake: make(chan struct{}, 1), exited: make(chan struct{})}
	b := &s.bus
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, s.check(ctx)
	}
	set := b.subs[channel]
	if set == nil {
		set = make(map[*busSub]struct{})
		b.subs[channel] = set
	}
	set[sub] = struct{}{}
	b.mu.Unlock()
	go sub.run()
	return sync.OnceFunc(func() {
		b.mu.Lock()
		if set := b.subs[channel]; set != nil {
			delete(set, sub)
			if len(set) == 0 {
				delete(b.subs, channel)
			}
		}
		b.mu.Unlock()
		sub.stop()
	}), nil
}

// close stops every subscription, then calls its state(false). Later
// Subscribe calls fail.
func (b *bus) close() {
	b.mu.Lock()
	b.closed = true
	var subs []*busSub
	for _, set := range b.subs {
		for sub := range set {
			subs = append(subs, sub)
		}
	}
	clear(b.subs)
	b.mu.Unlock()
	for _, sub := range subs {
		sub.stop()
		if sub.state != nil {
			sub.state(false)
		}
	}
}

// push queues msg for delivery.
func (sub *busSub) push(msg []byte) {
	sub.mu.Lock()
	sub.queue = append(sub.queue, msg)
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

// stop ends run, dropping what is queued, and waits for it to return.
func (sub *busSub) stop() {
	sub.mu.Lock()
	sub.stopped = true
	sub.queue = nil
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
	<-sub.exited
}

// run delivers the queued messages, in order, until stop.
func (sub *busSub) run() {
	defer close(sub.exited)
	for {
		sub.mu.Lock()
		for len(sub.queue) == 0 && !sub.stopped {
			sub.mu.Unlock()
			<-sub.wake
			sub.mu.Lock()
		}
		if sub.stopped {
			sub.mu.Unlock()
			return
		}
		msg := sub.queue[0]
		sub.queue[0] = nil
		sub.queue = sub.queue[1:]
		if len(sub.queue) == 0 {
			sub.queue = nil
		}
		sub.mu.Unlock()
		sub.handle(msg)
	}
}
