package cachetest_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/decimal"
)

// refBackend is the state that the refStores of one backend share: a map
// under a mutex. It is the reference the suite is checked against, kept
// simple rather than fast.
type refBackend struct {
	res      time.Duration // expiry resolution; 0 = exact
	fault    string        // a deliberate bug, to check that the suite catches it
	maxValue int           // the largest value written; 0 = no limit

	mu       sync.Mutex
	items    map[string]refItem
	prev     map[string][]byte // "get-stale": the value before the last write
	reads    int
	version  uint64
	fences   map[string]int64
	watchers map[string]map[chan struct{}]struct{}

	bus refBus // the subscriptions of every refStore of the backend
}

type refItem struct {
	value []byte
	exp   time.Time // zero = no expiry
	ver   uint64
}

func newRefBackend(res time.Duration, fault string) *refBackend {
	return &refBackend{
		res:      res,
		fault:    fault,
		items:    map[string]refItem{},
		prev:     map[string][]byte{},
		fences:   map[string]int64{},
		watchers: map[string]map[chan struct{}]struct{}{},
	}
}

// refStore is a client of a refBackend. It implements cache.Store,
// cache.Notifier and cache.Fencer.
type refStore struct {
	b             *refBackend
	ttlUnreadable bool
	noClearPrefix bool
	closed        atomic.Bool
	subs          refSubs // this store's bus subscriptions, stopped by Close
}

var (
	_ cache.Store    = (*refStore)(nil)
	_ cache.Notifier = (*refStore)(nil)
	_ cache.Fencer   = (*refStore)(nil)
)

func (s *refStore) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil && s.b.fault != "no-ctx-check" {
		return err
	}
	if s.closed.Load() {
		return cache.ErrClosed
	}
	s.b.mu.Lock()
	return nil
}

func (s *refStore) leave() { s.b.mu.Unlock() }

// expiry returns the expiry time of a ttl written now. With a resolution,
// it behaves like memcached: whole steps of a truncated clock, so a key may
// expire up to one step early.
func (b *refBackend) expiry(ttl time.Duration) time.Time {
	if ttl == 0 {
		return time.Time{}
	}
	now := time.Now()
	if b.res == 0 {
		return now.Add(ttl)
	}
	steps := (ttl + b.res - 1) / b.res
	return now.Truncate(b.res).Add(steps * b.res)
}

// tooLarge reports whether value is over the backend's size limit. With the
// fault "too-large-drops", it drops the old value of key first, as memcached
// does when it refuses a set.
func (b *refBackend) tooLarge(key string, value []byte) bool {
	if b.maxValue <= 0 || len(value) <= b.maxValue {
		return false
	}
	if b.fault == "too-large-drops" {
		delete(b.items, key)
	}
	return true
}

func (b *refBackend) copyValue(v []byte) []byte {
	if b.fault == "alias" {
		return v
	}
	return append([]byte{}, v...)
}

// get returns the live item of key, dropping it if it expired.
func (b *refBackend) get(key string) (refItem, bool) {
	it, ok := b.items[key]
	if !ok {
		return refItem{}, false
	}
	if !it.exp.IsZero() && !time.Now().Before(it.exp) {
		delete(b.items, key)
		return refItem{}, false
	}
	return it, true
}

func (b *refBackend) put(key string, value []byte, exp time.Time) {
	if old, ok := b.items[key]; ok && b.fault == "get-stale" {
		b.prev[key] = old.value
	}
	b.version++
	b.items[key] = refItem{value: b.copyValue(value), exp: exp, ver: b.version}
}

func (s *refStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	it, ok := s.b.get(key)
	if !ok {
		return nil, cache.ErrNotFound
	}
	if p, ok := s.b.prev[key]; ok && s.b.fault == "get-stale" {
		// Every third read sees the value before the last write, as a
		// replica that lags would.
		if s.b.reads++; s.b.reads%3 == 0 {
			return s.b.copyValue(p), nil
		}
	}
	return s.b.copyValue(it.value), nil
}

func (s *refStore) GetMulti(ctx context.Context, keys []string) ([][]byte, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	out := make([][]byte, len(keys))
	for i, k := range keys {
		if it, ok := s.b.get(k); ok {
			out[i] = s.b.copyValue(it.value)
		}
	}
	return out, nil
}

func (s *refStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	if s.b.tooLarge(key, value) {
		return cache.ErrTooLarge
	}
	exp := s.b.expiry(ttl)
	if it, ok := s.b.get(key); ok && s.b.fault == "set-keeps-ttl" {
		exp = it.exp
	}
	s.b.put(key, value, exp)
	return nil
}

func (s *refStore) SetMulti(ctx context.Context, items []cache.Item) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	for _, it := range items {
		if s.b.tooLarge(it.Key, it.Value) {
			return cache.ErrTooLarge
		}
	}
	for _, it := range items {
		s.b.put(it.Key, it.Value, s.b.expiry(it.TTL))
	}
	return nil
}

func (s *refStore) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	if _, ok := s.b.get(key); ok {
		return cache.ErrExists
	}
	if s.b.tooLarge(key, value) {
		return cache.ErrTooLarge
	}
	if s.b.fault == "add-not-atomic" {
		// Check, then set: another Add may slip in between.
		s.b.mu.Unlock()
		runtime.Gosched()
		s.b.mu.Lock()
	}
	s.b.put(key, value, s.b.expiry(ttl))
	return nil
}

func (s *refStore) Delete(ctx context.Context, keys ...string) (int, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.leave()
	n := 0
	for _, k := range keys {
		if _, ok := s.b.get(k); ok {
			delete(s.b.items, k)
			n++
		}
	}
	return n, nil
}

func (s *refStore) Exists(ctx context.Context, key string) (bool, error) {
	if err := s.enter(ctx); err != nil {
		return false, err
	}
	defer s.leave()
	_, ok := s.b.get(key)
	return ok, nil
}

func (s *refStore) Expire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := s.enter(ctx); err != nil {
		return false, err
	}
	defer s.leave()
	it, ok := s.b.get(key)
	if !ok {
		return false, nil
	}
	if ttl == 0 && s.b.fault == "expire-zero-noop" {
		return true, nil
	}
	it.exp = s.b.expiry(ttl)
	s.b.items[key] = it
	return true, nil
}

func (s *refStore) TTL(ctx context.Context, key string) (time.Duration, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.leave()
	if s.ttlUnreadable {
		return 0, cache.ErrUnsupported
	}
	it, ok := s.b.get(key)
	switch {
	case !ok:
		return 0, cache.ErrNotFound
	case it.exp.IsZero():
		return cache.NoExpiration, nil
	}
	return time.Until(it.exp), nil
}

func (s *refStore) Increment(ctx context.Context, key string, delta int64) (int64, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.leave()
	it, ok := s.b.get(key)
	var n int64
	if ok {
		if n, ok = decimal.ParseInt64(it.value); !ok {
			return 0, cache.ErrNotInteger
		}
		overflow := delta > 0 && n > math.MaxInt64-delta || delta < 0 && n < math.MinInt64-delta
		if overflow && s.b.fault != "incr-wraps" {
			return 0, cache.ErrNotInteger
		}
	}
	if s.b.fault == "incr-drops-ttl" {
		it.exp = time.Time{}
	}
	n += delta
	s.b.put(key, []byte(strconv.FormatInt(n, 10)), it.exp)
	return n, nil
}

func (s *refStore) Clear(ctx context.Context, prefix string) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	if prefix != "" && s.noClearPrefix {
		return cache.ErrUnsupported
	}
	match := func(k string) bool { return strings.HasPrefix(k, prefix) }
	switch s.b.fault {
	case "clear-glob":
		match = func(k string) bool { ok, _ := path.Match(prefix+"*", k); return ok }
	case "clear-contains":
		match = func(k string) bool { return strings.Contains(k, prefix) }
	}
	for k := range s.b.items {
		if match(k) {
			delete(s.b.items, k)
		}
	}
	for k := range s.b.fences {
		if match(k) {
			delete(s.b.fences, k)
		}
	}
	return nil
}

func (s *refStore) Gets(ctx context.Context, key string) ([]byte, cache.Token, error) {
	if err := s.enter(ctx); err != nil {
		return nil, cache.AbsentToken(), err
	}
	defer s.leave()
	it, ok := s.b.get(key)
	if !ok {
		return nil, cache.AbsentToken(), cache.ErrNotFound
	}
	return s.b.copyValue(it.value), cache.NewToken(binary.BigEndian.AppendUint64(nil, it.ver)), nil
}

func (s *refStore) CompareAndSwap(ctx context.Context, key string, value []byte, token cache.Token, ttl time.Duration) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	it, ok := s.b.get(key)
	unchanged := !ok
	if !token.Absent() {
		unchanged = ok && len(token.Bytes()) == 8 && binary.BigEndian.Uint64(token.Bytes()) == it.ver
	}
	switch s.b.fault {
	case "cas-ignores-token":
		unchanged = true
	case "cas-absent-overwrites":
		unchanged = unchanged || token.Absent()
	}
	if !unchanged {
		return cache.ErrConflict
	}
	if s.b.tooLarge(key, value) {
		return cache.ErrTooLarge
	}
	s.b.put(key, value, s.b.expiry(ttl))
	return nil
}

func (s *refStore) DeleteIfEqual(ctx context.Context, key string, value []byte) (bool, error) {
	if err := s.enter(ctx); err != nil {
		return false, err
	}
	defer s.leave()
	it, ok := s.b.get(key)
	equal := bytes.Equal(it.value, value)
	if s.b.fault == "die-prefix" {
		equal = bytes.HasPrefix(it.value, value)
	}
	if !ok || !equal {
		return false, nil
	}
	delete(s.b.items, key)
	if s.b.fault == "fence-dies-with-key" {
		delete(s.b.fences, key)
	}
	if s.b.fault != "no-wake" {
		for ch := range s.b.watchers[key] {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	return true, nil
}

func (s *refStore) ExtendIfEqual(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := s.enter(ctx); err != nil {
		return false, err
	}
	defer s.leave()
	it, ok := s.b.get(key)
	if !ok || !bytes.Equal(it.value, value) {
		return false, nil
	}
	it.exp = s.b.expiry(ttl)
	s.b.items[key] = it
	return true, nil
}

func (s *refStore) Watch(ctx context.Context, key string) (<-chan struct{}, func(), error) {
	if err := s.enter(ctx); err != nil {
		return nil, nil, err
	}
	defer s.leave()
	ch := make(chan struct{}, 1)
	if s.b.watchers[key] == nil {
		s.b.watchers[key] = map[chan struct{}]struct{}{}
	}
	s.b.watchers[key][ch] = struct{}{}
	stop := func() {
		s.b.mu.Lock()
		defer s.b.mu.Unlock()
		delete(s.b.watchers[key], ch)
		if len(s.b.watchers[key]) == 0 {
			delete(s.b.watchers, key)
		}
	}
	return ch, stop, nil
}

func (s *refStore) AddFenced(ctx context.Context, key string, value []byte, ttl time.Duration) (int64, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.leave()
	if _, ok := s.b.get(key); ok {
		return 0, cache.ErrExists
	}
	s.b.put(key, value, s.b.expiry(ttl))
	s.b.fences[key]++
	return s.b.fences[key], nil
}

func (s *refStore) Close() error {
	s.closed.Store(true)
	s.subs.stopAll()
	return nil
}
