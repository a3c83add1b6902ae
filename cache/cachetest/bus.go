package cachetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
)

func (e *env) bus() cache.Bus {
	e.t.Helper()
	b, ok := e.s.(cache.Bus)
	if !ok {
		e.t.Skip("the store does not implement cache.Bus")
	}
	return b
}

// otherBus returns a second store's Bus when it shares the backend of the
// first, and skips the test otherwise.
func (e *env) otherBus() cache.Bus {
	e.t.Helper()
	other, shared := e.shared()
	if !shared {
		e.t.Skip("two stores of this harness do not share a backend: no other client can publish")
	}
	b, ok := other.(cache.Bus)
	if !ok {
		e.t.Skip("the second store does not implement cache.Bus")
	}
	return b
}

// channel returns a bus channel of the test: under its prefix, so that
// runs on a shared backend never hear each other.
func (e *env) channel(name string) string { return e.prefix + "bus:" + name }

// inbox records what a subscription's handle and state receive, and
// whether they were ever called concurrently or after stop returned.
type inbox struct {
	msgs   chan []byte
	states chan bool
	busy   atomic.Int32 // calls in progress
	errs   chan string  // violations seen by the callbacks
	ended  atomic.Bool  // stop returned
}

func newInbox() *inbox {
	return &inbox{msgs: make(chan []byte, 10_000), states: make(chan bool, 100), errs: make(chan string, 10)}
}

func (in *inbox) enter() {
	if in.busy.Add(1) != 1 {
		in.report("two calls of a subscription's callbacks ran at once")
	}
	if in.ended.Load() {
		in.report("a callback was called after stop returned")
	}
}

func (in *inbox) leave() { in.busy.Add(-1) }

func (in *inbox) report(msg string) {
	select {
	case in.errs <- msg:
	default:
	}
}

func (in *inbox) handle(msg []byte) {
	in.enter()
	defer in.leave()
	select {
	case in.msgs <- msg:
	default:
		in.report("more than 10000 messages")
	}
}

func (in *inbox) state(connected bool) {
	in.enter()
	defer in.leave()
	select {
	case in.states <- connected:
	default:
	}
}

// subscribe subscribes in to channel through b, and stops the
// subscription when the test ends. The returned stop may be called before.
func (e *env) subscribe(b cache.Bus, channel string, in *inbox) (stop func()) {
	e.t.Helper()
	end, err := b.Subscribe(e.ctx, channel, in.handle, in.state)
	if err != nil {
		e.t.Fatalf("Subscribe(%q): %v", channel, err)
	}
	if end == nil {
		e.t.Fatalf("Subscribe(%q): got a nil stop function", channel)
	}
	stop = func() {
		end()
		in.ended.Store(true)
	}
	e.t.Cleanup(func() {
		stop()
		select {
		case msg := <-in.errs:
			e.t.Errorf("subscription of %q: %s", channel, msg)
		default:
		}
	})
	return stop
}

func (e *env) publish(b cache.Bus, channel string, msg []byte) {
	e.t.Helper()
	if err := b.Publish(e.ctx, channel, msg); err != nil {
		e.t.Fatalf("Publish(%q, %s): %v", channel, showValue(msg), err)
	}
}

// wantMsg waits for the next message of in, which must be want.
func (e *env) wantMsg(in *inbox, want []byte, what string) {
	e.t.Helper()
	select {
	case got := <-in.msgs:
		if !bytes.Equal(got, want) {
			e.t.Fatalf("%s: got the message %s; want %s", what, showValue(got), showValue(want))
		}
	case <-time.After(wakeWait):
		e.t.Fatalf("%s: no message within %v; want %s", what, wakeWait, showValue(want))
	}
}

// wantNoMsg checks that in receives no message for a while.
func (e *env) wantNoMsg(in *inbox, what string) {
	e.t.Helper()
	select {
	case got := <-in.msgs:
		e.t.Fatalf("%s: got the message %s; want none", what, showValue(got))
	case <-time.After(silence):
	}
}

// testBus covers cache.Bus, for stores that implement it.
func (s *suite) testBus(t *testing.T) {
	s.run(t, "Own", func(e *env) {
		b := e.bus()
		ch := e.channel("c")
		in := newInbox()
		e.subscribe(b, ch, in)
		e.publish(b, ch, []byte("hello"))
		e.wantMsg(in, []byte("hello"), "a message published through the subscribing store")
	})
	s.run(t, "OtherStore", func(e *env) {
		b := e.bus()
		other := e.otherBus()
		ch := e.channel("c")
		in, otherIn := newInbox(), newInbox()
		e.subscribe(b, ch, in)
		e.subscribe(other, ch, otherIn)
		e.publish(other, ch, []byte("from the other"))
		e.wantMsg(in, []byte("from the other"), "a message published by another store of the backend")
		e.wantMsg(otherIn, []byte("from the other"), "a message published by the subscribing store")
		e.publish(b, ch, []byte("from the first"))
		e.wantMsg(otherIn, []byte("from the first"), "a message published by another store of the backend")
		e.wantMsg(in, []byte("from the first"), "a message published by the subscribing store")
	})
	s.run(t, "EverySubscriber", func(e *env) {
		b := e.bus()
		ch := e.channel("c")
		ins := []*inbox{newInbox(), newInbox()}
		for _, in := range ins {
			e.subscribe(b, ch, in)
		}
		if other, shared := e.shared(); shared {
			if ob, ok := other.(cache.Bus); ok {
				in := newInbox()
				e.subscribe(ob, ch, in)
				ins = append(ins, in)
			}
		}
		e.publish(b, ch, []byte("all"))
		for i, in := range ins {
			e.wantMsg(in, []byte("all"), fmt.Sprintf("subscription %d of %d", i+1, len(ins)))
		}
	})
	s.run(t, "Order", func(e *env) {
		b := e.bus()
		ch := e.channel("c")
		in := newInbox()
		e.subscribe(b, ch, in)
		const n = 200
		for i := range n {
			e.publish(b, ch, []byte(strconv.Itoa(i)))
		}
		for i := range n {
			e.wantMsg(in, []byte(strconv.Itoa(i)), fmt.Sprintf("message %d of %d, published in order", i+1, n))
		}
	})
	s.run(t, "Channels", func(e *env) {
		b := e.bus()
		a, c := e.channel("a"), e.channel("a2")
		inA, inC := newInbox(), newInbox()
		e.subscribe(b, a, inA)
		e.subscribe(b, c, inC)
		e.publish(b, c, []byte("to a2"))
		e.wantMsg(inC, []byte("to a2"), "a message on its channel")
		e.publish(b, a, []byte("to a"))
		e.wantMsg(inA, []byte("to a"), "a message on its channel")
		e.wantNoMsg(inA, "on a channel after a message on another")
		e.wantNoMsg(inC, "on a channel after a message on another")
	})
	s.run(t, "Binary", func(e *env) {
		b := e.bus()
		ch := e.channel("c")
		in := newInbox()
		e.subscribe(b, ch, in)
		large := make([]byte, 256<<10)
		if _, err := rand.Read(large); err != nil {
			e.t.Fatal(err)
		}
		payloads := [][]byte{
			{0},
			{0xC1, 0, 1, 0, 0xff, '\r', '\n'},
			[]byte("*1\r\n$4\r\nPING\r\n"),
			[]byte("\xff\xfe invalid UTF-8"),
			large,
		}
		for _, p := range payloads {
			e.publish(b, ch, p)
		}
		e.publish(b, ch, []byte{})
		for i, p := range payloads {
			e.wantMsg(in, p, fmt.Sprintf("binary payload %d", i+1))
		}
		select {
		case got := <-in.msgs:
			if len(got) != 0 {
				e.t.Fatalf("an empty payload: got %s; want an empty message", showValue(got))
			}
		case <-time.After(wakeWait):
			e.t.Fatalf("an empty payload: no message within %v", wakeWait)
		}
	})
	s.run(t, "InPlace", func(e *env) {
		// A message published the moment Subscribe returns, by another
		// client where there is one, is delivered: the subscription was
		// in place. Fresh channels make each round a new subscription.
		b := e.bus()
		pub := b
		if other, shared := e.shared(); shared {
			if ob, ok := other.(cache.Bus); ok {
				pub = ob
			}
		}
		const rounds = 20
		ins := make([]*inbox, rounds)
		for r := range rounds {
			ch := e.channel("c" + strconv.Itoa(r))
			ins[r] = newInbox()
			e.subscribe(b, ch, ins[r])
			e.publish(pub, ch, []byte("right after"))
		}
		for r, in := range ins {
			e.wantMsg(in, []byte("right after"), fmt.Sprintf("round %d: a message published right after Subscribe returned", r+1))
		}
	})
	s.run(t, "Stop", func(e *env) {
		b := e.bus()
		ch := e.channel("c")
		in, kept := newInbox(), newInbox()
		stop := e.subscribe(b, ch, in)
		e.subscribe(b, ch, kept)
		e.publish(b, ch, []byte("before"))
		e.wantMsg(in, []byte("before"), "before stop")
		e.wantMsg(kept, []byte("before"), "before stop")
		stop()
		stop() // a second call is harmless
		e.publish(b, ch, []byte("after"))
		e.wantMsg(kept, []byte("after"), "the subscription that was not stopped")
		e.wantNoMsg(in, "after stop")
	})
	s.run(t, "StopWaits", func(e *env) {
		// stop waits for a running call of handle to return.
		b := e.bus()
		ch := e.channel("c")
		entered, release := make(chan struct{}), make(chan struct{})
		var returned, calls atomic.Int32
		stop, err := b.Subscribe(e.ctx, ch, func([]byte) {
			if calls.Add(1) == 1 {
				close(entered)
				<-release
			}
			returned.Add(1)
		}, nil)
		if err != nil {
			e.t.Fatalf("Subscribe: %v", err)
		}
		defer close(release)
		e.publish(b, ch, []byte("slow"))
		select {
		case <-entered:
		case <-time.After(wakeWait):
			stop()
			e.t.Fatalf("no message within %v", wakeWait)
		}
		stopped := make(chan int32, 1)
		go func() {
			stop()
			stopped <- returned.Load()
		}()
		select {
		case n := <-stopped:
			e.t.Fatalf("stop returned while handle was running (%d calls returned); want it to wait", n)
		case <-time.After(silence):
		}
		release <- struct{}{}
		select {
		case n := <-stopped:
			if n != 1 {
				e.t.Fatalf("stop returned after %d calls of handle had returned; want 1", n)
			}
		case <-time.After(wakeWait):
			e.t.Fatalf("stop did not return within %v of handle's return", wakeWait)
		}
		e.publish(b, ch, []byte("after"))
		time.Sleep(silence)
		if n := calls.Load(); n != 1 {
			e.t.Fatalf("handle called %d times; want 1 (none after stop)", n)
		}
	})
	s.run(t, "Race", func(e *env) {
		// Goroutines subscribe to one channel and stop, over and over,
		// then each keeps a last subscription: a stop must never leave
		// another's subscription out of place.
		b := e.bus()
		const n = 8
		e.races("Subscribe and stop", n, func(r int) int64 {
			ch := e.channel("race-" + strconv.Itoa(r))
			kept := make([]*inbox, n)
			stops := make([]func(), n)
			errs := make([]error, n)
			peak := race(n, func(i int, call func(func())) {
				for j := range 10 {
					in := newInbox()
					var stop func()
					var err error
					call(func() { stop, err = b.Subscribe(e.ctx, ch, in.handle, in.state) })
					if err != nil {
						errs[i] = err
						return
					}
					if j < 9 {
						call(stop)
						continue
					}
					kept[i], stops[i] = in, stop
				}
			})
			for _, stop := range stops {
				if stop != nil {
					e.t.Cleanup(stop)
				}
			}
			for i, err := range errs {
				if err != nil {
					e.t.Fatalf("goroutine %d: Subscribe: %v", i, err)
				}
			}
			e.publish(b, ch, []byte("to the last"))
			for i, in := range kept {
				e.wantMsg(in, []byte("to the last"), fmt.Sprintf("goroutine %d's last subscription", i))
			}
			return peak
		})
	})
	s.run(t, "Canceled", func(e *env) {
		b := e.bus()
		ctx, cancel := context.WithCancel(e.ctx)
		cancel()
		ch := e.channel("c")
		in := newInbox()
		stop, err := b.Subscribe(ctx, ch, in.handle, in.state)
		if !errors.Is(err, context.Canceled) {
			e.t.Errorf("Subscribe with a cancelled context: got %v; want an error matching context.Canceled", err)
			if err == nil && stop != nil {
				stop()
			}
		}
		if err := b.Publish(ctx, ch, []byte("m")); !errors.Is(err, context.Canceled) {
			e.t.Errorf("Publish with a cancelled context: got %v; want an error matching context.Canceled", err)
		}
	})
	s.run(t, "Close", func(e *env) {
		// A subscription's stop returns after Close, and nothing is
		// delivered through a closed store.
		st := e.store()
		b, ok := st.(cache.Bus)
		if !ok {
			e.t.Skip("the store does not implement cache.Bus")
		}
		ch := e.channel("c")
		in := newInbox()
		stop := e.subscribe(b, ch, in)
		e.publish(b, ch, []byte("before"))
		e.wantMsg(in, []byte("before"), "before Close")
		if err := st.Close(); err != nil {
			e.t.Fatalf("Close: %v", err)
		}
		done := make(chan struct{})
		go func() {
			stop()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(wakeWait):
			e.t.Fatalf("stop did not return within %v after Close", wakeWait)
		}
		if pub, ok := e.s.(cache.Bus); ok {
			e.publish(pub, ch, []byte("after"))
		}
		e.wantNoMsg(in, "through a closed store")
		if stop, err := b.Subscribe(e.ctx, ch, in.handle, in.state); err == nil {
			stop()
			e.t.Errorf("Subscribe after Close: got no error; want one (cache.ErrClosed)")
		}
	})
}
