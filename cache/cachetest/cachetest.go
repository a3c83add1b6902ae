package cachetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// RunConformanceTests runs the conformance suite against the store described
// by h. Every case is a subtest of t with its own store from h.NewStore and
// its own key prefix, so that runs on a shared backend never collide; the
// suite calls Clear("") only when h.Exclusive is set.
func RunConformanceTests(t *testing.T, h Harness) {
	t.Helper()
	if h.NewStore == nil {
		t.Fatal("cachetest: Harness.NewStore is nil")
	}
	s := newSuite(h)
	s.root = t.Name()
	for name := range h.Skip {
		if !strings.Contains(name, "/") {
			t.Fatalf("cachetest: Harness.Skip %q: name a case (Group/Case), not a whole group", name)
		}
	}
	t.Run("Basic", s.testBasic)
	t.Run("GetMulti", s.testGetMulti)
	t.Run("Add", s.testAdd)
	t.Run("TTL", s.testTTL)
	t.Run("Expiry", s.testExpiry)
	t.Run("Increment", s.testIncrement)
	t.Run("Clear", s.testClear)
	t.Run("CompareAndSwap", s.testCAS)
	t.Run("DeleteIfEqual", s.testDeleteIfEqual)
	t.Run("ExtendIfEqual", s.testExtendIfEqual)
	t.Run("Values", s.testValues)
	t.Run("Keys", s.testKeys)
	t.Run("Concurrency", s.testConcurrency)
	t.Run("Context", s.testContext)
	t.Run("Close", s.testClose)
	t.Run("Notifier", s.testNotifier)
	t.Run("Fencer", s.testFencer)
	t.Run("Leaser", s.testLeaser)
	t.Run("Swapper", s.testSwapper)
	t.Run("Bus", s.testBus)
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		return // -run may have left the case out
	}
	for name := range h.Skip {
		if _, ok := s.skips.Load(name); !ok {
			t.Errorf("cachetest: Harness.Skip %q names no case of the suite", name)
		}
	}
}

// suite is the harness with its defaults applied, and the timings derived
// from it.
type suite struct {
	h     Harness
	root  string   // the name of the test that runs the suite
	skips sync.Map // the Harness.Skip names that matched a case

	res      time.Duration // TTLResolution, at least 1ms
	ttl      time.Duration // a short ttl: the suite waits for it to pass
	poll     time.Duration // polling interval while waiting for an expiry
	deadline time.Duration // how long a key with ttl may take to vanish
	longTTL  time.Duration // a ttl that never passes during the suite
}

func newSuite(h Harness) *suite {
	s := &suite{h: h}
	s.res = h.TTLResolution
	if s.res < time.Millisecond {
		s.res = time.Millisecond
	}
	if s.h.MaxValueSize <= 0 {
		s.h.MaxValueSize = 1 << 20
	}
	if s.h.MaxKeySize <= 0 {
		s.h.MaxKeySize = 1000
	}
	// The short ttl is a whole number of resolution steps, at least two, so
	// that a store rounding to its resolution keeps the key for at least one
	// step and reports a TTL no greater than the one asked.
	s.ttl = max(200*time.Millisecond, 2*s.res)
	if r := s.ttl % s.res; r != 0 {
		s.ttl += s.res - r
	}
	s.poll = min(max(s.res/4, 5*time.Millisecond), 100*time.Millisecond)
	s.deadline = 2*s.ttl + 2*s.res + 5*time.Second
	s.longTTL = time.Hour
	return s
}

// env is the state of one subtest: a fresh store, a context that ends with
// the test, and a key prefix no other run shares.
type env struct {
	*suite
	t      *testing.T
	s      cache.Store
	ctx    context.Context
	prefix string

	controls *[]string // see control
	written  *keySet   // every key of the test, for the cleanup
}

// keySet is the set of keys a test built, deleted when it ends on a store
// that cannot clear a prefix.
type keySet struct {
	mu   sync.Mutex
	keys map[string]struct{}
}

func (ks *keySet) add(k string) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.keys[k] = struct{}{}
}

func (ks *keySet) list() []string {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	out := make([]string, 0, len(ks.keys))
	for k := range ks.keys {
		out = append(out, k)
	}
	return out
}

// newEnv opens a fresh store for t, closed when t ends, and picks a unique
// key prefix. Before closing, it removes the keys it wrote under that prefix
// (Clear of the prefix, or, where the store cannot clear a prefix, Delete of
// every key built with key or track).
func (s *suite) newEnv(t *testing.T) *env {
	t.Helper()
	st := s.h.NewStore(t)
	if st == nil {
		t.Fatal("Harness.NewStore returned nil")
	}
	e := &env{
		suite: s, t: t, s: st, ctx: t.Context(), prefix: uniquePrefix(),
		controls: new([]string),
		written:  &keySet{keys: map[string]struct{}{}},
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if !s.h.NoClearPrefix {
			if err := st.Clear(ctx, e.prefix); err != nil {
				t.Logf("cleanup: Clear(%q): %v", e.prefix, err)
			}
		} else {
			keys := e.written.list()
			for len(keys) > 0 {
				n := min(len(keys), 100)
				if _, err := st.Delete(ctx, keys[:n]...); err != nil {
					t.Logf("cleanup: Delete: %v", err)
					break
				}
				keys = keys[n:]
			}
		}
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// with returns a copy of e for the subtest t.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// store opens another store of the same harness, closed when the test ends.
// Stores of one harness may or may not share a backend: see shared.
func (e *env) store() cache.Store {
	e.t.Helper()
	st := e.h.NewStore(e.t)
	if st == nil {
		e.t.Fatal("Harness.NewStore returned nil")
	}
	e.t.Cleanup(func() { _ = st.Close() })
	return st
}

// shared opens a second store and reports whether it sees the keys of the
// first, that is whether the two share a backend.
func (e *env) shared() (cache.Store, bool) {
	e.t.Helper()
	other := e.store()
	probe := e.key("shared-probe")
	e.mustSet(probe, []byte("probe"), 0)
	ok, err := other.Exists(e.ctx, probe)
	if err != nil {
		e.t.Fatalf("second store: Exists(%q): %v", probe, err)
	}
	return other, ok
}

func uniquePrefix() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "cachetest:" + hex.EncodeToString(b[:]) + ":"
}

// run runs f as a subtest with its own env.
func (s *suite) run(t *testing.T, name string, f func(e *env)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		if reason, ok := s.skipped(t); ok {
			t.Skip("Harness.Skip: " + reason)
		}
		f(s.newEnv(t))
	})
}

// skipped returns the Harness.Skip reason of the case t, if any: its name
// below the suite's root test.
func (s *suite) skipped(t *testing.T) (string, bool) {
	if len(s.h.Skip) == 0 {
		return "", false
	}
	name := strings.TrimPrefix(t.Name(), s.root+"/")
	reason, ok := s.h.Skip[name]
	if ok {
		s.skips.Store(name, true)
	}
	return reason, ok
}

// key returns the store key for name under the test's prefix.
func (e *env) key(name string) string { return e.track(e.prefix + name) }

// track records a key of the test for the cleanup, and returns it.
func (e *env) track(key string) string {
	e.written.add(key)
	return key
}

// Helpers. Each fails the test at once on an unexpected error.

func (e *env) mustSet(key string, value []byte, ttl time.Duration) {
	e.t.Helper()
	if err := e.s.Set(e.ctx, key, value, ttl); err != nil {
		e.t.Fatalf("Set(%s, %s, %v): %v", showKey(key), showValue(value), ttl, err)
	}
}

func (e *env) mustAdd(key string, value []byte, ttl time.Duration) {
	e.t.Helper()
	if err := e.s.Add(e.ctx, key, value, ttl); err != nil {
		e.t.Fatalf("Add(%s, %s, %v): got %v; want nil", showKey(key), showValue(value), ttl, err)
	}
}

func (e *env) mustGet(key string) []byte {
	e.t.Helper()
	v, err := e.s.Get(e.ctx, key)
	if err != nil {
		e.t.Fatalf("Get(%s): %v", showKey(key), err)
	}
	return v
}

func (e *env) mustGets(key string) ([]byte, cache.Token) {
	e.t.Helper()
	v, tok, err := e.s.Gets(e.ctx, key)
	if err != nil {
		e.t.Fatalf("Gets(%s): %v", showKey(key), err)
	}
	if tok.Absent() {
		e.t.Fatalf("Gets(%s): got the absent token for a present key", showKey(key))
	}
	return v, tok
}

func (e *env) mustDelete(keys ...string) int {
	e.t.Helper()
	n, err := e.s.Delete(e.ctx, keys...)
	if err != nil {
		e.t.Fatalf("Delete(%d keys): %v", len(keys), err)
	}
	return n
}

func (e *env) mustIncrement(key string, delta int64) int64 {
	e.t.Helper()
	n, err := e.s.Increment(e.ctx, key, delta)
	if err != nil {
		e.t.Fatalf("Increment(%s, %d): %v", showKey(key), delta, err)
	}
	return n
}

func (e *env) mustExists(key string) bool {
	e.t.Helper()
	ok, err := e.s.Exists(e.ctx, key)
	if err != nil {
		e.t.Fatalf("Exists(%s): %v", showKey(key), err)
	}
	return ok
}

// wantValue checks that Get of key is a hit returning exactly want. (For
// an empty value, Get may return a nil or an empty slice: the nil error
// makes it a hit. GetMulti, where nil means a miss, is checked by
// wantMulti.)
func (e *env) wantValue(key string, want []byte) {
	e.t.Helper()
	got, err := e.s.Get(e.ctx, key)
	if err != nil {
		e.t.Fatalf("Get(%s): got error %v; want %s", showKey(key), err, showValue(want))
	}
	if !bytes.Equal(got, want) {
		e.t.Fatalf("Get(%s): got %s; want %s", showKey(key), showValue(got), showValue(want))
	}
}

// wantMiss checks that Get of key returns ErrNotFound.
func (e *env) wantMiss(key string) {
	e.t.Helper()
	got, err := e.s.Get(e.ctx, key)
	if !errors.Is(err, cache.ErrNotFound) {
		e.t.Fatalf("Get(%s): got (%s, %v); want ErrNotFound", showKey(key), showValue(got), err)
	}
}

func (e *env) wantExists(key string, want bool) {
	e.t.Helper()
	if got := e.mustExists(key); got != want {
		e.t.Fatalf("Exists(%s): got %v; want %v", showKey(key), got, want)
	}
}

// wantTTL checks that TTL of key reports a remaining time in (lo, hi]; where
// the TTL cannot be read, that it returns ErrUnsupported.
func (e *env) wantTTL(key string, lo, hi time.Duration) {
	e.t.Helper()
	got, err := e.s.TTL(e.ctx, key)
	if e.h.TTLUnreadable {
		if !errors.Is(err, cache.ErrUnsupported) {
			e.t.Fatalf("TTL(%s) with Harness.TTLUnreadable: got (%v, %v); want ErrUnsupported", showKey(key), got, err)
		}
		return
	}
	if err != nil {
		e.t.Fatalf("TTL(%s): got error %v; want a duration in (%v, %v]", showKey(key), err, lo, hi)
	}
	if got <= lo || got > hi {
		e.t.Fatalf("TTL(%s): got %v; want a duration in (%v, %v]", showKey(key), got, lo, hi)
	}
}

// wantShortTTL checks that key, just written with the short ttl, reports a
// TTL in (0, ttl].
func (e *env) wantShortTTL(key string) {
	e.t.Helper()
	e.wantTTL(key, 0, e.ttl)
}

// wantLongTTL checks that key, just written with the long ttl, reports a
// TTL within a minute of it.
func (e *env) wantLongTTL(key string) {
	e.t.Helper()
	e.wantTTL(key, e.longTTL-time.Minute, e.longTTL)
}

// wantNoExpiry checks that TTL of key reports NoExpiration (or
// ErrUnsupported where the TTL cannot be read).
func (e *env) wantNoExpiry(key string) {
	e.t.Helper()
	got, err := e.s.TTL(e.ctx, key)
	if e.h.TTLUnreadable {
		if !errors.Is(err, cache.ErrUnsupported) {
			e.t.Fatalf("TTL(%s) with Harness.TTLUnreadable: got (%v, %v); want ErrUnsupported", showKey(key), got, err)
		}
		return
	}
	if err != nil || got != cache.NoExpiration {
		e.t.Fatalf("TTL(%s): got (%v, %v); want NoExpiration (%v)", showKey(key), got, err, cache.NoExpiration)
	}
}

// waitExpired polls until key no longer exists, and fails the test if it
// still does after a generous deadline.
func (e *env) waitExpired(key string) {
	e.t.Helper()
	deadline := time.Now().Add(e.deadline)
	for {
		if !e.mustExists(key) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("key %s with a ttl of at most %v still exists after %v; want it expired", showKey(key), e.ttl, e.deadline)
		}
		time.Sleep(e.poll)
	}
}

// wantAllMiss checks that every read of key reports a miss: Get, GetMulti,
// Exists, Gets, TTL.
func (e *env) wantAllMiss(key string) {
	e.t.Helper()
	e.wantMiss(key)
	vals, err := e.s.GetMulti(e.ctx, []string{key})
	if err != nil {
		e.t.Fatalf("GetMulti(%s): %v", showKey(key), err)
	}
	if len(vals) != 1 || vals[0] != nil {
		e.t.Fatalf("GetMulti([%s]): got %s; want [nil]", showKey(key), showValues(vals))
	}
	e.wantExists(key, false)
	v, tok, err := e.s.Gets(e.ctx, key)
	if !errors.Is(err, cache.ErrNotFound) || v != nil || !tok.Absent() {
		e.t.Fatalf("Gets(%s): got (%s, absent=%v, %v); want (nil, absent=true, ErrNotFound)", showKey(key), showValue(v), tok.Absent(), err)
	}
	d, err := e.s.TTL(e.ctx, key)
	if !errors.Is(err, cache.ErrNotFound) && !(e.h.TTLUnreadable && errors.Is(err, cache.ErrUnsupported)) {
		e.t.Fatalf("TTL(%s): got (%v, %v); want ErrNotFound", showKey(key), d, err)
	}
}

// overlap measures how many calls were in flight at once.
type overlap struct {
	cur, peak atomic.Int64
}

func (o *overlap) enter() {
	n := o.cur.Add(1)
	for {
		p := o.peak.Load()
		if n <= p || o.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (o *overlap) leave() { o.cur.Add(-1) }

// race runs f(i, call) for i in [0, n) on n goroutines released together,
// and returns the largest number of store calls that were in flight at
// once. f makes each store call through call, which counts it.
//
// The goroutines spin (yielding) until all of them are running, rather than
// block on a channel, so that every processor is busy with them when they
// are released.
func race(n int, f func(i int, call func(func()))) int64 {
	var (
		o       overlap
		wg      sync.WaitGroup
		ready   atomic.Int64
		started atomic.Bool
	)
	call := func(c func()) {
		o.enter()
		defer o.leave()
		c()
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready.Add(1)
			for !started.Load() {
				runtime.Gosched()
			}
			f(i, call)
		}()
	}
	for ready.Load() < int64(n) {
		runtime.Gosched()
	}
	started.Store(true)
	wg.Wait()
	return o.peak.Load()
}

// raceTime bounds how long a race is repeated, each time on fresh keys,
// before the suite concludes that calls never overlapped; raceKeys is how
// many keys each round races on, one after the other, so that each
// goroutine makes enough calls to meet the others even on a fast store.
const (
	raceTime = 5 * time.Second
	raceKeys = 20
)

// Formatting of keys and values in failure messages: long ones are cut.

func showKey(key string) string {
	if len(key) > 80 {
		return fmt.Sprintf("%q...(%d bytes)", key[:80], len(key))
	}
	return fmt.Sprintf("%q", key)
}

func showValue(v []byte) string {
	if v == nil {
		return "nil"
	}
	if len(v) > 40 {
		return fmt.Sprintf("%q...(%d bytes)", v[:40], len(v))
	}
	return fmt.Sprintf("%q", v)
}

func showValues(vs [][]byte) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, v := range vs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(showValue(v))
	}
	b.WriteByte(']')
	return b.String()
}
