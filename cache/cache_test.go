package cache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/codec"
)

func newStore(t *testing.T) *memstore.Store {
	t.Helper()
	s, err := memstore.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type user struct {
	ID   int
	Name string
}

func TestGetSetDelete(t *testing.T) {
	ctx := context.Background()
	c := cache.New[string, user](newStore(t), &cache.Options[string, user]{Namespace: "users"})
	if _, found, err := c.Get(ctx, "42"); found || err != nil {
		t.Fatalf("Get of a missing key: found %v, err %v; want a miss", found, err)
	}
	if err := c.Set(ctx, "42", user{42, "ada"}); err != nil {
		t.Fatal(err)
	}
	if got, found, err := c.Get(ctx, "42"); !found || err != nil || got != (user{42, "ada"}) {
		t.Fatalf("Get = %v, %v, %v; want {42 ada}, true, nil", got, found, err)
	}
	if got := c.Key("42"); got != "users:42" {
		t.Fatalf("Key = %q; want users:42", got)
	}
	if ok, err := c.Exists(ctx, "42"); !ok || err != nil {
		t.Fatalf("Exists = %v, %v; want true", ok, err)
	}
	if n, err := c.Delete(ctx, "42", "43"); n != 1 || err != nil {
		t.Fatalf("Delete = %d, %v; want 1", n, err)
	}
	if err := c.Add(ctx, "7", user{7, "x"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(ctx, "7", user{7, "y"}); !errors.Is(err, cache.ErrExists) {
		t.Fatalf("Add over a value: got %v; want ErrExists", err)
	}
	st := c.Stats()
	if st.Hits != 1 || st.Misses != 1 || st.Sets != 2 || st.Deletes != 1 || st.Errors != 0 {
		t.Fatalf("Stats = %+v; want 1 hit, 1 miss, 2 sets, 1 delete, 0 errors", st)
	}
}

func TestZeroValueIsAHit(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ints := cache.New[string, int](s, nil)
	ptrs := cache.New[string, *user](s, &cache.Options[string, *user]{Namespace: "p"})
	strs := cache.New[string, string](s, &cache.Options[string, string]{Namespace: "s"})
	ints.Set(ctx, "zero", 0)
	ptrs.Set(ctx, "nil", nil)
	strs.Set(ctx, "empty", "")
	if v, found, err := ints.Get(ctx, "zero"); !found || err != nil || v != 0 {
		t.Errorf("cached 0: got %v, %v, %v; want a hit", v, found, err)
	}
	if v, found, err := ptrs.Get(ctx, "nil"); !found || err != nil || v != nil {
		t.Errorf("cached nil: got %v, %v, %v; want a hit", v, found, err)
	}
	if v, found, err := strs.Get(ctx, "empty"); !found || err != nil || v != "" {
		t.Errorf("cached empty string: got %q, %v, %v; want a hit", v, found, err)
	}
}

// aiocache #482: Increment then Get of the same key work together.
func TestIncrementThenGet(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	c := cache.New[string, int64](store, &cache.Options[string, int64]{Namespace: "n"})
	if n, err := c.Increment(ctx, "hits", 5); n != 5 || err != nil {
		t.Fatalf("Increment = %d, %v; want 5", n, err)
	}
	if n, err := c.Increment(ctx, "hits", -8); n != -3 || err != nil {
		t.Fatalf("Increment = %d, %v; want -3", n, err)
	}
	if v, found, err := c.Get(ctx, "hits"); v != -3 || !found || err != nil {
		t.Fatalf("Get after Increment = %d, %v, %v; want -3", v, found, err)
	}
	c.Set(ctx, "hits", 10)
	if n, _ := c.Increment(ctx, "hits", 1); n != 11 {
		t.Fatalf("Increment after Set = %d; want 11", n)
	}
	strs := cache.New[string, string](store, &cache.Options[string, string]{Namespace: "n"})
	strs.Set(ctx, "word", "abc")
	if _, err := c.Increment(ctx, "word", 1); !errors.Is(err, cache.ErrNotInteger) {
		t.Fatalf("Increment of text: got %v; want ErrNotInteger", err)
	}
}

func TestNamespacesIsolate(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	a := cache.New[string, string](s, &cache.Options[string, string]{Namespace: "a"})
	ab := cache.New[string, string](s, &cache.Options[string, string]{Namespace: "ab"})
	b := cache.New[string, string](s, &cache.Options[string, string]{Namespace: "b"})
	plain := cache.New[string, string](s, nil)
	a.Set(ctx, "k", "a")
	ab.Set(ctx, "k", "ab")
	b.Set(ctx, "k", "b")
	plain.Set(ctx, "k", "plain")
	plain.Set(ctx, "a", "plain-a") // "a" without the colon
	if v, _, _ := a.Get(ctx, "k"); v != "a" {
		t.Fatalf("a's k = %q; want a", v)
	}
	if err := a.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := a.Get(ctx, "k"); found {
		t.Fatal("a's key survived a.Clear")
	}
	for name, c := range map[string]*cache.Cache[string, string]{"ab": ab, "b": b} {
		if v, found, _ := c.Get(ctx, "k"); !found || v != name {
			t.Errorf("%s's key after a.Clear: %q, %v; want %q", name, v, found, name)
		}
	}
	for _, k := range []string{"k", "a"} {
		if _, found, _ := plain.Get(ctx, k); !found {
			t.Errorf("un-namespaced key %q removed by a.Clear", k)
		}
	}
	// A cache without a namespace clears the whole store.
	if err := plain.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := b.Get(ctx, "k"); found {
		t.Fatal("Clear of a cache without a namespace left keys behind")
	}
}

func TestDefaultKey(t *testing.T) {
	s := newStore(t)
	if got := cache.New[int, string](s, nil).Key(-42); got != "-42" {
		t.Errorf("int key = %q; want -42", got)
	}
	if got := cache.New[uint64, string](s, nil).Key(7); got != "7" {
		t.Errorf("uint64 key = %q; want 7", got)
	}
	if got := cache.New[stringer, string](s, nil).Key(stringer{"x"}); got != "S(x)" {
		t.Errorf("Stringer key = %q; want S(x)", got)
	}
	type pair struct{ A, B int }
	if got := cache.New[pair, string](s, nil).Key(pair{1, 2}); got != "{1 2}" {
		t.Errorf("struct key = %q; want {1 2}", got)
	}
	c := cache.New[int, string](s, &cache.Options[int, string]{Namespace: "ns", Key: func(k int) string { return fmt.Sprintf("%04d", k) }})
	if got := c.Key(7); got != "ns:0007" {
		t.Errorf("custom key = %q; want ns:0007", got)
	}
}

type stringer struct{ s string }

func (s stringer) String() string { return "S(" + s.s + ")" }

func TestTTL(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := cache.New[string, string](s, &cache.Options[string, string]{TTL: time.Hour})
	c.Set(ctx, "default", "v")
	if ttl, err := c.TTL(ctx, "default"); err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("TTL with the default = %v, %v; want about 1h", ttl, err)
	}
	c.WithTTL(0).Set(ctx, "forever", "v")
	if ttl, err := c.TTL(ctx, "forever"); err != nil || ttl != cache.NoExpiration {
		t.Fatalf("TTL after WithTTL(0) = %v, %v; want NoExpiration", ttl, err)
	}
	c.WithTTL(time.Minute).SetMulti(ctx, map[string]string{"m1": "1", "m2": "2"})
	if ttl, _ := c.TTL(ctx, "m2"); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("TTL after WithTTL(1m).SetMulti = %v; want in (0, 1m]", ttl)
	}
	if _, err := c.TTL(ctx, "missing"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("TTL of a missing key: got %v; want ErrNotFound", err)
	}
	if ok, err := c.Expire(ctx, "forever", time.Minute); !ok || err != nil {
		t.Fatalf("Expire = %v, %v", ok, err)
	}
	c.WithTTL(20*time.Millisecond).Set(ctx, "short", "v")
	time.Sleep(40 * time.Millisecond)
	if _, found, _ := c.Get(ctx, "short"); found {
		t.Fatal("a key read after its ttl")
	}
	if c.Stats().Errors != 0 {
		t.Fatalf("errors counted: %+v", c.Stats())
	}
}

// Bad input gets a clear error and writes nothing.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := cache.New[string, string](s, &cache.Options[string, string]{
		Key: func(k string) string { return strings.TrimSpace(k) },
	})
	checks := []struct {
		name string
		err  error
		want error
	}{
		{"negative ttl set", c.WithTTL(-time.Second).Set(ctx, "k", "v"), cache.ErrInvalidTTL},
		{"negative ttl add", c.WithTTL(-time.Second).Add(ctx, "k", "v"), cache.ErrInvalidTTL},
		{"negative ttl set-multi", c.WithTTL(-time.Second).SetMulti(ctx, map[string]string{"k": "v"}), cache.ErrInvalidTTL},
		{"negative expire", second(c.Expire(ctx, "k", -time.Second)), cache.ErrInvalidTTL},
		{"empty key set", c.Set(ctx, "  ", "v"), cache.ErrInvalidKey},
		{"empty key get", third(c.Get(ctx, "")), cache.ErrInvalidKey},
		{"empty key in set-multi", c.SetMulti(ctx, map[string]string{"ok": "v", " ": "v"}), cache.ErrInvalidKey},
		{"empty key delete", second(c.Delete(ctx, "ok", "")), cache.ErrInvalidKey},
		{"empty key add", c.Add(ctx, "", "v"), cache.ErrInvalidKey},
		{"NUL in key set", c.Set(ctx, "a\x00b", "v"), cache.ErrInvalidKey},
		{"NUL in key get", third(c.Get(ctx, "a\x00memo:none")), cache.ErrInvalidKey},
		{"empty key exists", second(c.Exists(ctx, "")), cache.ErrInvalidKey},
		{"empty key expire", second(c.Expire(ctx, "", time.Second)), cache.ErrInvalidKey},
		{"empty key ttl", second(c.TTL(ctx, "")), cache.ErrInvalidKey},
		{"empty key increment", second(c.Increment(ctx, "", 1)), cache.ErrInvalidKey},
		{"empty key gets", fourth(c.Gets(ctx, "")), cache.ErrInvalidKey},
		{"empty key compare-and-swap", c.CompareAndSwap(ctx, "", "v", cache.AbsentToken()), cache.ErrInvalidKey},
		{"empty key get-multi", second(c.GetMulti(ctx, []string{"ok", " "})), cache.ErrInvalidKey},
		{"empty key get-or-compute", second(c.GetOrCompute(ctx, "", computeV)), cache.ErrInvalidKey},
		{"negative ttl compare-and-swap", c.WithTTL(-time.Second).CompareAndSwap(ctx, "k", "v", cache.AbsentToken()), cache.ErrInvalidTTL},
		{"negative ttl get-or-compute", second(c.WithTTL(-time.Second).GetOrCompute(ctx, "k", computeV)), cache.ErrInvalidTTL},
	}
	for _, ch := range checks {
		if !errors.Is(ch.err, ch.want) {
			t.Errorf("%s: got %v; want %v", ch.name, ch.err, ch.want)
		}
	}
	for _, k := range []string{"k", "ok", "", "a\x00b"} {
		if _, err := s.Get(ctx, k); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("key %q written by a rejected call", k)
		}
	}
	mustPanic(t, "nil store", func() { cache.New[string, string](nil, nil) })
	mustPanic(t, "negative TTL", func() {
		cache.New[string, string](s, &cache.Options[string, string]{TTL: -time.Second})
	})
	mustPanic(t, "NUL in Namespace", func() {
		cache.New[string, string](s, &cache.Options[string, string]{Namespace: "a\x00"})
	})
	mustPanic(t, "negative Timeout", func() {
		cache.New[string, string](s, &cache.Options[string, string]{Timeout: -time.Second})
	})
	mustPanic(t, "negative ComputeTimeout", func() {
		cache.New[string, string](s, &cache.Options[string, string]{ComputeTimeout: -time.Second})
	})
}

func computeV(context.Context) (string, error) { return "v", nil }

func second[T any](_ T, err error) error        { return err }
func third[T, U any](_ T, _ U, err error) error { return err }
func fourth[T, U, W any](_ T, _ U, _ W, err error) error {
	return err
}

func mustPanic(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", name)
		}
	}()
	f()
}

func TestErrorsWrap(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := cache.New[string, user](s, &cache.Options[string, user]{Namespace: "users"})
	s.Set(ctx, "users:42", []byte("not msgpack"), 0)
	_, found, err := c.Get(ctx, "42")
	if found || !errors.Is(err, codec.ErrDecode) {
		t.Fatalf("Get of corrupt bytes: found %v, err %v; want an ErrDecode error", found, err)
	}
	if !strings.HasPrefix(err.Error(), "cache: get users:42: ") {
		t.Fatalf("error text %q; want the operation and key first", err)
	}
	var op *cache.OpError
	if !errors.As(err, &op) || op.Op != "get" || op.Key != "users:42" {
		t.Fatalf("errors.As OpError: %+v", op)
	}
	// The corrupt bytes are still there: nothing is lost.
	if raw, _ := s.Get(ctx, "users:42"); string(raw) != "not msgpack" {
		t.Fatalf("corrupt value changed to %q", raw)
	}
	// GetMulti returns the other hits with the decode error.
	c.Set(ctx, "1", user{1, "a"})
	got, err := c.GetMulti(ctx, []string{"1", "42", "missing"})
	if !errors.Is(err, codec.ErrDecode) || len(got) != 1 || got["1"].Name != "a" {
		t.Fatalf("GetMulti with one corrupt value = %v, %v; want the good hit and an ErrDecode error", got, err)
	}
	if st := c.Stats(); st.DecodeErrors != 2 || st.Errors != 2 {
		t.Fatalf("Stats = %+v; want 2 decode errors", st)
	}
}

// slowStore blocks every Get until its context ends.
type slowStore struct{ cache.Store }

func (slowStore) Get(ctx context.Context, key string) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestTimeout(t *testing.T) {
	c := cache.New[string, string](slowStore{newStore(t)}, &cache.Options[string, string]{Timeout: 20 * time.Millisecond})
	_, _, err := c.Get(context.Background(), "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get on a store slower than Timeout: got %v; want DeadlineExceeded", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Set(ctx, "k", "v"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Set with a cancelled context: got %v; want Canceled", err)
	}
}

func TestGetMultiSetMulti(t *testing.T) {
	ctx := context.Background()
	c := cache.New[int, string](newStore(t), &cache.Options[int, string]{Namespace: "m"})
	if err := c.SetMulti(ctx, map[int]string{1: "a", 2: "b", 3: ""}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetMulti(ctx, []int{1, 2, 3, 4})
	if err != nil || len(got) != 3 || got[1] != "a" || got[2] != "b" || got[3] != "" {
		t.Fatalf("GetMulti = %v, %v; want 1:a 2:b 3:\"\"", got, err)
	}
	if st := c.Stats(); st.Hits != 3 || st.Misses != 1 || st.Sets != 3 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestCompareAndSwap(t *testing.T) {
	ctx := context.Background()
	c := cache.New[string, string](newStore(t), nil)
	_, found, tok, err := c.Gets(ctx, "k")
	if found || err != nil || !tok.Absent() {
		t.Fatalf("Gets of a missing key = %v, %v, absent %v", found, err, tok.Absent())
	}
	if err := c.CompareAndSwap(ctx, "k", "v1", tok); err != nil {
		t.Fatal(err)
	}
	if err := c.CompareAndSwap(ctx, "k", "v2", tok); !errors.Is(err, cache.ErrConflict) {
		t.Fatalf("second CAS with the absent token: got %v; want ErrConflict", err)
	}
	v, _, tok, _ := c.Gets(ctx, "k")
	if v != "v1" {
		t.Fatalf("value %q; want v1", v)
	}
	if err := c.CompareAndSwap(ctx, "k", "v3", tok); err != nil {
		t.Fatal(err)
	}
	if c.Stats().Errors != 0 {
		t.Fatal("a conflict was counted as an error")
	}
}

func TestGetOrComputeOneComputation(t *testing.T) {
	c := cache.New[string, string](newStore(t), nil)
	const callers = 50
	var computations atomic.Int64
	var startedBeforeEnd atomic.Int64
	computing := make(chan struct{})
	finish := make(chan struct{})
	var wg sync.WaitGroup
	results := make(chan string, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i > 0 {
				<-computing // the others arrive while the first computes
			}
			startedBeforeEnd.Add(1)
			v, err := c.GetOrCompute(context.Background(), "k", func(ctx context.Context) (string, error) {
				computations.Add(1)
				close(computing)
				<-finish
				return "value", nil
			})
			if err != nil {
				t.Error(err)
			}
			results <- v
		}()
	}
	<-computing
	// Let the waiters join the flight, then finish. If they did not join,
	// they would compute again (and close computing twice: a panic).
	for startedBeforeEnd.Load() < callers {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(finish)
	wg.Wait()
	close(results)
	for v := range results {
		if v != "value" {
			t.Fatalf("a caller got %q; want value", v)
		}
	}
	if n := computations.Load(); n != 1 {
		t.Fatalf("computations = %d; want 1", n)
	}
	if st := c.Stats(); st.Computations != 1 || st.Sets != 1 || st.Hits+st.Misses != callers {
		t.Fatalf("Stats = %+v; want 1 computation, 1 set, and one read counted per caller", st)
	}
	if v, found, _ := c.Get(context.Background(), "k"); !found || v != "value" {
		t.Fatal("computed value not cached")
	}
}

// The shared computation does not die with the first caller's context, and
// each caller stops waiting when its own context ends.
func TestGetOrComputeDetached(t *testing.T) {
	c := cache.New[string, string](newStore(t), nil)
	first, cancelFirst := context.WithCancel(context.Background())
	started := make(chan struct{})
	release := make(chan struct{})
	var computeErr error
	firstErr := make(chan error, 1)
	go func() {
		_, err := c.GetOrCompute(first, "k", func(ctx context.Context) (string, error) {
			close(started)
			<-release
			computeErr = ctx.Err()
			return "value", nil
		})
		firstErr <- err
	}()
	<-started
	second := make(chan string, 1)
	go func() {
		v, err := c.GetOrCompute(context.Background(), "k", func(context.Context) (string, error) {
			return "second computation", nil
		})
		if err != nil {
			t.Error(err)
		}
		second <- v
	}()
	cancelFirst()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller after its cancel: got %v; want Canceled", err)
	}
	close(release)
	if v := <-second; v != "value" {
		t.Fatalf("second caller got %q; want the shared value", v)
	}
	if computeErr != nil {
		t.Fatalf("the computation's context ended with the first caller: %v", computeErr)
	}
}

func TestGetOrComputeErrorAndPanic(t *testing.T) {
	ctx := context.Background()
	c := cache.New[string, string](newStore(t), nil)
	boom := errors.New("boom")
	if _, err := c.GetOrCompute(ctx, "k", func(context.Context) (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Fatalf("error: got %v; want boom", err)
	}
	if _, found, _ := c.Get(ctx, "k"); found {
		t.Fatal("a failed computation was cached")
	}
	var wg sync.WaitGroup
	gate := make(chan struct{})
	var panics atomic.Int64
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.GetOrCompute(ctx, "p", func(context.Context) (string, error) {
				<-gate
				panic("kaboom")
			})
			if errors.Is(err, cache.ErrPanic) {
				panics.Add(1)
			} else {
				t.Errorf("waiter of a panicking computation: got %v; want ErrPanic", err)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg.Wait()
	if panics.Load() != 5 {
		t.Fatalf("%d of 5 waiters saw the panic", panics.Load())
	}
	if _, found, _ := c.Get(ctx, "p"); found {
		t.Fatal("a panicking computation was cached")
	}
}
