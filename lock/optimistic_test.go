package lock_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/lock"
)

type counter struct {
	N     int
	Owner string
}

// Ported from aiocache: the token is stable while nothing changes, CAS
// succeeds, CAS after a conflicting set fails, CAS with a TTL expires.
func TestOptimisticLock(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[counter](t, s, ns)
		if err := c.Set(ctx, "k", counter{N: 1}); err != nil {
			t.Fatal(err)
		}
		l1, err := lock.NewOptimisticLock(ctx, c, "k")
		if err != nil {
			t.Fatal(err)
		}
		l2, err := lock.NewOptimisticLock(ctx, c, "k")
		if err != nil {
			t.Fatal(err)
		}
		_, _, t1, _ := c.Gets(ctx, "k")
		_, _, t2, _ := c.Gets(ctx, "k")
		if !bytes.Equal(t1.Bytes(), t2.Bytes()) {
			t.Fatalf("token changed while nothing changed: %x then %x", t1.Bytes(), t2.Bytes())
		}
		if v, found := l1.Value(); !found || v.N != 1 {
			t.Fatalf("Value() = %v, %v; want {1}, true", v, found)
		}
		if err := l1.CAS(ctx, counter{N: 2}); err != nil {
			t.Fatalf("CAS: %v", err)
		}
		if err := l2.CAS(ctx, counter{N: 3}); !errors.Is(err, lock.ErrConflict) {
			t.Fatalf("CAS after a conflicting write: got %v; want ErrConflict", err)
		}
		if err := l1.CAS(ctx, counter{N: 4}); !errors.Is(err, lock.ErrConflict) {
			t.Fatalf("second CAS on one lock: got %v; want ErrConflict", err)
		}
		if v, _, _ := c.Get(ctx, "k"); v.N != 2 {
			t.Fatalf("value = %v; want {2}", v)
		}

		// A conflicting plain Set.
		l3, _ := lock.NewOptimisticLock(ctx, c, "k")
		if err := c.Set(ctx, "k", counter{N: 9}); err != nil {
			t.Fatal(err)
		}
		if err := l3.CAS(ctx, counter{N: 5}); !errors.Is(err, lock.ErrConflict) {
			t.Fatalf("CAS after Set: got %v; want ErrConflict", err)
		}

		// CAS with a TTL, through a view of the cache.
		ttl := 200 * time.Millisecond
		if b.Name == "memcached" {
			ttl = time.Second
		}
		l4, _ := lock.NewOptimisticLock(ctx, c.WithTTL(ttl), "k")
		if err := l4.CAS(ctx, counter{N: 10}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(ttl + 5*time.Second)
		for {
			_, found, err := c.Get(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			if !found {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("value written by CAS with ttl %v still there after %v", ttl, ttl+5*time.Second)
			}
			time.Sleep(ttl / 4)
		}
	})
}

// A lock on an absent key writes only if the key is still absent: unlike
// aiocache, a value created meanwhile is not overwritten.
func TestOptimisticLockAbsentKey(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[counter](t, s, ns)
		l, err := lock.NewOptimisticLock(ctx, c, "new")
		if err != nil {
			t.Fatal(err)
		}
		if _, found := l.Value(); found {
			t.Fatal("Value() found a key never written")
		}
		if err := c.Set(ctx, "new", counter{N: 7, Owner: "other"}); err != nil {
			t.Fatal(err)
		}
		if err := l.CAS(ctx, counter{N: 1}); !errors.Is(err, lock.ErrConflict) {
			t.Fatalf("CAS over a value created meanwhile: got %v; want ErrConflict", err)
		}
		if v, _, _ := c.Get(ctx, "new"); v.Owner != "other" {
			t.Fatalf("value = %v; want the other writer's", v)
		}
		l2, _ := lock.NewOptimisticLock(ctx, c, "fresh")
		if err := l2.CAS(ctx, counter{N: 1}); err != nil {
			t.Fatalf("CAS of a key still absent: %v", err)
		}
	})
}

// Update loses no increment under contention in one process, and returns
// the value it wrote: every count from 1 to the last, each once.
func TestUpdateConcurrent(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[counter](t, s, ns)
		const goroutines, each = 8, 25
		var conflicts atomic.Int64
		var mu sync.Mutex
		returned := make(map[int]int) // value returned by Update -> how many times
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range each {
					attempts := 0
					v, err := lock.Update(ctx, c, "n", func(old counter, _ bool) (counter, error) {
						attempts++
						old.N++
						time.Sleep(100 * time.Microsecond) // some work between read and write
						return old, nil
					}, &lock.UpdateOptions{MaxAttempts: 1000})
					if err != nil {
						t.Error(err)
						return
					}
					conflicts.Add(int64(attempts - 1))
					mu.Lock()
					returned[v.N]++
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		if conflicts.Load() == 0 {
			t.Fatal("no update conflicted: no contention to test")
		}
		v, _, err := c.Get(ctx, "n")
		if err != nil || v.N != goroutines*each {
			t.Fatalf("final count %d (err %v); want %d", v.N, err, goroutines*each)
		}
		for n := 1; n <= goroutines*each; n++ {
			if returned[n] != 1 {
				t.Errorf("Update returned %d %d times; want once (each Update returns the value it wrote)", n, returned[n])
			}
		}
	})
}

func TestUpdateErrors(t *testing.T) {
	ctx := context.Background()
	s := teststores.Get(t, "memory").New(t)
	c := newCache[counter](t, s, namespace(t))
	boom := errors.New("boom")
	if v, err := lock.Update(ctx, c, "k", func(counter, bool) (counter, error) { return counter{N: 1}, boom }, nil); !errors.Is(err, boom) || v != (counter{}) {
		t.Fatalf("Update with a failing fn: got %v, %v; want the zero value and boom", v, err)
	}
	// Every attempt conflicts: a writer changes the key inside fn.
	n := 0
	_, err := lock.Update(ctx, c, "k", func(old counter, _ bool) (counter, error) {
		n++
		c.Set(ctx, "k", counter{N: n})
		return old, nil
	}, &lock.UpdateOptions{MaxAttempts: 3, MinBackoff: time.Microsecond})
	if !errors.Is(err, lock.ErrConflict) || n != 3 {
		t.Fatalf("Update that always conflicts: got %v after %d attempts; want ErrConflict after 3", err, n)
	}
}

// Update returns the value it wrote, from an absent key and from a present
// one.
func TestUpdateReturnsValue(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[counter](t, s, ns)
		for i, want := range []counter{{N: 1, Owner: "absent"}, {N: 2, Owner: "present"}} {
			v, err := lock.Update(ctx, c, "k", func(old counter, found bool) (counter, error) {
				if found != (i > 0) {
					t.Errorf("update %d: found = %v; want %v", i, found, i > 0)
				}
				owner := "absent"
				if found {
					owner = "present"
				}
				return counter{N: old.N + 1, Owner: owner}, nil
			}, nil)
			if err != nil || v != want {
				t.Fatalf("update %d: returned %+v, %v; want %+v, nil", i, v, err, want)
			}
			if got, _, err := c.Get(ctx, "k"); err != nil || got != want {
				t.Fatalf("update %d: stored %+v, %v; want %+v", i, got, err, want)
			}
		}
	})
}
