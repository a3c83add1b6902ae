package cachetest_test

import (
	"context"
	"sync"
	"time"

	"github.com/typedcache/typedcache/cache"
)

var _ cache.Bus = (*refStore)(nil)

// refBus is the bus of a refBackend: the subscriptions by channel.
type refBus struct {
	mu   sync.Mutex
	subs map[string]map[*refSub]struct{}
}

// refSub is one subscription, delivered by a goroutine of its own.
type refSub struct {
	handle func([]byte)
	queue  chan []byte
	quit   chan struct{}
	exited chan struct{}
}

// refSubs is the set of one refStore's subscriptions.
type refSubs struct {
	mu    sync.Mutex
	stops map[*refSub]func()
}

func (r *refSubs) add(sub *refSub, stop func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stops == nil {
		r.stops = map[*refSub]func(){}
	}
	r.stops[sub] = stop
}

func (r *refSubs) remove(sub *refSub) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.stops, sub)
}

func (r *refSubs) stopAll() {
	r.mu.Lock()
	stops := make([]func(), 0, len(r.stops))
	for _, stop := range r.stops {
		stops = append(stops, stop)
	}
	r.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
}

func (s *refStore) Publish(ctx context.Context, channel string, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return cache.ErrClosed
	}
	b := &s.b.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	for sub := range b.subs[channel] {
		select {
		case sub.queue <- append([]byte{}, msg...):
		default: // the suite never sends that many
		}
	}
	return nil
}

// Subscribe registers the subscription and starts its goroutine. With the
// fault "bus-late", the subscription is registered a moment after
// Subscribe returns; with "bus-stop-noop", stop does not end it.
func (s *refStore) Subscribe(ctx context.Context, channel string, handle func([]byte), state func(bool)) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, cache.ErrClosed
	}
	sub := &refSub{handle: handle, queue: make(chan []byte, 100_000), quit: make(chan struct{}), exited: make(chan struct{})}
	b := &s.b.bus
	register := func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.subs == nil {
			b.subs = map[string]map[*refSub]struct{}{}
		}
		if b.subs[channel] == nil {
			b.subs[channel] = map[*refSub]struct{}{}
		}
		b.subs[channel][sub] = struct{}{}
	}
	var late sync.WaitGroup
	if s.b.fault == "bus-late" {
		late.Add(1)
		go func() {
			defer late.Done()
			time.Sleep(50 * time.Millisecond)
			register()
		}()
	} else {
		register()
	}
	go sub.run()
	stop := sync.OnceFunc(func() {
		late.Wait()
		if s.b.fault == "bus-stop-noop" {
			return
		}
		b.mu.Lock()
		delete(b.subs[channel], sub)
		b.mu.Unlock()
		close(sub.quit)
		<-sub.exited
		s.subs.remove(sub)
	})
	s.subs.add(sub, stop)
	return stop, nil
}

func (sub *refSub) run() {
	defer close(sub.exited)
	for {
		select {
		case <-sub.quit:
			return
		case msg := <-sub.queue:
			select {
			case <-sub.quit:
				return
			default:
			}
			sub.handle(msg)
		}
	}
}
