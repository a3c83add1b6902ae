package memstore

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/typedcache/typedcache/cache"
)

// A Store made after another one (a process restarted) hands out fences
// greater than the old Store's: they come from the clock, not from a count
// that starts again.
func TestFenceNewStore(t *testing.T) {
	ctx := context.Background()
	var last int64
	for gen := range 3 {
		s := newStore(t, nil)
		for i := range 3 {
			f, err := s.AddFenced(ctx, "lock", []byte("me"), 0)
			if err != nil {
				t.Fatal(err)
			}
			if f <= last {
				t.Fatalf("store %d, fence %d: got %d; want > %d (the fence before, of this store or an earlier one)", gen+1, i+1, f, last)
			}
			last = f
			if _, err := s.Delete(ctx, "lock"); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Fences of one key grow strictly in the order of acquisition, while many
// goroutines race for a few keys (all drawing on the store's one clock).
func TestFenceConcurrent(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	const (
		keys       = 4
		goroutines = 16
		rounds     = 500
	)
	var (
		mu        sync.Mutex
		fences    [keys][]int64 // in acquisition order: only the holder appends
		contended atomic.Int64  // AddFenced calls that found the key held
		wg        sync.WaitGroup
	)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			me := []byte(strconv.Itoa(g))
			for r := range rounds {
				k := (g + r) % keys
				key := "lock" + strconv.Itoa(k)
				f, err := s.AddFenced(ctx, key, me, 0)
				if errors.Is(err, cache.ErrExists) {
					contended.Add(1)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				fences[k] = append(fences[k], f)
				mu.Unlock()
				if ok, err := s.DeleteIfEqual(ctx, key, me); !ok || err != nil {
					t.Errorf("release of %s: got %v, %v; want true, nil", key, ok, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if contended.Load() == 0 {
		t.Fatal("no AddFenced found its key held: the goroutines did not race")
	}
	for k, fs := range fences {
		if len(fs) == 0 {
			t.Fatalf("key %d was never acquired", k)
		}
		for i := 1; i < len(fs); i++ {
			if fs[i] <= fs[i-1] {
				t.Fatalf("key %d, acquisition %d: fence %d; want > %d (the acquisition before)", k, i+1, fs[i], fs[i-1])
			}
		}
	}
	t.Logf("%d acquisitions, %d contended calls", len(fences[0])+len(fences[1])+len(fences[2])+len(fences[3]), contended.Load())
}
