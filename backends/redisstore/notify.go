package redisstore

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/cache"
)

const (
	// healthInterval is how long a subscriber's connection may be silent
	// before the subscriber pings the server; after a second silent
	// interval the connection is taken for dead and replaced.
	healthInterval = 15 * time.Second

	// unsubscribeTimeout bounds the UNSUBSCRIBE sent by a watch's stop
	// function, which has no context of its own, and the making of a
	// connection that replaces a silent one.
	unsubscribeTimeout = 5 * time.Second

	// retryMin and retryMax bound the pause of a subscriber between
	// attempts to read from a connection that keeps failing (the server is
	// down), so that it does not spin.
	retryMin = 50 * time.Millisecond
	retryMax = time.Second

	// pingPrefix starts the payload of the PINGs Watch uses as a barrier.
	pingPrefix = "typedcache-watch-"
)

// Watch returns a channel that receives a value after a successful
// DeleteIfEqual of key by any client of the same Redis deployment, and a
// stop function that ends the watch and must be called.
//
// DeleteIfEqual publishes on the key's channel (Channel: the channel prefix
// followed by the key) in the same script that deletes the key. Watch
// subscribes to that channel on a pub/sub connection that the store shares
// between all its watches: one connection, made by the first Watch, and one
// goroutine reading it, started once a subscription is in place; both are
// stopped by Close (on a Ring, one of each per shard, as a Ring publishes
// on the shard of the key). A channel is subscribed while at least one
// watch of its key is active: the stop function of the last one sends an
// UNSUBSCRIBE, which may have to reconnect, but holds up neither the
// wake-ups nor the stops that send no command.
//
// Watch returns only once the server has confirmed the subscription (it
// sends a PING after the SUBSCRIBE on the same connection and waits for the
// reply), so a release published after Watch returns is never missed while
// the connection lasts. When the connection fails, go-redis reconnects and
// resubscribes; since releases may have been lost meanwhile, every watcher
// is woken. Wake-ups may therefore be spurious. Expiries are not reported.
//
// Watch returns when ctx ends, with an error matching ctx.Err(), if the
// client was created with ContextTimeoutEnabled (see the package
// documentation). It may wait past ctx in two cases: while the shared
// connection is being re-established (for that attempt, which the client's
// DialTimeout and ReadTimeout bound), and behind another watch's SUBSCRIBE
// or UNSUBSCRIBE on the shared connection, which are sent one at a time
// (an UNSUBSCRIBE is bounded by 5s).
//
// On a Cluster, the classic PUBLISH of the script is propagated to every
// node, so the one connection may be to any node.
func (s *Store) Watch(ctx context.Context, key string) (<-chan struct{}, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	sub, err := s.notify.subscriber(key)
	if err != nil {
		return nil, nil, fail(ctx, err)
	}
	return sub.watch(ctx, s.Channel(key))
}

// pubSubSource is what a subscriber subscribes through: the store's client,
// or on a Ring the client of one shard.
type pubSubSource interface {
	Subscribe(ctx context.Context, channels ...string) *redis.PubSub
}

// notifier holds the store's subscribers, created lazily.
type notifier struct {
	s      *Store
	health time.Duration // healthInterval, shorter in tests
	mu     sync.Mutex
	closed bool
	subs   map[*redis.Client]*subscriber // keyed by Ring shard; nil otherwise
}

func (n *notifier) init(s *Store) {
	n.s = s
	n.health = healthInterval
	n.subs = make(map[*redis.Client]*subscriber)
}

// subscriber returns the subscriber that sees the releases of key, creating
// it on first use. Its goroutine starts with its first subscription.
func (n *notifier) subscriber(key string) (*subscriber, error) {
	var (
		src   pubSubSource = n.s.client
		shard *redis.Client
	)
	if r, ok := n.s.client.(*redis.Ring); ok {
		c, err := r.GetShardClientForKey(key)
		if err != nil {
			return nil, err
		}
		src, shard = c, c
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, cache.ErrClosed
	}
	if sub := n.subs[shard]; sub != nil {
		return sub, nil
	}
	sub := &subscriber{
		src:        src,
		health:     n.health,
		ps:         src.Subscribe(context.Background()), // no channel yet: no I/O
		done:       make(chan struct{}),
		exited:     make(chan struct{}),
		channels:   make(map[string]map[*watcher]struct{}),
		pings:      make(map[string]chan bool),
		subscribed: make(map[string]struct{}),
	}
	n.subs[shard] = sub
	return sub, nil
}

// close stops every subscriber and waits for their goroutines.
func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	subs := make([]*subscriber, 0, len(n.subs))
	for _, sub := range n.subs {
		subs = append(subs, sub)
	}
	n.mu.Unlock()
	for _, sub := range subs {
		sub.close()
	}
}

// watcher is one Watch: its channel has room for one wake-up.
type watcher struct{ c chan struct{} }

func (w *watcher) wake() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// subscriber is one pub/sub connection and the goroutine (run) that reads
// it and dispatches its messages.
//
// Two mutexes: mu guards the watchers and the connection's identity and is
// never held across network I/O, so that run's dispatch, other watches and
// stops never wait for the network; cmdMu serializes the commands that
// change the connection's subscriptions (SUBSCRIBE, UNSUBSCRIBE, and the
// replacement of the connection), which may dial. A goroutine holding cmdMu
// may take mu; never the other way round.
type subscriber struct {
	src    pubSubSource
	health time.Duration
	done   chan struct{} // closed by close
	exited chan struct{} // closed when run returns

	// cmdMu guards subscribed, and is held while a SUBSCRIBE or an
	// UNSUBSCRIBE is sent and while the connection is replaced.
	cmdMu      sync.Mutex
	subscribed map[string]struct{} // channels subscribed on ps (go-redis resubscribes them)

	mu       sync.Mutex
	ps       *redis.PubSub
	started  bool                             // run was started
	channels map[string]map[*watcher]struct{} // channel -> its watchers, never empty
	pings    map[string]chan bool             // barrier PING payload -> its waiter
	seq      uint64                           // last PING payload number
}

func (sub *subscriber) isDone() bool {
	select {
	case <-sub.done:
		return true
	default:
		return false
	}
}

// watch adds a watcher of channel ch and waits until the subscription is in
// place.
func (sub *subscriber) watch(ctx context.Context, ch string) (<-chan struct{}, func(), error) {
	w := &watcher{c: make(chan struct{}, 1)}
	sub.mu.Lock()
	if sub.isDone() {
		sub.mu.Unlock()
		return nil, nil, cache.ErrClosed
	}
	set := sub.channels[ch]
	if set == nil {
		set = make(map[*watcher]struct{})
		sub.channels[ch] = set
	}
	set[w] = struct{}{}
	sub.mu.Unlock()

	stop := sync.OnceFunc(func() { sub.remove(ch, w) })
	if err := sub.sync(ctx, ch); err != nil {
		stop()
		if sub.isDone() {
			return nil, nil, cache.ErrClosed
		}
		return nil, nil, fail(ctx, err)
	}
	if err := sub.barrier(ctx); err != nil {
		stop()
		return nil, nil, err
	}
	return w.c, stop, nil
}

// remove ends a watch, and unsubscribes its channel if it was the last.
func (sub *subscriber) remove(ch string, w *watcher) {
	sub.mu.Lock()
	set := sub.channels[ch]
	delete(set, w)
	last := set != nil && len(set) == 0
	if last {
		delete(sub.channels, ch)
	}
	sub.mu.Unlock()
	if !last {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), unsubscribeTimeout)
	defer cancel()
	_ = sub.sync(ctx, ch)
}

// sync makes the subscription of channel ch on the connection match its
// watchers: it subscribes a channel that has watchers and is not
// subscribed, and unsubscribes one that has none and is. Every change of a
// channel's watchers is followed by a sync of the channel, and each sync
// reads the watchers after the syncs before it have sent their commands, so
// the last command sent for a channel always reflects its latest watchers,
// however the changes and the commands interleave. It starts run with the
// first subscription.
func (sub *subscriber) sync(ctx context.Context, ch string) error {
	sub.cmdMu.Lock()
	defer sub.cmdMu.Unlock()
	sub.mu.Lock()
	want := len(sub.channels[ch]) > 0
	done := sub.isDone()
	ps := sub.ps
	sub.mu.Unlock()
	if done {
		return cache.ErrClosed
	}
	_, have := sub.subscribed[ch]
	switch {
	case want && !have:
		if err := ps.Subscribe(ctx, ch); err != nil {
			// go-redis keeps the channel in its set even when SUBSCRIBE
			// could not be sent, to send it on reconnection: remove it.
			// The context is cancelled so that this does not dial again.
			cctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = ps.Unsubscribe(cctx, ch)
			return err
		}
		sub.subscribed[ch] = struct{}{}
		sub.start()
	case !want && have:
		delete(sub.subscribed, ch)
		// An error leaves the channel out of go-redis's set all the same,
		// so a new connection will not subscribe to it.
		_ = ps.Unsubscribe(ctx, ch)
	}
	return nil
}

// start starts run, once, unless the subscriber is closed. run starts only
// once a channel is subscribed, so that it never dials a connection with
// nothing on it: until then, the only connection attempts are those of
// Watch, bounded by its context.
func (sub *subscriber) start() {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.started || sub.isDone() {
		return
	}
	sub.started = true
	go func() {
		defer close(sub.exited)
		sub.run()
	}()
}

// barrier returns once the server has processed every command sent on the
// subscriber's connection before it was called: it sends a PING with a
// unique payload and waits for run to see the reply. A reply on the same
// connection proves that the SUBSCRIBEs sent before were processed; a new
// connection resubscribes every channel before anything else.
func (sub *subscriber) barrier(ctx context.Context) error {
	for {
		sub.mu.Lock()
		if sub.isDone() {
			sub.mu.Unlock()
			return cache.ErrClosed
		}
		sub.seq++
		tok := pingPrefix + strconv.FormatUint(sub.seq, 10)
		reply := make(chan bool, 1)
		sub.pings[tok] = reply
		ps := sub.ps
		sub.mu.Unlock()

		if err := ps.Ping(ctx, tok); err != nil {
			sub.mu.Lock()
			delete(sub.pings, tok)
			replaced := sub.ps != ps && !sub.isDone()
			sub.mu.Unlock()
			if replaced && ctx.Err() == nil {
				continue // the connection was replaced under us: ping the new one
			}
			return fail(ctx, err)
		}
		select {
		case ok := <-reply:
			if ok {
				return nil
			}
			// The connection failed before the reply came: ping again,
			// on the connection go-redis made (and resubscribed) since.
		case <-ctx.Done():
			sub.mu.Lock()
			delete(sub.pings, tok)
			sub.mu.Unlock()
			return ctx.Err()
		case <-sub.done:
			return cache.ErrClosed
		}
	}
}

// run reads the subscriber's connection until close: it wakes the watchers
// of each message's channel, answers the barrier PINGs, pings a silent
// connection and replaces one that does not answer.
func (sub *subscriber) run() {
	ctx := context.Background()
	pinged := false
	broken := false // the connection failed; go-redis has not yet resubscribed
	pause := time.Duration(0)
	for {
		sub.mu.Lock()
		ps := sub.ps
		sub.mu.Unlock()
		msg, err := ps.ReceiveTimeout(ctx, sub.health)
		if sub.isDone() {
			return
		}
		if err != nil {
			if isTimeout(err) && !isDial(err) {
				if !pinged {
					pinged = true
					_ = ps.Ping(ctx)
				} else {
					pinged = false
					sub.replace(ps)
				}
				continue
			}
			// The connection failed: go-redis reconnects and resubscribes
			// on a later read, but messages may have been lost, now and
			// until it has.
			sub.interrupted()
			broken = true
			pause = min(max(2*pause, retryMin), retryMax)
			select {
			case <-time.After(pause):
			case <-sub.done:
				return
			}
			continue
		}
		pinged, pause = false, 0
		if broken {
			// The first read on the new connection: releases published
			// since the last wake-up were missed. Wake the watchers again.
			broken = false
			sub.interrupted()
		}
		switch m := msg.(type) {
		case *redis.Message:
			sub.dispatch(m.Channel)
		case *redis.Pong:
			sub.confirm(m.Payload)
		}
	}
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

// dispatch wakes the watchers of channel ch.
func (sub *subscriber) dispatch(ch string) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for w := range sub.channels[ch] {
		w.wake()
	}
}

// confirm answers the barrier waiting for the PING with payload tok.
func (sub *subscriber) confirm(tok string) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if reply, ok := sub.pings[tok]; ok {
		reply <- true
		delete(sub.pings, tok)
	}
}

// interrupted handles a failed connection: every watcher is woken (a
// release may have been missed) and every barrier pings again.
func (sub *subscriber) interrupted() {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.interruptedLocked()
}

func (sub *subscriber) interruptedLocked() {
	for tok, reply := range sub.pings {
		reply <- false
		delete(sub.pings, tok)
	}
	for _, set := range sub.channels {
		for w := range set {
			w.wake()
		}
	}
}

// replace swaps a connection that stopped answering for a new one,
// subscribed to the same channels. The new connection is made before it is
// published to the other methods, under cmdMu but not mu.
func (sub *subscriber) replace(old *redis.PubSub) {
	sub.cmdMu.Lock()
	defer sub.cmdMu.Unlock()
	sub.mu.Lock()
	stale := sub.isDone() || sub.ps != old
	sub.mu.Unlock()
	if stale {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), unsubscribeTimeout)
	defer cancel()
	ps := sub.src.Subscribe(ctx)
	if len(sub.subscribed) > 0 {
		chans := make([]string, 0, len(sub.subscribed))
		for ch := range sub.subscribed {
			chans = append(chans, ch)
		}
		// On failure go-redis keeps the channels and subscribes them when
		// run's next read connects.
		_ = ps.Subscribe(ctx, chans...)
	}
	sub.mu.Lock()
	if sub.isDone() {
		sub.mu.Unlock()
		_ = ps.Close()
		return
	}
	sub.ps = ps
	sub.interruptedLocked()
	sub.mu.Unlock()
	_ = old.Close()
}

// close stops the subscriber: every watcher is woken, its connection is
// closed, which ends run, and close waits for run to return.
func (sub *subscriber) close() {
	sub.mu.Lock()
	if sub.isDone() {
		sub.mu.Unlock()
		return
	}
	close(sub.done)
	for _, set := range sub.channels {
		for w := range set {
			w.wake()
		}
	}
	ps, started := sub.ps, sub.started
	sub.mu.Unlock()
	_ = ps.Close()
	if started {
		<-sub.exited
	}
}
