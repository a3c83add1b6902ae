package memcachestore

import (
	"errors"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/typedcache/typedcache/cache"
)

// TestServerExpiredCAS checks the memcached behaviour DeleteIfEqual relies
// on: a cas with exptime -1 removes the key, and the key can then be added.
func TestServerExpiredCAS(t *testing.T) {
	_, client, k := testStore(t)
	key := k("x")
	if err := client.Set(&memcache.Item{Key: key, Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	it, err := client.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.CompareAndSwap(&memcache.Item{Key: key, Expiration: -1, CasID: it.CasID}); err != nil {
		t.Fatalf("cas with exptime -1: %v", err)
	}
	if _, err := client.Get(key); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("Get after cas with exptime -1: %v; want a miss", err)
	}
	if err := client.Add(&memcache.Item{Key: key, Value: []byte("w")}); err != nil {
		t.Fatalf("Add after cas with exptime -1: %v; want nil", err)
	}
}

func TestIncrement(t *testing.T) {
	s, _, k := testStore(t)
	ctx := t.Context()
	tests := []struct {
		name    string
		initial string
		missing bool
		delta   int64
		want    int64
		wantErr error
	}{
		{"missing", "", true, 5, 5, nil},
		{"missing negative", "", true, -5, -5, nil},
		{"positive", "10", false, 5, 15, nil},
		{"to negative", "3", false, -5, -2, nil},
		{"negative", "-3", false, 1, -2, nil},
		{"negative down", "-3", false, -10, -13, nil},
		{"shrinks", "100", false, -99, 1, nil},
		{"zero delta", "7", false, 0, 7, nil},
		{"plus sign", "+5", false, 1, 0, cache.ErrNotInteger},
		{"leading zero", "05", false, 1, 0, cache.ErrNotInteger},
		{"minus zero", "-0", false, 1, 0, cache.ErrNotInteger},
		{"max", strconv.FormatInt(math.MaxInt64-1, 10), false, 1, math.MaxInt64, nil},
		{"min", strconv.FormatInt(math.MinInt64+1, 10), false, -1, math.MinInt64, nil},
		{"overflow", strconv.FormatInt(math.MaxInt64, 10), false, 1, 0, cache.ErrNotInteger},
		{"underflow", strconv.FormatInt(math.MinInt64, 10), false, -1, 0, cache.ErrNotInteger},
		{"text", "abc", false, 1, 0, cache.ErrNotInteger},
		{"space", " 5", false, 1, 0, cache.ErrNotInteger},
		{"trailing space", "5 ", false, 1, 0, cache.ErrNotInteger},
		{"empty", "", false, 1, 0, cache.ErrNotInteger},
		{"uint64", "18446744073709551615", false, 1, 0, cache.ErrNotInteger},
	}
	for i, tt := range tests {
		key := k("inc" + strconv.Itoa(i))
		if !tt.missing {
			mustSet(t, s, key, []byte(tt.initial), 0)
		}
		got, err := s.Increment(ctx, key, tt.delta)
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("%s: Increment(%q, %d) = %d, %v; want %d, %v", tt.name, tt.initial, tt.delta, got, err, tt.want, tt.wantErr)
			continue
		}
		want := []byte(strconv.FormatInt(tt.want, 10))
		if tt.wantErr != nil {
			want = []byte(tt.initial)
		}
		wantValue(t, s, key, want)
	}
}

// TestIncrementKeepsTTL checks that an Increment keeps the key's expiry, also
// after an Expire, and that a key without expiry keeps none.
func TestIncrementKeepsTTL(t *testing.T) {
	s, _, k := testStore(t)
	ctx := t.Context()
	mustSet(t, s, k("t"), []byte("1"), 2*time.Second)
	mustSet(t, s, k("e"), []byte("1"), 0)
	if ok, err := s.Expire(ctx, k("e"), 2*time.Second); !ok || err != nil {
		t.Fatalf("Expire = %v, %v", ok, err)
	}
	mustSet(t, s, k("none"), []byte("1"), 0)
	for _, key := range []string{k("t"), k("e"), k("none")} {
		if n, err := s.Increment(ctx, key, 1); n != 2 || err != nil {
			t.Fatalf("Increment(%q) = %d, %v; want 2, nil", key, n, err)
		}
	}
	waitMissing(t, s, k("t"), 6*time.Second)
	waitMissing(t, s, k("e"), 6*time.Second)
	wantValue(t, s, k("none"), []byte("2"))
}

// TestIncrementForeignFlags: a value written by another client with flags of
// its own keeps them.
func TestIncrementForeignFlags(t *testing.T) {
	s, client, k := testStore(t)
	key := k("f")
	if err := client.Set(&memcache.Item{Key: key, Value: []byte("41"), Flags: 7}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Increment(t.Context(), key, 1); n != 42 || err != nil {
		t.Fatalf("Increment = %d, %v; want 42, nil", n, err)
	}
	it, err := client.Get(key)
	if err != nil || string(it.Value) != "42" || it.Flags != 7 {
		t.Fatalf("after Increment: %+v, %v; want value 42, flags 7", it, err)
	}
}

// TestIncrementPastStamp: a key whose expiry stamp has passed, which
// memcached still holds (its clock ticks once a second; here the raw client
// stored it without exptime), is a missing key to Increment: it becomes
// delta, without expiry, whatever it held.
func TestIncrementPastStamp(t *testing.T) {
	s, client, k := testStore(t)
	_, past := expiry(time.Second, time.Now().Add(-1500*time.Millisecond))
	for i, held := range []string{"41", "not a number"} {
		key := k("past" + strconv.Itoa(i))
		if err := client.Set(&memcache.Item{Key: key, Value: []byte(held), Flags: past}); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Increment(t.Context(), key, 5); n != 5 || err != nil {
			t.Fatalf("Increment of a key holding %q past its stamp = %d, %v; want 5, nil (a fresh key)", held, n, err)
		}
		it, err := client.Get(key)
		if err != nil || string(it.Value) != "5" || it.Flags != 0 {
			t.Fatalf("after Increment: %+v, %v; want value 5, flags 0 (no expiry)", it, err)
		}
	}
}

// TestIncrementConcurrent: concurrent increments from several stores lose
// nothing, and really did contend.
func TestIncrementConcurrent(t *testing.T) {
	s, client, k := testStore(t)
	key := k("c")
	const workers, each = 8, 50
	var attempts atomic.Int64
	stores := make([]*Store, workers)
	for i := range stores {
		stores[i] = New(client, nil)
		stores[i].testHookAfterRead = func() { attempts.Add(1) }
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := stores[w].Increment(t.Context(), key, 1); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Increment: %v", err)
	}
	wantValue(t, s, key, []byte(strconv.Itoa(workers*each)))
	// Every increment but the one that created the key reads before its
	// cas; more reads than that means some cas lost a race and retried.
	if got := attempts.Load(); got <= workers*each-1 {
		t.Errorf("%d read-cas attempts for %d increments: no contention happened; the test proves nothing", got, workers*each)
	}
}

// hookOnce makes s run f once, at its next read-modify-write, between the
// read and the cas.
func hookOnce(s *Store, f func()) {
	var once sync.Once
	s.testHookAfterRead = func() { once.Do(f) }
}

// TestInterleavings makes another client write between the read and the cas
// of each read-modify-write operation.
func TestInterleavings(t *testing.T) {
	s, client, k := testStore(t)
	ctx := t.Context()
	other := New(client, nil)

	t.Run("DeleteIfEqual", func(t *testing.T) {
		key := k("lock")
		mustSet(t, s, key, []byte("mine"), time.Minute)
		hookOnce(s, func() { mustSet(t, other, key, []byte("theirs"), time.Minute) })
		if ok, err := s.DeleteIfEqual(ctx, key, []byte("mine")); ok || err != nil {
			t.Fatalf("DeleteIfEqual = %v, %v; want false, nil", ok, err)
		}
		wantValue(t, s, key, []byte("theirs"))
	})
	t.Run("DeleteIfEqual same value rewritten", func(t *testing.T) {
		key := k("lock2")
		mustSet(t, s, key, []byte("mine"), time.Minute)
		hookOnce(s, func() { mustSet(t, other, key, []byte("mine"), time.Minute) })
		if ok, err := s.DeleteIfEqual(ctx, key, []byte("mine")); !ok || err != nil {
			t.Fatalf("DeleteIfEqual = %v, %v; want true, nil", ok, err)
		}
		wantMissing(t, s, key)
	})
	t.Run("DeleteIfEqual deleted meanwhile", func(t *testing.T) {
		key := k("lock3")
		mustSet(t, s, key, []byte("mine"), time.Minute)
		hookOnce(s, func() { _, _ = other.Delete(ctx, key) })
		if ok, err := s.DeleteIfEqual(ctx, key, []byte("mine")); ok || err != nil {
			t.Fatalf("DeleteIfEqual = %v, %v; want false, nil", ok, err)
		}
	})
	t.Run("ExtendIfEqual", func(t *testing.T) {
		key := k("ext")
		mustSet(t, s, key, []byte("mine"), time.Minute)
		hookOnce(s, func() { mustSet(t, other, key, []byte("theirs"), 0) })
		if ok, err := s.ExtendIfEqual(ctx, key, []byte("mine"), time.Second); ok || err != nil {
			t.Fatalf("ExtendIfEqual = %v, %v; want false, nil", ok, err)
		}
		wantValue(t, s, key, []byte("theirs"))
	})
	t.Run("Increment", func(t *testing.T) {
		key := k("inc")
		mustSet(t, s, key, []byte("1"), 0)
		hookOnce(s, func() { mustSet(t, other, key, []byte("100"), 0) })
		if n, err := s.Increment(ctx, key, 1); n != 101 || err != nil {
			t.Fatalf("Increment = %d, %v; want 101, nil (no lost update)", n, err)
		}
	})
	t.Run("Increment to text", func(t *testing.T) {
		key := k("inc2")
		mustSet(t, s, key, []byte("1"), 0)
		hookOnce(s, func() { mustSet(t, other, key, []byte("abc"), 0) })
		if n, err := s.Increment(ctx, key, 1); !errors.Is(err, cache.ErrNotInteger) {
			t.Fatalf("Increment = %d, %v; want ErrNotInteger", n, err)
		}
		wantValue(t, s, key, []byte("abc"))
	})
	t.Run("Increment deleted meanwhile", func(t *testing.T) {
		key := k("inc3")
		mustSet(t, s, key, []byte("1"), 0)
		hookOnce(s, func() { _, _ = other.Delete(ctx, key) })
		if n, err := s.Increment(ctx, key, 1); n != 1 || err != nil {
			t.Fatalf("Increment = %d, %v; want 1, nil (created afresh)", n, err)
		}
	})
	t.Run("Expire", func(t *testing.T) {
		key := k("exp")
		mustSet(t, s, key, []byte("a"), 0)
		hookOnce(s, func() { mustSet(t, other, key, []byte("b"), 0) })
		if ok, err := s.Expire(ctx, key, time.Second); !ok || err != nil {
			t.Fatalf("Expire = %v, %v; want true, nil", ok, err)
		}
		waitMissing(t, s, key, 5*time.Second) // the new value got the ttl
	})
}

func TestCompareAndSwap(t *testing.T) {
	s, _, k := testStore(t)
	ctx := t.Context()
	key := k("cas")

	v, tok, err := s.Gets(ctx, key)
	if !errors.Is(err, cache.ErrNotFound) || v != nil || !tok.Absent() {
		t.Fatalf("Gets(missing) = %q, absent=%v, %v; want nil, absent, ErrNotFound", v, tok.Absent(), err)
	}
	if err := s.CompareAndSwap(ctx, key, []byte("1"), tok, 0); err != nil {
		t.Fatalf("CompareAndSwap(absent) = %v; want nil", err)
	}
	if err := s.CompareAndSwap(ctx, key, []byte("x"), tok, 0); !errors.Is(err, cache.ErrConflict) {
		t.Fatalf("CompareAndSwap(absent) on a present key = %v; want ErrConflict", err)
	}

	v, tok, err = s.Gets(ctx, key)
	if err != nil || string(v) != "1" || tok.Absent() {
		t.Fatalf("Gets = %q, absent=%v, %v; want 1, present, nil", v, tok.Absent(), err)
	}
	if err := s.CompareAndSwap(ctx, key, []byte("2"), tok, time.Minute); err != nil {
		t.Fatalf("CompareAndSwap = %v; want nil", err)
	}
	if err := s.CompareAndSwap(ctx, key, []byte("3"), tok, 0); !errors.Is(err, cache.ErrConflict) {
		t.Fatalf("CompareAndSwap with a used token = %v; want ErrConflict", err)
	}
	wantValue(t, s, key, []byte("2"))

	// Rewritten with the same value: still a conflict (versions, not values).
	_, tok, _ = s.Gets(ctx, key)
	mustSet(t, s, key, []byte("2"), 0)
	if err := s.CompareAndSwap(ctx, key, []byte("4"), tok, 0); !errors.Is(err, cache.ErrConflict) {
		t.Fatalf("CompareAndSwap after a rewrite = %v; want ErrConflict", err)
	}
	// Vanished.
	_, tok, _ = s.Gets(ctx, key)
	if _, err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := s.CompareAndSwap(ctx, key, []byte("5"), tok, 0); !errors.Is(err, cache.ErrConflict) {
		t.Fatalf("CompareAndSwap after a delete = %v; want ErrConflict", err)
	}
	wantMissing(t, s, key)
	// A token that no Gets returned.
	if err := s.CompareAndSwap(ctx, key, []byte("6"), cache.NewToken([]byte("bad")), 0); !errors.Is(err, cache.ErrConflict) {
		t.Fatalf("CompareAndSwap(malformed token) = %v; want ErrConflict", err)
	}
}

func TestDeleteAndExtendIfEqual(t *testing.T) {
	s, _, k := testStore(t)
	ctx := t.Context()
	key := k("l")
	if ok, err := s.DeleteIfEqual(ctx, key, []byte("a")); ok || err != nil {
		t.Errorf("DeleteIfEqual(missing) = %v, %v; want false, nil", ok, err)
	}
	if ok, err := s.ExtendIfEqual(ctx, key, []byte("a"), time.Second); ok || err != nil {
		t.Errorf("ExtendIfEqual(missing) = %v, %v; want false, nil", ok, err)
	}
	mustSet(t, s, key, []byte("a"), time.Minute)
	if ok, err := s.DeleteIfEqual(ctx, key, []byte("b")); ok || err != nil {
		t.Errorf("DeleteIfEqual(other value) = %v, %v; want false, nil", ok, err)
	}
	if ok, err := s.ExtendIfEqual(ctx, key, []byte("b"), time.Second); ok || err != nil {
		t.Errorf("ExtendIfEqual(other value) = %v, %v; want false, nil", ok, err)
	}
	wantValue(t, s, key, []byte("a"))
	if ok, err := s.DeleteIfEqual(ctx, key, []byte("a")); !ok || err != nil {
		t.Errorf("DeleteIfEqual = %v, %v; want true, nil", ok, err)
	}
	wantMissing(t, s, key)

	mustSet(t, s, key, []byte{}, time.Minute)
	if ok, err := s.ExtendIfEqual(ctx, key, nil, time.Second); !ok || err != nil {
		t.Errorf("ExtendIfEqual(empty) = %v, %v; want true, nil", ok, err)
	}
	waitMissing(t, s, key, 5*time.Second)
}
