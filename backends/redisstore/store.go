package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/cache"
)

// Compile-time checks of the interfaces Store implements.
var (
	_ cache.Store    = (*Store)(nil)
	_ cache.Notifier = (*Store)(nil)
	_ cache.Fencer   = (*Store)(nil)
	_ cache.Swapper  = (*Store)(nil)
	_ cache.Bus      = (*Store)(nil)
)

// DefaultChannelPrefix is the prefix of the pub/sub channel on which the
// release of a key is published: the channel of key k is
// DefaultChannelPrefix + k, unless Options.ChannelPrefix says otherwise.
const DefaultChannelPrefix = "typedcache:release:"

// DefaultHealthCheckInterval is the default of Options.HealthCheckInterval:
// go-redis's own for the health check of its PubSub channels.
const DefaultHealthCheckInterval = 3 * time.Second

// Options configure a Store. A nil *Options, and every zero field, means the
// default.
type Options struct {
	// ChannelPrefix is the prefix of the pub/sub channel of each key, on
	// which DeleteIfEqual publishes a release and Watch listens. Every
	// process sharing the keys must use the same prefix. The default is
	// DefaultChannelPrefix.
	ChannelPrefix string

	// HealthCheckInterval is how long the store's pub/sub connections (see
	// Watch and Subscribe) may be silent before the store sends a PING on
	// them; one that then stays silent for another interval is taken for
	// broken: go-redis replaces it, and subscribers are told. A connection
	// that fails (reset, closed) is reported once go-redis has tried to
	// replace it, which the store bounds to two intervals when the client
	// has ContextTimeoutEnabled (see Check); without it, a server that
	// accepts connections and does not answer delays the report by up to
	// the client's ReadTimeout. The default is DefaultHealthCheckInterval.
	HealthCheckInterval time.Duration
}

// topology says how multi-key operations are sent.
type topology int

const (
	// single is one server (*redis.Client, including a failover client):
	// multi-key commands such as MGET work on any keys.
	single topology = iota
	// cluster is a *redis.ClusterClient: keys of one command must share a
	// slot, so multi-key operations are pipelines of one-key commands, which
	// go-redis sends as one pipeline per master.
	cluster
	// ring is a *redis.Ring: keys are sharded by the client, so multi-key
	// operations are pipelines of one-key commands, which go-redis sends as
	// one pipeline per shard.
	ring
	// other is any other UniversalClient: treated like a cluster, which is
	// correct for every kind of client.
	other
)

// Store is a cache.Store over a go-redis client. It is safe for concurrent
// use. Create it with New.
type Store struct {
	client redis.UniversalClient
	topo   topology
	prefix string // pub/sub channel prefix
	hub    hub    // the pub/sub subscribers of Watch and Subscribe

	// noBatchScript is set once a Cluster's servers refused
	// scripts/batch.lua (before Redis 7): multi-key writes then go in one
	// transaction per hash slot.
	noBatchScript atomic.Bool
}

// New returns a Store over client, which may be a *redis.Client, a
// *redis.ClusterClient, a *redis.Ring or a failover client (see the package
// documentation for how each is used). Create the client with
// ContextTimeoutEnabled: true, so that the deadline of each call's context
// (a Cache's Timeout) bounds the call (see Timeouts in the package
// documentation). The store never closes client: Close only stops what the
// store itself created. New panics if client is nil.
func New(client redis.UniversalClient, opts *Options) *Store {
	if client == nil {
		panic("redisstore: New with a nil client")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.ChannelPrefix == "" {
		o.ChannelPrefix = DefaultChannelPrefix
	}
	if o.HealthCheckInterval <= 0 {
		o.HealthCheckInterval = DefaultHealthCheckInterval
	}
	s := &Store{client: client, prefix: o.ChannelPrefix}
	switch client.(type) {
	case *redis.Client:
		s.topo = single
	case *redis.ClusterClient:
		s.topo = cluster
	case *redis.Ring:
		s.topo = ring
	default:
		s.topo = other
	}
	s.hub.init(s, o.HealthCheckInterval)
	return s
}

// Client returns the client the store was created with.
func (s *Store) Client() redis.UniversalClient { return s.client }

// Channel returns the pub/sub channel on which the release of key is
// published: the channel prefix followed by key.
func (s *Store) Channel(key string) string { return s.prefix + key }

// Close stops the store's pub/sub connections and their goroutines (see
// Watch and Subscribe), wakes every watcher and calls state(false) for
// every bus subscription in place. It does not close the client passed to
// New. Watch and Subscribe after Close return cache.ErrClosed; the other
// operations, Publish included, keep working as long as the client is
// open.
func (s *Store) Close() error {
	s.hub.close()
	return nil
}

// fail returns err for a failed operation, joined with ctx.Err() when the
// context ended, so that errors.Is(err, context.DeadlineExceeded) holds even
// when go-redis reports the deadline as a network timeout.
func fail(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return errors.Join(err, cerr)
	}
	return err
}

// maxTTL is the longest ttl the store sends: about 292 years.
const maxTTL = time.Duration(math.MaxInt64) - time.Millisecond

// roundTTL rounds a positive ttl up to whole milliseconds, Redis's
// resolution, so that a key never expires earlier than asked and a
// sub-millisecond ttl never becomes 0 (no expiry).
func roundTTL(ttl time.Duration) time.Duration {
	ttl = min(ttl, maxTTL) // no overflow when rounding up
	if r := ttl % time.Millisecond; r != 0 {
		ttl += time.Millisecond - r
	}
	return ttl
}

// ttlMillis returns ttl as a decimal count of milliseconds, rounded up; "0"
// for no expiry. Scripts take it as an argument.
func ttlMillis(ttl time.Duration) int64 {
	return int64(roundTTL(ttl) / time.Millisecond)
}

// nonNil returns b, or an empty non-nil slice for a nil b: go-redis returns
// nil for an empty string value, which is a hit.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Get returns the value of key, or cache.ErrNotFound. The returned slice is
// the caller's.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// go-redis reads each bulk reply into a fresh buffer and Bytes returns
	// it without copying, so the slice is not shared.
	b, err := s.client.Get(ctx, key).Bytes()
	if err != nil {
		if errors.Is(err, redis.Nil) {
			return nil, cache.ErrNotFound
		}
		return nil, fail(ctx, err)
	}
	return nonNil(b), nil
}

// Set stores value under key with SET, with PX ttl when ttl > 0 (rounded up
// to whole milliseconds), in a transaction (see Writes in the package
// documentation).
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.tx(ctx, func(p redis.Pipeliner) error { p.Set(ctx, key, value, roundTTL(ttl)); return nil })
}

// Add stores value under key with SET NX, in a transaction, and returns
// cache.ErrExists when the key holds a value.
func (s *Store) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var cmd *redis.BoolCmd
	if err := s.tx(ctx, func(p redis.Pipeliner) error { cmd = p.SetNX(ctx, key, value, roundTTL(ttl)); return nil }); err != nil {
		return err
	}
	if !cmd.Val() {
		return cache.ErrExists
	}
	return nil
}

// Exists reports whether key holds a value (EXISTS).
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	n, err := s.client.Exists(ctx, key).Result()
	if err != nil {
		return false, fail(ctx, err)
	}
	return n > 0, nil
}

// Expire sets the ttl of an existing key with PEXPIRE, or removes its
// expiry for ttl 0, and reports whether the key existed.
func (s *Store) Expire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if ttl > 0 {
		var cmd *redis.BoolCmd
		if err := s.tx(ctx, func(p redis.Pipeliner) error { cmd = p.PExpire(ctx, key, roundTTL(ttl)); return nil }); err != nil {
			return false, err
		}
		return cmd.Val(), nil
	}
	// PERSIST returns 0 for a missing key and for a key without expiry
	// alike: the script tells them apart.
	cmd, err := s.eval(ctx, persistScript, []string{key})
	if err != nil {
		return false, err
	}
	return cmd.Bool()
}

// TTL returns the remaining time to live of key (PTTL), cache.NoExpiration
// for a key without expiry and cache.ErrNotFound for a missing key. A key
// about to expire reports at least one millisecond.
func (s *Store) TTL(ctx context.Context, key string) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	d, err := s.client.PTTL(ctx, key).Result()
	if err != nil {
		return 0, fail(ctx, err)
	}
	switch {
	case d == -2:
		return 0, cache.ErrNotFound
	case d == -1:
		return cache.NoExpiration, nil
	case d < time.Millisecond:
		return time.Millisecond, nil
	}
	return d, nil
}

// Increment adds delta to the integer under key with INCRBY, in a
// transaction: it is never applied twice, and a lost reply gives an error
// matching cache.ErrUncertain. A value that is not a decimal int64, or an
// overflow, gives an error matching cache.ErrNotInteger (and the Redis
// error).
func (s *Store) Increment(ctx context.Context, key string, delta int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var cmd *redis.IntCmd
	if err := s.tx(ctx, func(p redis.Pipeliner) error { cmd = p.IncrBy(ctx, key, delta); return nil }); err != nil {
		if isNotInteger(err) {
			return 0, fmt.Errorf("%w: %w", cache.ErrNotInteger, err)
		}
		return 0, err
	}
	return cmd.Val(), nil
}

// isNotInteger reports whether err is Redis's reply to INCRBY on a value
// that is not an integer ("ERR value is not an integer or out of range") or
// whose result would overflow ("ERR increment or decrement would overflow").
// Redis has no error codes finer than "ERR", so the text is all there is.
func isNotInteger(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	msg := rerr.Error()
	return strings.Contains(msg, "not an integer") || strings.Contains(msg, "overflow")
}
