package redisstore

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/cache"
)

const (
	// retryMin and retryMax bound the pause of a subscriber between
	// attempts to read from a connection that keeps failing (the server is
	// down), so that it does not spin.
	retryMin = 50 * time.Millisecond
	retryMax = time.Second
)

// canceled is an ended context, given to the UNSUBSCRIBEs of stop
// functions: go-redis writes the command on the connection it has (an
// ended context sets no deadline on a write), but does not dial one for
// it. A subscriber without a connection needs no UNSUBSCRIBE: go-redis
// forgets the channel, and the next connection does not subscribe it.
var canceled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// subscriber is one go-redis PubSub, the connection go-redis keeps for it,
// and the goroutine (run) that reads it and dispatches what it reads to
// the listeners of each channel: Watch's watchers and the Bus's
// subscriptions alike.
//
// go-redis does the connection's work: it dials on first use, and after a
// failure it dials again and resubscribes every channel of the PubSub
// before any other command. The subscriber reads the connection with
// deadlines (the health check) and tracks what the server confirmed:
//
//   - A channel is live from a "subscribe" reply for it until the next
//     failure of the connection or "unsubscribe" reply for it. A new
//     listener of a live channel is confirmed at once: the channel has had
//     listeners since it went live, so no UNSUBSCRIBE was sent since.
//     Otherwise the listener sends a SUBSCRIBE of its own, and the first
//     "subscribe" reply for its channel read after it was added confirms
//     it. Replies come in order on one connection, so a message published
//     after the confirmation reaches the listener while the connection
//     lasts (but see the third point).
//   - When the connection fails (a read or a write fails, or the health
//     check finds it silent), every confirmed listener is interrupted
//     (down); go-redis's resubscription brings a "subscribe" reply for each
//     channel, which puts its listeners back in place (up) before any
//     message published since. A SUBSCRIBE or UNSUBSCRIBE that fails on
//     another goroutine makes go-redis replace the connection there, where
//     run may not see the failure: it is told (lostConn), takes it for a
//     failure, and has the connection replaced once more, so that a
//     resubscription follows the interruption.
//   - An "unsubscribe" reply read while the channel has confirmed
//     listeners puts them down too: a listener confirmed by the reply to
//     an older SUBSCRIBE, whose UNSUBSCRIBE the server then processed,
//     would otherwise miss what came before its own SUBSCRIBE; the reply
//     to that SUBSCRIBE, which follows, puts it back up. The server may
//     also unsubscribe a channel by itself (a Cluster moves the slot of a
//     sharded channel): a channel that stays down while the connection
//     works is resubscribed by reconnecting (see run).
//
// Two mutexes: mu guards the listeners and the channels' states and is
// never held across network I/O, so that dispatch, watches and stops never
// wait for the network; cmdMu serializes the commands that change the
// subscriptions (SUBSCRIBE, UNSUBSCRIBE), which may dial. A goroutine
// holding cmdMu may take mu; never the other way round. Listeners' bus
// callbacks are called with neither held.
type subscriber struct {
	ps      *redis.PubSub
	sharded bool   // SSUBSCRIBE (Cluster bus); SUBSCRIBE otherwise
	reload  func() // before a reconnection for a channel that stays down; may be nil
	health  time.Duration
	done    chan struct{} // closed by close
	exited  chan struct{} // closed when run returns

	// cmdMu guards subscribed, and is held while a SUBSCRIBE or an
	// UNSUBSCRIBE is sent.
	cmdMu      sync.Mutex
	subscribed map[string]struct{} // the channels of ps (go-redis resubscribes them)

	mu       sync.Mutex
	started  bool                     // run was started
	lost     bool                     // a command failed: the connection may have been replaced
	channels map[string]*channelState // channels with listeners
}

// channelState is what a subscriber knows of one channel.
type channelState struct {
	listeners map[*listener]struct{} // never empty
	live      bool                   // see subscriber
	since     time.Time              // when it stopped being live, or a SUBSCRIBE was last sent for it
}

// listener is one Watch, or one bus subscription, of a channel.
type listener struct {
	ready chan error // receives nil once confirmed, or the server's refusal; capacity 1

	// Guarded by the subscriber's mu.
	confirmed bool // the subscription was in place
	down      bool // interrupted since, and not yet in place again

	wake chan struct{} // a watch: its channel, of capacity 1
	bus  *busListener  // a bus subscription
}

// event is what happened to a listener.
type event int8

const (
	evMessage event = iota // a message on its channel
	evDown                 // interrupted: messages may be lost
	evUp                   // in place again
)

// notify handles e for l, with the subscriber's mu held: a watcher is
// woken at once; a bus call is appended to calls, to be run once mu is
// released.
func (l *listener) notify(e event, payload string, calls []busCall) []busCall {
	if l.bus == nil {
		select {
		case l.wake <- struct{}{}:
		default:
		}
		return calls
	}
	return append(calls, busCall{l: l.bus, e: e, payload: payload})
}

// busCall is one call of a bus subscription's callbacks.
type busCall struct {
	l       *busListener
	e       event
	payload string
}

func runCalls(calls []busCall) {
	for _, c := range calls {
		c.l.call(c.e, c.payload)
	}
}

// busListener holds the callbacks of a bus subscription.
type busListener struct {
	handle func(msg []byte)
	state  func(connected bool)

	mu      sync.Mutex // held during a call, and by stop
	stopped bool
}

// call makes one call, unless the subscription was stopped. Each message
// gets a slice of its own.
func (b *busListener) call(e event, payload string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return
	}
	switch e {
	case evMessage:
		b.handle([]byte(payload))
	case evDown:
		if b.state != nil {
			b.state(false)
		}
	case evUp:
		if b.state != nil {
			b.state(true)
		}
	}
}

// stop waits for a running call to return and prevents the next ones.
func (b *busListener) stop() {
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
}

func newSubscriber(ps *redis.PubSub, sharded bool, health time.Duration) *subscriber {
	return &subscriber{
		ps:         ps,
		sharded:    sharded,
		health:     health,
		done:       make(chan struct{}),
		exited:     make(chan struct{}),
		subscribed: make(map[string]struct{}),
		channels:   make(map[string]*channelState),
	}
}

func (sub *subscriber) isDone() bool {
	select {
	case <-sub.done:
		return true
	default:
		return false
	}
}

// listen adds l as a listener of channel ch, and waits until the server
// has confirmed the subscription. It returns the function that removes l.
func (sub *subscriber) listen(ctx context.Context, ch string, l *listener) (func(), error) {
	l.ready = make(chan error, 1)
	sub.mu.Lock()
	if sub.isDone() {
		sub.mu.Unlock()
		return nil, cache.ErrClosed
	}
	st := sub.channels[ch]
	if st == nil {
		st = &channelState{listeners: make(map[*listener]struct{}), since: time.Now()}
		sub.channels[ch] = st
	}
	st.listeners[l] = struct{}{}
	// A live channel has had listeners since the server confirmed it, so
	// no UNSUBSCRIBE was sent since: the listener is in place.
	live := st.live
	l.confirmed = live
	sub.mu.Unlock()

	stop := sync.OnceFunc(func() { sub.remove(ch, l) })
	if live {
		return stop, nil
	}
	if err := sub.subscribe(ctx, ch, l); err != nil {
		stop()
		if sub.isDone() {
			return nil, cache.ErrClosed
		}
		return nil, fail(ctx, err)
	}
	select {
	case err := <-l.ready:
		if err != nil {
			stop()
			return nil, err
		}
		return stop, nil
	case <-ctx.Done():
		stop()
		return nil, ctx.Err()
	case <-sub.done:
		stop()
		return nil, cache.ErrClosed
	}
}

// subscribe sends a SUBSCRIBE of ch for the listener l, unless l was
// confirmed meanwhile and ch is subscribed. A listener that is not
// confirmed sends its own, even if ch is subscribed: the reply to it is
// what confirms the listener, whatever came before. It starts run with
// the first subscription.
func (sub *subscriber) subscribe(ctx context.Context, ch string, l *listener) error {
	sub.cmdMu.Lock()
	defer sub.cmdMu.Unlock()
	_, have := sub.subscribed[ch]
	sub.mu.Lock()
	done := sub.isDone()
	need := !have || !l.confirmed
	if st := sub.channels[ch]; need && st != nil && !st.live {
		st.since = time.Now()
	}
	sub.mu.Unlock()
	if done {
		return cache.ErrClosed
	}
	if !need {
		return nil
	}
	var err error
	if sub.sharded {
		err = sub.ps.SSubscribe(ctx, ch)
	} else {
		err = sub.ps.Subscribe(ctx, ch)
	}
	// go-redis keeps ch in its set even when the command could not be
	// sent, to subscribe it on its next connection: so does subscribed,
	// until the stop of the last listener of ch takes it out.
	sub.subscribed[ch] = struct{}{}
	if err != nil {
		sub.lostConn()
		return err
	}
	sub.start()
	return nil
}

// remove ends a listener, and unsubscribes its channel if it was the last.
func (sub *subscriber) remove(ch string, l *listener) {
	last := false
	sub.mu.Lock()
	if st := sub.channels[ch]; st != nil {
		delete(st.listeners, l)
		if len(st.listeners) == 0 {
			delete(sub.channels, ch)
			last = true
		}
	}
	sub.mu.Unlock()
	if l.bus != nil {
		l.bus.stop()
	}
	if last {
		// Only the last stop sends a command: the others wait for
		// neither the network nor cmdMu.
		sub.unsubscribeIdle(ch)
	}
}

// unsubscribeIdle sends an UNSUBSCRIBE of ch if ch has no listener and is
// subscribed. Every new listener that is not confirmed at once, and every
// removal of a channel's last listener, is followed by a SUBSCRIBE or an
// UNSUBSCRIBE decision under cmdMu, each made on the listeners of the
// time, so the last command sent for a channel always matches its latest
// listeners, however the changes and the commands interleave.
func (sub *subscriber) unsubscribeIdle(ch string) {
	sub.cmdMu.Lock()
	defer sub.cmdMu.Unlock()
	sub.mu.Lock()
	_, want := sub.channels[ch]
	done := sub.isDone()
	sub.mu.Unlock()
	if _, have := sub.subscribed[ch]; want || !have || done {
		return
	}
	delete(sub.subscribed, ch)
	// go-redis forgets ch even when the command cannot be sent, so a new
	// connection will not subscribe it.
	var err error
	if sub.sharded {
		err = sub.ps.SUnsubscribe(canceled, ch)
	} else {
		err = sub.ps.Unsubscribe(canceled, ch)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		sub.lostConn()
	}
}

// lostConn records that a command on the connection failed: go-redis then
// closes the connection and makes another, which run may read without
// seeing an error. run takes it as a failure of the connection.
func (sub *subscriber) lostConn() {
	sub.mu.Lock()
	sub.lost = true
	sub.mu.Unlock()
}

// start starts run, once, unless the subscriber is closed. run starts only
// once a channel is subscribed, so that it never dials a connection with
// nothing on it: until then, the only connection attempts are those of
// listen, bounded by its context.
func (sub *subscriber) start() {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.started || sub.isDone() {
		return
	}
	sub.started = true
	sub.lost = false // the connection is the one just made
	go func() {
		defer close(sub.exited)
		sub.run()
	}()
}

// run reads the subscriber's connection until close, and dispatches what
// it reads.
//
// The health check: a read waits for at most one interval; after a
// silent interval run sends a PING, and reads the next reply with a
// deadline one interval away. go-redis takes the end of that deadline for
// a failure of the connection, closes it and makes another (resubscribing
// its channels), as it does after any other failure.
//
// A channel that has listeners and stays down for two intervals while the
// connection works (the server unsubscribed it by itself, or refused its
// SUBSCRIBE) is resubscribed the same way: run reads with a deadline that
// has passed, which makes go-redis replace the connection. For a sharded
// subscriber, reload first asks the Cluster client to reload the slot
// map, so that a later attempt, if not this one, reaches the node that
// serves the channel's slot now.
func (sub *subscriber) run() {
	var (
		pinged  bool // a health PING is unanswered
		force   bool // make go-redis replace the connection
		pause   time.Duration
		checked = time.Now() // the last look for channels that stay down
	)
	for {
		var (
			msg any
			err error
		)
		plain := !force && !pinged // a read whose timeout go-redis allows
		switch {
		case force:
			msg, err = sub.receiveBy(time.Now())
		case pinged:
			msg, err = sub.receiveBy(time.Now().Add(sub.health))
		default:
			msg, err = sub.receiveTimeout()
		}
		if sub.isDone() {
			return
		}
		sub.mu.Lock()
		lost := sub.lost
		sub.lost = false
		sub.mu.Unlock()
		if lost {
			// Another goroutine's command failed and go-redis replaced
			// the connection, which this read may have read from already:
			// replace it once more, so that a resubscription follows the
			// interruption.
			sub.interrupted()
			force = true
		}
		if err != nil {
			var rerr redis.Error
			switch {
			case errors.As(err, &rerr):
				// The server refused a command (a SUBSCRIBE): the
				// listeners that wait for a confirmation get the error.
				// The connection is fine, unless the error ended the
				// handshake of a new one: pause as after a failure.
				sub.refused(err)
			case plain && isTimeout(err) && !isDial(err):
				// A silent interval; go-redis kept the connection.
				if force {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), sub.health)
				err = sub.ps.Ping(ctx)
				cancel()
				if err == nil {
					pinged = true
					continue
				}
				// go-redis replaced the connection it could not write to.
				sub.interrupted()
			default:
				// The connection failed, and go-redis is replacing it.
				sub.interrupted()
				pinged, force = false, false
			}
			pause = min(max(2*pause, retryMin), retryMax)
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-sub.done:
				t.Stop()
				return
			}
			continue
		}
		pinged, pause = false, 0
		sub.dispatch(msg)
		if !force && time.Since(checked) >= sub.health {
			checked = time.Now()
			if force = sub.stuck(2 * sub.health); force && sub.reload != nil {
				sub.reload()
			}
		}
	}
}

// receiveTimeout reads the next reply, waiting at most one interval; a
// timeout leaves the connection in place. When the read fails, go-redis
// replaces the connection before it returns the error (a dial, a
// handshake and the resubscription): the context bounds that to another
// interval, where go-redis would wait for its ReadTimeout or DialTimeout
// on a server that accepts and does not answer, and the failure would be
// reported that much later.
func (sub *subscriber) receiveTimeout() (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*sub.health)
	defer cancel()
	return sub.ps.ReceiveTimeout(ctx, sub.health)
}

// receiveBy reads the next reply with a deadline at t. go-redis takes its
// end for a failure of the connection.
func (sub *subscriber) receiveBy(t time.Time) (any, error) {
	ctx, cancel := context.WithDeadline(context.Background(), t)
	defer cancel()
	return sub.ps.Receive(ctx)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isDial reports whether err is a failure to connect: a connection
// failure, retried with backoff, even when it is a timeout.
func isDial(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// dispatch handles one reply read from the connection.
func (sub *subscriber) dispatch(msg any) {
	var calls []busCall
	sub.mu.Lock()
	switch m := msg.(type) {
	case *redis.Message:
		if st := sub.channels[m.Channel]; st != nil {
			for l := range st.listeners {
				if l.confirmed && !l.down {
					calls = l.notify(evMessage, m.Payload, calls)
				}
			}
		}
	case *redis.Subscription:
		st := sub.channels[m.Channel]
		if st == nil {
			break
		}
		switch m.Kind {
		case "subscribe", "ssubscribe":
			st.live = true
			for l := range st.listeners {
				switch {
				case !l.confirmed:
					l.confirmed = true
					select {
					case l.ready <- nil:
					default:
					}
				case l.down:
					l.down = false
					calls = l.notify(evUp, "", calls)
				}
			}
		case "unsubscribe", "sunsubscribe":
			calls = st.lost(time.Now(), calls)
		}
	}
	sub.mu.Unlock()
	runCalls(calls)
}

// interrupted handles a failure of the connection: every confirmed
// listener is down until go-redis has resubscribed its channel.
func (sub *subscriber) interrupted() {
	var calls []busCall
	now := time.Now()
	sub.mu.Lock()
	for _, st := range sub.channels {
		calls = st.lost(now, calls)
	}
	sub.mu.Unlock()
	runCalls(calls)
}

// lost marks the channel unsubscribed since now, and every confirmed
// listener of it down, appending the notifications to calls. The caller
// holds sub.mu.
func (st *channelState) lost(now time.Time, calls []busCall) []busCall {
	st.live, st.since = false, now
	for l := range st.listeners {
		if l.confirmed && !l.down {
			l.down = true
			calls = l.notify(evDown, "", calls)
		}
	}
	return calls
}

// refused gives the server's error reply to every listener that waits for
// its confirmation: which of their commands it answers is unknown.
func (sub *subscriber) refused(err error) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for _, st := range sub.channels {
		for l := range st.listeners {
			if !l.confirmed {
				select {
				case l.ready <- err:
				default:
				}
			}
		}
	}
}

// stuck reports whether a channel with listeners has not been live for
// longer than limit.
func (sub *subscriber) stuck(limit time.Duration) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for _, st := range sub.channels {
		if !st.live && time.Since(st.since) > limit {
			return true
		}
	}
	return false
}

// close stops the subscriber: its connection is closed, which ends run,
// and close waits for run to return. Every watcher is woken, and every bus
// subscription in place gets state(false).
func (sub *subscriber) close() {
	sub.mu.Lock()
	if sub.isDone() {
		sub.mu.Unlock()
		return
	}
	close(sub.done)
	started := sub.started
	sub.mu.Unlock()
	_ = sub.ps.Close()
	if started {
		<-sub.exited
	}
	var calls []busCall
	sub.mu.Lock()
	for _, st := range sub.channels {
		for l := range st.listeners {
			if l.bus == nil || (l.confirmed && !l.down) {
				l.down = true
				calls = l.notify(evDown, "", calls)
			}
		}
	}
	sub.mu.Unlock()
	runCalls(calls)
}
