package cache

import (
	"context"
	"encoding/binary"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// LocalOptions configure the local tier of a Cache (Options.Local): a
// bounded in-process tier of decoded values in front of the store, kept
// coherent across processes by an invalidation bus. Every zero field means
// the default.
type LocalOptions struct {
	// MaxEntries bounds the number of values kept; default 10,000.
	MaxEntries int

	// TTL is how long a value stays in the local tier: default one
	// minute, and never longer than the cache's write TTL when it has one.
	// A value's logical expiry (memo's fail-safe) is honoured too. Without
	// a bus it is the only bound on how long another process's write goes
	// unseen.
	TTL time.Duration

	// MaxStaleness bounds how long local values are served while the bus is
	// disconnected (invalidations may be lost): after it, the local tier is
	// dropped and bypassed until the bus is back, and then cleared before it
	// is trusted again. Default: one second.
	MaxStaleness time.Duration

	// Clone, when set, is applied to every value the local tier hands out,
	// and to every value it keeps (a writer's, a reader's from the store),
	// so that callers may change what they get and what they wrote.
	// Without it, values are shared between callers and must be treated
	// as read-only.
	Clone func(any) any

	// Bus carries invalidations between the Caches of every process: by
	// default the store's own (cache.Bus: Redis pub/sub, in-process for
	// memory); give a store without one (Memcached) another store's here.
	// Without a bus, the local TTL is the only bound on staleness.
	Bus Bus

	// Channel is the bus channel of the cache's invalidations; default
	// "typedcache:inv:" followed by the namespace. Caches that share keys
	// (the same namespace over the same backend) must share the channel.
	Channel string
}

// Defaults of LocalOptions.
const (
	DefaultLocalMaxEntries   = 10_000
	DefaultLocalTTL          = time.Minute
	DefaultLocalMaxStaleness = time.Second
	DefaultInvalidationChan  = "typedcache:inv:"
)

// localStripes is the number of generation counters of a local tier: a
// fill is installed only if the counter of its key's stripe did not move
// since the fill read the store.
const localStripes = 4096

// local is the local tier of a Cache: decoded values by typed key (so that
// a hit builds no string), an index from store keys to typed keys for the
// invalidations, and per-stripe generations.
type local[K comparable, V any] struct {
	c       *otter.Cache[K, *localEntry[V]]
	ttl     time.Duration
	clone   func(any) any
	seed    maphash.Seed
	id      uint64 // this Cache's id in invalidation messages
	channel string

	mu    [localStripes / 64]sync.Mutex // guard index and gens, by stripe group
	gens  [localStripes]atomic.Uint64
	index [localStripes / 64]map[string]K

	bus          Bus
	maxStaleness time.Duration
	off          atomic.Bool // the bus has been down longer than MaxStaleness
	connected    atomic.Bool
	downSince    atomic.Int64 // Unix ns of the disconnect
	timerMu      sync.Mutex   // guards timer, stop, closed, subscribed, busDown
	timer        *time.Timer
	stop         func()
	closed       bool
	subscribed   bool          // Subscribe has returned
	busDown      bool          // the bus's last state call said disconnected
	done         chan struct{} // closed by close
	exited       chan struct{} // closed when subscribe returns
	base         context.Context
	cancelBase   context.CancelFunc

	clock          *otter.CoarseClock // otter's, so that a hit reads no clock
	obs            *observer          // the Cache\'s
	fills, dropped counter
}

type localEntry[V any] struct {
	v          V
	key        string    // store key
	expires    int64     // Unix ns
	written    time.Time // entry metadata, for memo
	freshUntil time.Time
	plain      bool
}

// Invalidation messages: kind, the writer's id, then the key (or prefix).
const (
	invKey    byte = 1 // drop one key
	invPrefix byte = 2 // drop every key with the prefix (Clear)
)

func newLocal[K comparable, V any](store Store, prefix string, writeTTL time.Duration, o *LocalOptions, obs *observer) (*local[K, V], error) {
	l := &local[K, V]{ttl: o.TTL, clone: o.Clone, seed: maphash.MakeSeed(), id: newID(), maxStaleness: o.MaxStaleness, obs: obs}
	if l.ttl <= 0 {
		l.ttl = DefaultLocalTTL
	}
	if writeTTL > 0 && writeTTL < l.ttl {
		l.ttl = writeTTL
	}
	if l.maxStaleness <= 0 {
		l.maxStaleness = DefaultLocalMaxStaleness
	}
	maxEntries := o.MaxEntries
	if maxEntries <= 0 {
		maxEntries = DefaultLocalMaxEntries
	}
	for i := range l.index {
		l.index[i] = make(map[string]K)
	}
	l.clock = otter.NewCoarseClock(time.Millisecond)
	c, err := otter.New(&otter.Options[K, *localEntry[V]]{
		MaximumSize: maxEntries,
		Clock:       l.clock,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[K, *localEntry[V]]) time.Duration {
			return time.Duration(max(e.Value.expires-e.SnapshotAtNano, 1))
		}),
		OnDeletion: func(e otter.DeletionEvent[K, *localEntry[V]]) {
			if e.Cause != otter.CauseReplacement {
				l.unindex(e.Value.key, e.Key)
			}
		},
	})
	if err != nil {
		l.clock.Stop()
		return nil, err
	}
	l.c = c
	l.bus = o.Bus
	if l.bus == nil {
		l.bus, _ = store.(Bus)
	}
	l.channel = o.Channel
	if l.channel == "" {
		l.channel = DefaultInvalidationChan + strings.TrimSuffix(prefix, ":")
	}
	if l.bus == nil {
		l.connected.Store(true)
		return l, nil
	}
	// Until the subscription is in place, the tier is off: reads go to the
	// store, and nothing is kept that an invalidation could miss.
	l.off.Store(true)
	l.done = make(chan struct{})
	l.exited = make(chan struct{})
	l.base, l.cancelBase = context.WithCancel(context.Background())
	go l.subscribe()
	return l, nil
}

// subscribe subscribes to the bus, trying again with backoff while it
// fails, until it succeeds or close is called. It is the tier's only
// goroutine of its own; close stops it.
func (l *local[K, V]) subscribe() {
	defer close(l.exited)
	pause := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(l.base, 10*time.Second)
		stop, err := l.bus.Subscribe(ctx, l.channel, l.receive, l.state)
		cancel()
		if err == nil {
			l.timerMu.Lock()
			closed := l.closed
			if !closed {
				l.stop = stop
				l.subscribed = true
				// Unless the bus went down since the subscription was
				// in place: then its state(true) turns the tier on.
				if !l.busDown {
					l.connect()
				}
			}
			l.timerMu.Unlock()
			if closed {
				stop()
			}
			return
		}
		select {
		case <-l.done:
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

func (l *local[K, V]) stripe(key string) int {
	return int(maphash.String(l.seed, key) % localStripes)
}

// get returns the local value of k, if the tier holds one and may serve it
// (Cache.Get writes it out).
func (l *local[K, V]) get(k K) (*localEntry[V], bool) {
	if l.off.Load() {
		return nil, false
	}
	return l.c.GetIfPresent(k)
}

// value returns what e hands out: the value, or its clone (Cache.Get
// writes it out).
func (l *local[K, V]) value(e *localEntry[V]) V {
	if l.clone == nil {
		return e.v
	}
	return l.cloned(e)
}

// cloned returns the clone of e's value.
func (l *local[K, V]) cloned(e *localEntry[V]) V {
	v, _ := l.clone(e.v).(V)
	return v
}

// generation returns the generation of key's stripe, to give to install
// after the store was read.
func (l *local[K, V]) generation(key string) uint64 {
	return l.gens[l.stripe(key)].Load()
}

// install keeps v for k (store key key) for the local TTL, capped by
// until when not zero, unless an invalidation of the key's stripe arrived
// since gen was taken, or the tier is off.
func (l *local[K, V]) install(k K, key string, gen uint64, e localEntry[V], until time.Time) {
	if l.off.Load() {
		return
	}
	now := time.Now()
	exp := now.Add(l.ttl)
	// The entry's expiry is on otter's coarse clock, Unix nanoseconds
	// like time's.
	if !until.IsZero() && until.Before(exp) {
		exp = until
	}
	if !exp.After(now) {
		return
	}
	e.key, e.expires = key, exp.UnixNano()
	s := l.stripe(key)
	mu := &l.mu[s/64]
	mu.Lock()
	defer mu.Unlock()
	if l.gens[s].Load() != gen {
		return // invalidated while the fill read the store
	}
	l.index[s/64][key] = k
	l.c.Set(k, &e)
	l.fills.Add(1)
}

// invalidate drops key (its typed key k when known) and moves its stripe's
// generation, so that no fill that read before it installs an older value.
func (l *local[K, V]) invalidate(key string) {
	s := l.stripe(key)
	mu := &l.mu[s/64]
	mu.Lock()
	l.gens[s].Add(1)
	k, ok := l.index[s/64][key]
	if ok {
		delete(l.index[s/64], key)
	}
	mu.Unlock()
	if ok {
		l.c.Invalidate(k)
		l.dropped.Add(1)
	}
}

// invalidatePrefix drops every key that starts with prefix ("" every key).
func (l *local[K, V]) invalidatePrefix(prefix string) {
	var drop []K
	for g := range l.mu {
		l.mu[g].Lock()
		for s := g * 64; s < (g+1)*64; s++ {
			l.gens[s].Add(1)
		}
		for key, k := range l.index[g] {
			if strings.HasPrefix(key, prefix) {
				delete(l.index[g], key)
				drop = append(drop, k)
			}
		}
		l.mu[g].Unlock()
	}
	for _, k := range drop {
		l.c.Invalidate(k)
	}
	l.dropped.Add(int64(len(drop)))
}

func (l *local[K, V]) unindex(key string, k K) {
	s := l.stripe(key)
	mu := &l.mu[s/64]
	mu.Lock()
	if cur, ok := l.index[s/64][key]; ok && cur == k {
		if e, ok := l.c.GetIfPresent(k); !ok || e.key != key {
			delete(l.index[s/64], key)
		}
	}
	mu.Unlock()
}

// publish sends the invalidation of key (kind invKey or invPrefix) to the
// other processes; the caller has invalidated it locally.
func (l *local[K, V]) publish(ctx context.Context, kind byte, key string) error {
	if l.bus == nil {
		return nil
	}
	msg := make([]byte, 9+len(key))
	msg[0] = kind
	binary.BigEndian.PutUint64(msg[1:], l.id)
	copy(msg[9:], key)
	var start time.Time
	if l.obs.obs != nil {
		start = time.Now()
	}
	err := l.bus.Publish(ctx, l.channel, msg)
	if l.obs.obs != nil {
		l.obs.emit(ctx, Event{Op: OpInvalidationSent, Result: writeResult(err), Key: key, Duration: time.Since(start), Err: err})
	}
	return err // the write's caller gets it (ErrNotInvalidated)
}

// receive handles an invalidation from the bus.
func (l *local[K, V]) receive(msg []byte) {
	if len(msg) < 9 {
		return
	}
	if binary.BigEndian.Uint64(msg[1:]) == l.id {
		return // this Cache's own: handled when it wrote
	}
	key := string(msg[9:])
	switch msg[0] {
	case invKey:
		l.invalidate(key)
	case invPrefix:
		l.invalidatePrefix(key)
	default:
		return
	}
	if l.obs.obs != nil {
		l.obs.emit(context.Background(), Event{Op: OpInvalidationReceived, Key: key})
	}
}

// state follows the bus's connection: while it is down, values are served
// at most MaxStaleness; when it is back, the tier is cleared first.
// Until Subscribe has returned, the tier stays off and state only records
// what the bus said.
func (l *local[K, V]) state(connected bool) {
	l.timerMu.Lock()
	defer l.timerMu.Unlock()
	l.busDown = !connected
	if l.closed || !l.subscribed {
		return
	}
	if connected {
		l.connect()
		return
	}
	if !l.connected.Swap(false) {
		return
	}
	l.downSince.Store(time.Now().UnixNano())
	l.timer = time.AfterFunc(l.maxStaleness, func() {
		l.timerMu.Lock()
		defer l.timerMu.Unlock()
		if l.connected.Load() || l.closed {
			return // reconnected meanwhile
		}
		l.off.Store(true)
		l.invalidatePrefix("")
		l.c.InvalidateAll()
	})
}

// connect turns the tier on, empty, once the bus is connected; timerMu
// is held.
func (l *local[K, V]) connect() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	// Invalidations may have been lost: start afresh, and refuse the
	// fills that read before now.
	l.invalidatePrefix("")
	l.c.InvalidateAll()
	l.connected.Store(true)
	l.off.Store(false)
}

// close stops the subscription, its retries and otter's goroutines.
func (l *local[K, V]) close() {
	l.timerMu.Lock()
	if l.closed {
		l.timerMu.Unlock()
		return
	}
	l.closed = true
	stop := l.stop
	if l.timer != nil {
		l.timer.Stop()
	}
	l.timerMu.Unlock()
	if l.done != nil {
		close(l.done)
		l.cancelBase()
		<-l.exited
	}
	if stop != nil {
		stop()
	}
	l.off.Store(true)
	l.c.StopAllGoroutines()
	l.clock.Stop()
}
