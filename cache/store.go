package cache

import (
	"context"
	"time"
)

// Store is the contract a backend implements: bytes in, bytes out, keys
// already built. It is the driver side of the package, in the manner of
// database/sql/driver; users hold a [Cache] instead.
//
// Every method must be safe for concurrent use. Every method that takes a
// context must return an error wrapping ctx.Err() once the context is done,
// without doing the operation if it is done on entry. A context's deadline
// bounds the call. Its cancellation without a deadline is seen before the
// call and after it; a store whose client cannot abandon a call already
// waiting on the network says how long such a call may still last (the
// Redis store: until go-redis's ReadTimeout, 3s by default): give contexts
// a deadline, or the Cache a Timeout, to bound every call. Stores return
// their raw errors (or the sentinels named below); the Cache wraps them.
//
// Lost replies: a store never applies one call's write twice. A write whose
// command was sent but whose reply was lost (the connection failed) returns
// an error wrapping ErrUncertain: it may or may not have been applied. A
// store whose client sends such a write again by itself (go-redis does)
// must prevent it (redisstore sends writes as MULTI/EXEC transactions,
// which go-redis never sends twice).
//
// Ownership: a store copies what it is given; a slice it returns belongs to
// the caller, who may keep and change it (codec.Bytes relies on this).
//
// Empty calls: GetMulti, SetMulti and Delete with no keys return at once,
// without error and without a round trip.
//
// TTLs: a ttl of 0 means "no expiry"; a positive ttl means the key expires
// after it: never earlier than asked (a lock's lease relies on it), soon
// after it (within about twice the store's resolution: Memcached, whose
// clock ticks in whole seconds, adds a second to the rounded-up ttl), and
// never "never". The Cache never passes a negative ttl. A key that has expired must
// never be returned by any method.
//
// Size: a store that limits the size of an item (Memcached) refuses a write
// over the limit with ErrTooLarge before changing anything: the key keeps its
// old value.
//
// The conformance suite in package cachetest checks every clause below.
type Store interface {
	// Get returns the value of key, or ErrNotFound on a miss.
	Get(ctx context.Context, key string) ([]byte, error)

	// GetMulti returns one slice aligned with keys: the value of keys[i] at
	// index i, nil for a miss. A hit with an empty value is a non-nil empty
	// slice. It uses one round trip where the backend allows.
	GetMulti(ctx context.Context, keys []string) ([][]byte, error)

	// Set stores value under key with ttl, replacing both the value and the
	// ttl of an existing key.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error

	// SetMulti sets every item, each with its own ttl, pipelined where the
	// backend allows. It is not atomic: on error some items may be written.
	SetMulti(ctx context.Context, items []Item) error

	// Add stores value under key only if the key is absent, atomically.
	// It returns ErrExists when the key holds a value.
	Add(ctx context.Context, key string, value []byte, ttl time.Duration) error

	// Delete removes the keys and reports how many existed. A store that
	// cannot tell (Memcached deletes one key at a time) counts the deletes
	// that found their key.
	Delete(ctx context.Context, keys ...string) (int, error)

	// Exists reports whether key holds a value.
	Exists(ctx context.Context, key string) (bool, error)

	// Expire sets the ttl of an existing key (0 removes its expiry) and
	// reports whether the key existed.
	Expire(ctx context.Context, key string, ttl time.Duration) (bool, error)

	// TTL returns the remaining time to live of key, NoExpiration for a key
	// without expiry, ErrNotFound for a missing key, and ErrUnsupported where
	// the backend cannot tell.
	TTL(ctx context.Context, key string) (time.Duration, error)

	// Increment adds delta to the signed 64-bit decimal integer stored
	// under key, atomically, and returns the new value. A missing key is
	// created holding delta, without expiry; an existing key keeps its ttl.
	// A value that is not a decimal int64, or a result that would overflow,
	// gives ErrNotInteger and changes nothing. The value is stored as decimal
	// text, so a Get of the key returns that text. Only canonical decimal
	// text is an integer, as Redis reads it: an optional minus sign and
	// digits without leading zeros ("-12", "0"; not "+5", "05" or "-0").
	Increment(ctx context.Context, key string, delta int64) (int64, error)

	// Clear deletes exactly the keys that start with prefix, and never any
	// other key; the prefix "" deletes every key of the store. A store that
	// cannot enumerate keys returns ErrUnsupported for a non-empty prefix.
	Clear(ctx context.Context, prefix string) error

	// Gets returns the value of key with a token for CompareAndSwap. On a
	// miss it returns a nil value, the absent token ([AbsentToken]) and
	// ErrNotFound.
	Gets(ctx context.Context, key string) ([]byte, Token, error)

	// CompareAndSwap stores value with ttl only if key is unchanged since the
	// token was read by Gets: for a present token, the key still holds the
	// value that was read and was not written since (stores that compare
	// values rather than versions document it); for the absent token, the
	// key is still absent. Otherwise it returns ErrConflict and changes
	// nothing. It is atomic.
	CompareAndSwap(ctx context.Context, key string, value []byte, token Token, ttl time.Duration) error

	// DeleteIfEqual deletes key only if it holds exactly value, atomically,
	// and reports whether it deleted. It is how a lock holder releases its
	// lock. A store that implements Notifier wakes the watchers of key after
	// a successful delete.
	DeleteIfEqual(ctx context.Context, key string, value []byte) (bool, error)

	// ExtendIfEqual sets the ttl of key (0 removes the expiry) only if it
	// holds exactly value, atomically, and reports whether it did. It is how
	// a lock holder extends its lease.
	ExtendIfEqual(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)

	// Close releases what the store created (connections, goroutines). It
	// never closes a client the user passed in. Operations after Close may
	// return ErrClosed.
	Close() error
}

// NoExpiration is what Store.TTL and Cache.TTL return for a key that never
// expires.
const NoExpiration time.Duration = -1

// Item is one entry of Store.SetMulti.
type Item struct {
	Key   string
	Value []byte
	TTL   time.Duration // 0 = no expiry
}

// Token is the opaque compare-and-swap token returned by Store.Gets. Its zero
// value is the absent token: the key did not exist when it was read.
//
// Stores build tokens with [NewToken] from their own representation (a
// version, a CAS unique, the value read) and read it back with Bytes.
type Token struct {
	data    []byte
	present bool
}

// AbsentToken returns the token that means "the key was absent".
func AbsentToken() Token { return Token{} }

// NewToken returns a token for a key that was present, carrying the store's
// representation of its state. Only stores call it.
func NewToken(data []byte) Token { return Token{data: data, present: true} }

// Absent reports whether the token was read from a missing key.
func (t Token) Absent() bool { return !t.present }

// Bytes returns the store's representation, as given to NewToken.
func (t Token) Bytes() []byte { return t.data }

// Notifier is an optional interface of a Store that can wake the waiters of
// a key when it is released, within the process or across processes (Redis
// pub/sub). The lock package uses it; stores without it are polled.
type Notifier interface {
	// Watch returns a channel that receives a value after a successful
	// DeleteIfEqual of key by any client of the same backend, and a stop
	// function that ends the watch and must be called. Watch returns only
	// once the watch is in place, so a release after Watch returns is never
	// missed. Every release of key while the watch lasts wakes it (the
	// channel holds one pending wake-up); wake-ups may be spurious, and
	// expiries are not reported. After stop, the channel may be closed or
	// simply never receive again.
	Watch(ctx context.Context, key string) (<-chan struct{}, func(), error)
}

// Leaser is an optional interface of a Store that may evict keys before
// they expire to keep within a memory bound (an in-process store). A lease
// lock must not lose its key that way: it would let a second holder in.
type Leaser interface {
	// AddLease is Add for a lease lock: the key, once added with a
	// positive ttl, stays until it expires or is deleted, however full the
	// store. Writes to the key other than ExtendIfEqual and Expire make it
	// an ordinary key again. The lock package calls it, where a store has
	// it, instead of Add.
	AddLease(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// Fencer is an optional interface of a Store that can hand out fencing
// tokens: numbers that grow with every acquisition of a lock key, which a
// protected resource compares to reject the writes of a holder whose lease
// has passed to another.
type Fencer interface {
	// AddFenced is Add that, when it stores the value, also takes a
	// fencing token for key in the same atomic step and returns it: a
	// positive number greater than every token AddFenced returned before
	// for key, under the conditions below. Tokens need not be consecutive:
	// a store may skip numbers (one whose tokens follow a clock does).
	//
	// The promise survives Delete, expiry and eviction of key: whatever
	// the store keeps to make tokens grow is not the key itself. Where
	// that state can be lost (a Clear may remove it; a server may evict
	// it, lose it in a restart without persistence, or fail over to a
	// replica that has not received it), the store's documentation says
	// exactly what the promise depends on, such as a clock that has moved
	// forward past the lost tokens; a store that can promise nothing after
	// such a loss says so.
	//
	// It returns ErrExists, and stores nothing, when key holds a value. A
	// store that is also a Leaser keeps the key as AddLease does.
	AddFenced(ctx context.Context, key string, value []byte, ttl time.Duration) (int64, error)
}

// Checker is an optional interface of a Store that can inspect the settings
// of its server and its client. Services call it once at start, through
// Cache.Check, and log what it finds.
type Checker interface {
	// Check returns nil when it finds nothing unsafe; otherwise one
	// *SettingError (matching ErrUnsafeConfig) per finding, joined with
	// errors.Join. An error that is no finding (the server cannot be
	// reached) is returned as it is. Check changes nothing.
	Check(ctx context.Context) error
}

// Swapper is an optional interface of a Store that replaces a value only if
// the key holds exactly the bytes given, in one step: how memo ends a
// computation's lease with its value (the lease entry holds a unique
// token, so comparing bytes is exact). Stores without it get a fallback
// (Gets, compare, CompareAndSwap: two round trips, as atomic).
type Swapper interface {
	// SwapIfEqual stores value with ttl (0: no expiry) only if key holds
	// exactly old, atomically, and reports whether it did. A store that
	// implements Notifier then wakes the watchers of key, whether or not it
	// swapped: the lease the caller held ends either way, and its waiters
	// must look again.
	SwapIfEqual(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error)
}

// Bus is an optional interface of a Store that carries messages between
// the Caches of every process that shares the backend: the local tier's
// invalidations (see Options.Local). Redis carries them over pub/sub
// (sharded on a Cluster), the memory store within the process; a store
// without a bus (Memcached) can be given another store's (LocalOptions.Bus).
type Bus interface {
	// Publish sends msg on channel to every subscriber of channel on the
	// backend, in this process and in others, this caller's own
	// subscriptions included. It returns once the backend has taken the
	// message; delivery is at most once.
	Publish(ctx context.Context, channel string, msg []byte) error

	// Subscribe delivers the messages published on channel to handle, in
	// the order the backend received them, from one goroutine, until stop
	// is called. It returns once the subscription is in place: every
	// message published after it returns is delivered while the
	// connection lasts. When the subscription is interrupted (the
	// connection failed: messages may be lost), it calls state(false);
	// once it is in place again, state(true), before delivering what was
	// published since. handle and state must return quickly; stop waits
	// for a running call of either to return, and none is made after it.
	Subscribe(ctx context.Context, channel string, handle func(msg []byte), state func(connected bool)) (stop func(), err error)
}
