package memcachestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"golang.org/x/sync/errgroup"

	"github.com/typedcache/typedcache/cache"
)

// Options configure a Store. A nil *Options, and every zero field, means the
// default.
type Options struct {
	// Concurrency is how many memcached calls SetMulti, and Delete of
	// several keys, run at once (gomemcache has no pipelining). The default
	// is the client's MaxIdleConns (gomemcache's default, 2, when unset), at
	// most DefaultMaxConcurrency, so that a batch does not open connections
	// that the client would close again.
	Concurrency int

	// MaxItemSize is the largest item, in bytes, that the memcached
	// servers store: their -I setting (item_size_max in "stats
	// settings"); the smallest, if they differ. The default is
	// DefaultMaxItemSize, memcached's own default. A write whose key and
	// value, with ItemOverhead, need a larger item is refused before it is
	// sent, with an error matching cache.ErrTooLarge, and the key's old
	// value stays as it was. Set it no higher than the servers' limit: a
	// set that the server refuses drops the key's old value (Check reports
	// a server whose limit is lower).
	MaxItemSize int

	// Servers are the addresses of the client's servers, as given to
	// memcache.New. Only Check reads them: gomemcache does not tell which
	// servers a client has. Without them, Check returns an error.
	Servers []string
}

// DefaultMaxConcurrency caps the default of Options.Concurrency.
const DefaultMaxConcurrency = 32

// DefaultMaxItemSize is the default of Options.MaxItemSize: 1 MiB,
// memcached's default item size limit (-I 1m).
const DefaultMaxItemSize = 1 << 20

// ItemOverhead is what an item takes in memcached's memory besides its key
// and value, as memcached 1.6 counts it against the item size limit on a
// 64-bit host: a 48-byte item header, the 8-byte CAS unique, the NUL that
// ends the key, the client flags (4 bytes, or 8 on a build with large client
// flags) and the "\r\n" after the value. The largest value that fits under
// a memcached key of n bytes is Options.MaxItemSize - ItemOverhead - n: a
// value up to MaxItemSize - ItemOverhead - 250 fits under any key, since no
// memcached key (after the encoding described in the package documentation)
// is longer than 250 bytes. memcached itself may accept up to 8 bytes more.
const ItemOverhead = 48 + 8 + 1 + 8 + 2

// Store is a cache.Store over a gomemcache client, which may spread keys over
// several servers. It is safe for concurrent use. See the package
// documentation for how keys, ttls, contexts and compare-and-swap map onto
// memcached.
type Store struct {
	client      *memcache.Client
	concurrency int
	maxItem     int      // Options.MaxItemSize, or its default
	servers     []string // Options.Servers
	closed      atomic.Bool

	// testHookAfterRead, when set (by tests only), runs in the read-modify-
	// write operations between the read and the cas.
	testHookAfterRead func()
}

var _ cache.Store = (*Store)(nil)

// New returns a Store over client. The client is the user's: Close of the
// Store never closes it. A nil opts means the defaults. New panics if client
// is nil.
func New(client *memcache.Client, opts *Options) *Store {
	if client == nil {
		panic("memcachestore: New with a nil client")
	}
	s := &Store{client: client, maxItem: DefaultMaxItemSize}
	if opts != nil {
		s.concurrency = opts.Concurrency
		if opts.MaxItemSize > 0 {
			s.maxItem = opts.MaxItemSize
		}
		s.servers = slices.Clone(opts.Servers)
	}
	return s
}

// Get returns the value of key, or cache.ErrNotFound on a miss.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	it, err := s.get(ctx, encodeKey(key))
	if err != nil {
		return nil, missAs(err, cache.ErrNotFound)
	}
	return it.Value, nil
}

// GetMulti returns the values of keys, nil for a miss, with one get-multi
// call, which gomemcache splits into one request per server, sent in
// parallel.
func (s *Store) GetMulti(ctx context.Context, keys []string) ([][]byte, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	out := make([][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	mkeys := encodeKeys(keys)
	var m map[string]*memcache.Item
	var err error
	if _, ok := ctx.Deadline(); !ok {
		m, err = s.client.GetMulti(mkeys)
	} else {
		// gomemcache resets its read deadline for every item of a
		// get-multi: only ctx bounds the whole call.
		// The call may outlive this one: it must not read the caller's
		// keys (encodeKeys returns them as they are when all are plain).
		mkeys := slices.Clone(mkeys)
		m, err = await(ctx, func() (map[string]*memcache.Item, error) { return s.client.GetMulti(mkeys) })
	}
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	hits := 0
	for i, mk := range mkeys {
		if it := m[mk]; it != nil {
			out[i] = it.Value
			hits++
		}
	}
	if hits > len(m) {
		// A key was asked for twice: each of its places gets a copy of
		// its own, since the caller owns every slice.
		seen := make(map[string]bool, len(m))
		for i, mk := range mkeys {
			if out[i] == nil {
				continue
			}
			if seen[mk] {
				out[i] = bytes.Clone(out[i])
			}
			seen[mk] = true
		}
	}
	return out, nil
}

// Set stores value under key with ttl (0 = no expiry).
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return s.write(ctx, opSet, newItem(encodeKey(key), value, ttl))
}

// SetMulti sets every item, each with its own ttl. gomemcache has no
// pipelining: the items are set by up to Options.Concurrency calls at once.
// It is not atomic: on error some items may be written. But when an item is
// too large for Options.MaxItemSize, SetMulti writes none of them and
// returns an error matching cache.ErrTooLarge.
func (s *Store) SetMulti(ctx context.Context, items []cache.Item) error {
	if len(items) == 1 {
		return s.Set(ctx, items[0].Key, items[0].Value, items[0].TTL)
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	items = lastOfEachKey(items)
	mkeys := make([]string, len(items))
	for i, it := range items {
		mkeys[i] = encodeKey(it.Key)
		if err := s.checkSize(mkeys[i], it.Value); err != nil {
			return fmt.Errorf("item %q: %w", it.Key, err)
		}
	}
	inline := s.inline(ctx)
	if !inline {
		// The calls may outlive this one: copy what they read.
		items = slices.Clone(items)
		for i := range items {
			items[i].Value = bytes.Clone(items[i].Value)
		}
	}
	return s.each(ctx, inline, len(items), func(i int) error {
		it := &items[i]
		return uncertain(refusedAsTooLarge(s.client.Set(newItem(mkeys[i], it.Value, it.TTL))))
	})
}

// lastOfEachKey drops every item whose key comes again later, so that the
// items of SetMulti, written concurrently, end as the last of each key.
func lastOfEachKey(items []cache.Item) []cache.Item {
	last := make(map[string]int, len(items))
	for i, it := range items {
		last[it.Key] = i
	}
	if len(last) == len(items) {
		return items
	}
	out := make([]cache.Item, 0, len(last))
	for i, it := range items {
		if last[it.Key] == i {
			out = append(out, it)
		}
	}
	return out
}

// Add stores value under key only if the key is absent (memcached's add),
// and returns cache.ErrExists otherwise.
func (s *Store) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	err := s.write(ctx, opAdd, newItem(encodeKey(key), value, ttl))
	if errors.Is(err, memcache.ErrNotStored) {
		return cache.ErrExists
	}
	return err
}

// Delete removes the keys and counts the deletes that found their key.
// memcached deletes one key per call; several keys are deleted by up to
// Options.Concurrency calls at once.
func (s *Store) Delete(ctx context.Context, keys ...string) (int, error) {
	if len(keys) == 1 {
		err := s.write(ctx, opDelete, &memcache.Item{Key: encodeKey(keys[0])})
		if errors.Is(err, memcache.ErrCacheMiss) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return 1, nil
	}
	var n atomic.Int64
	inline := s.inline(ctx)
	if !inline {
		keys = slices.Clone(keys) // the calls may outlive this one
	}
	err := s.each(ctx, inline, len(keys), func(i int) error {
		err := uncertain(s.client.Delete(encodeKey(keys[i])))
		if err == nil {
			n.Add(1)
		} else if !errors.Is(err, memcache.ErrCacheMiss) {
			return err
		}
		return nil
	})
	return int(n.Load()), err
}

// Exists reports whether key holds a value. It reads the value: memcached
// has no lighter command that leaves the ttl alone.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	_, err := s.get(ctx, encodeKey(key))
	if errors.Is(err, memcache.ErrCacheMiss) {
		return false, nil
	}
	return err == nil, err
}

// TTL returns cache.ErrUnsupported: memcached cannot report the remaining
// time to live of a key.
func (s *Store) TTL(ctx context.Context, key string) (time.Duration, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	return 0, cache.ErrUnsupported
}

// Clear with the prefix "" flushes every server of the client (flush_all),
// including keys that other users of those servers wrote. A non-empty prefix
// returns cache.ErrUnsupported: memcached cannot enumerate keys.
func (s *Store) Clear(ctx context.Context, prefix string) error {
	if prefix != "" {
		if err := s.enter(ctx); err != nil {
			return err
		}
		return cache.ErrUnsupported
	}
	return s.write(ctx, opFlushAll, nil)
}

// Close marks the store closed: later operations return cache.ErrClosed. It
// does not close the client, which belongs to the caller.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

// newItem returns the item writing value under the memcached key mkey with
// ttl, its expiry stamp in the flags.
func newItem(mkey string, value []byte, ttl time.Duration) *memcache.Item {
	it := &memcache.Item{Key: mkey, Value: value}
	if ttl > 0 {
		it.Expiration, it.Flags = expiry(ttl, time.Now())
	}
	return it
}

// missAs returns sentinel for gomemcache's cache miss and err otherwise.
func missAs(err, sentinel error) error {
	if errors.Is(err, memcache.ErrCacheMiss) {
		return sentinel
	}
	return err
}

// Calls and contexts. gomemcache takes no context: its calls are bounded by
// the client's Timeout. Every call below first checks that the store is
// open and ctx is not done. When ctx has no deadline earlier than the
// client's Timeout from now, the call runs in the calling goroutine (the
// common case: no goroutine, no allocation); otherwise it runs in a new
// goroutine, and the caller returns ctx's error as soon as ctx ends, while
// the call finishes in the background within the client's Timeout.

// enter returns cache.ErrClosed after Close, or ctx's error once it is done.
func (s *Store) enter(ctx context.Context) error {
	if s.closed.Load() {
		return cache.ErrClosed
	}
	return ctx.Err()
}

// inline reports whether a call may run in the calling goroutine: ctx has no
// deadline, or one far enough that the call ends before it. gomemcache
// bounds the dial and then each read or write by its Timeout, so one call
// can take twice the Timeout.
func (s *Store) inline(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	if !ok {
		return true
	}
	timeout := s.client.Timeout
	if timeout <= 0 {
		timeout = memcache.DefaultTimeout
	}
	return time.Until(d) >= 2*timeout
}

// ctxErr makes err, from a call that ended after ctx did, match ctx's error
// too, as the Store contract asks.
func ctxErr(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil || errors.Is(err, ctx.Err()) {
		return err
	}
	return fmt.Errorf("%w (%w)", ctx.Err(), err)
}

// await runs fn in a new goroutine and returns its result, or ctx's error
// when ctx ends first; fn then finishes in the background.
func await[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// get is gomemcache's Get (a gets: the item carries its CAS unique) under
// ctx.
func (s *Store) get(ctx context.Context, mkey string) (*memcache.Item, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	var it *memcache.Item
	var err error
	if s.inline(ctx) {
		it, err = s.client.Get(mkey)
	} else {
		it, err = await(ctx, func() (*memcache.Item, error) { return s.client.Get(mkey) })
	}
	return it, ctxErr(ctx, err)
}

// gets is get for the operations that write back with a cas: it fails
// with cache.ErrUnsupported when the server hands out no CAS uniques.
func (s *Store) gets(ctx context.Context, mkey string) (*memcache.Item, error) {
	it, err := s.get(ctx, mkey)
	if err == nil && it.CasID == 0 {
		// memcached hands out CAS unique 0 only when run with -C: no cas
		// can ever succeed, and the compare-and-swap loops would spin.
		return nil, fmt.Errorf("%w: memcached runs without CAS (-C)", cache.ErrUnsupported)
	}
	return it, err
}

// op is a gomemcache call that writes.
type op uint8

const (
	opSet op = iota
	opAdd
	opCAS
	opDelete
	opFlushAll
)

// write runs the call o on it under ctx. A set, add or cas whose item is too
// large is refused before it is sent.
func (s *Store) write(ctx context.Context, o op, it *memcache.Item) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	if o == opSet || o == opAdd || o == opCAS {
		if err := s.checkSize(it.Key, it.Value); err != nil {
			return err
		}
	}
	if s.inline(ctx) {
		return ctxErr(ctx, s.do(o, it))
	}
	// The call may outlive this one: it must not read the caller's slice
	// once the caller has its answer.
	c := *it
	c.Value = bytes.Clone(it.Value)
	_, err := await(ctx, func() (struct{}, error) { return struct{}{}, s.do(o, &c) })
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// ctx ended first: the write goes on in the background.
		return fmt.Errorf("%w: %w", cache.ErrUncertain, err)
	}
	return err
}

// uncertain wraps with cache.ErrUncertain the error of a write that failed
// after it may have reached the server: any network error but a failure to
// connect. memcached's own replies (not stored, exists, not found, server
// errors) and gomemcache's checks are answers, returned as they are.
func uncertain(err error) error {
	if err == nil {
		return nil
	}
	var (
		oe  *net.OpError
		cte *memcache.ConnectTimeoutError
		ne  net.Error
	)
	switch {
	case errors.As(err, &oe) && oe.Op == "dial", errors.As(err, &cte), errors.Is(err, memcache.ErrNoServers):
		return err // nothing was sent
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &ne):
		return fmt.Errorf("%w: %w", cache.ErrUncertain, err)
	}
	return err
}

func (s *Store) do(o op, it *memcache.Item) error {
	switch o {
	case opSet:
		return uncertain(refusedAsTooLarge(s.client.Set(it)))
	case opAdd:
		return uncertain(refusedAsTooLarge(s.client.Add(it)))
	case opCAS:
		return uncertain(refusedAsTooLarge(s.client.CompareAndSwap(it)))
	case opDelete:
		return uncertain(s.client.Delete(it.Key))
	default:
		return s.client.FlushAll()
	}
}

// checkSize returns an error matching cache.ErrTooLarge when the item of
// the memcached key mkey and value would be larger than Options.MaxItemSize.
func (s *Store) checkSize(mkey string, value []byte) error {
	if n := len(mkey) + len(value) + ItemOverhead; n > s.maxItem {
		return fmt.Errorf("%w: a %d-byte key and a %d-byte value make a %d-byte memcached item, over Options.MaxItemSize (%d)",
			cache.ErrTooLarge, len(mkey), len(value), n, s.maxItem)
	}
	return nil
}

// serverTooLarge is memcached's reply to a write whose item is over its -I
// limit. gomemcache has no error value for it: it returns an error whose
// text quotes the reply line.
const serverTooLarge = "SERVER_ERROR object too large for cache"

// refusedAsTooLarge makes err, when it is memcached's refusal of an item
// over its size limit, match cache.ErrTooLarge. It happens only when the
// server's limit is below Options.MaxItemSize.
func refusedAsTooLarge(err error) error {
	if err != nil && strings.Contains(err.Error(), serverTooLarge) {
		return fmt.Errorf("%w: the server's item size limit (-I) is below Options.MaxItemSize: %w", cache.ErrTooLarge, err)
	}
	return err
}

// each runs fn(0) ... fn(n-1), at most the store's concurrency at once, under
// ctx, and returns the first error. It stops starting calls after an error
// or once ctx is done.
func (s *Store) each(ctx context.Context, inline bool, n int, fn func(i int) error) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	run := func() (struct{}, error) {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(s.limit())
		started := 0
		for ; started < n && gctx.Err() == nil; started++ {
			i := started
			g.Go(func() error {
				if err := gctx.Err(); err != nil {
					return err
				}
				return fn(i)
			})
		}
		if err := g.Wait(); err != nil {
			return struct{}{}, err
		}
		if started < n {
			return struct{}{}, ctx.Err()
		}
		return struct{}{}, nil
	}
	var err error
	if inline {
		_, err = run()
	} else {
		_, err = await(ctx, run)
		if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			// ctx ended first: the writes go on in the background.
			return fmt.Errorf("%w: %w", cache.ErrUncertain, err)
		}
	}
	return ctxErr(ctx, err)
}

// limit returns how many calls each runs at once.
func (s *Store) limit() int {
	if s.concurrency > 0 {
		return s.concurrency
	}
	if s.client.MaxIdleConns > 0 {
		return min(s.client.MaxIdleConns, DefaultMaxConcurrency)
	}
	return memcache.DefaultMaxIdleConns
}
