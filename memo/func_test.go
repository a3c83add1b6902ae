package memo_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/memo"
)

func TestFuncInvalidateRefresh(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[int64](s, ns, time.Minute)
		var n atomic.Int64
		m := memo.Func(c, func(_ context.Context, k string) (int64, error) {
			if k == "none" {
				return 0, memo.ErrNotFound
			}
			return n.Add(1), nil
		}, &memo.Options{NegativeTTL: time.Minute})
		defer m.Close()
		for range 3 {
			if v, err := m.Get(ctx, "k"); v != 1 || err != nil {
				t.Fatalf("Get = %d, %v; want 1", v, err)
			}
		}
		if v, err := m.Refresh(ctx, "k"); v != 2 || err != nil {
			t.Fatalf("Refresh = %d, %v; want 2", v, err)
		}
		if v, _ := m.Get(ctx, "k"); v != 2 {
			t.Fatalf("Get after Refresh = %d; want 2", v)
		}
		if _, err := m.Get(ctx, "none"); !errors.Is(err, memo.ErrNotFound) {
			t.Fatalf("Get(none) = %v; want ErrNotFound", err)
		}
		if err := m.Invalidate(ctx, "k", "none"); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"k", "none"} {
			assertNoEntry(t, c, k)
		}
		if v, _ := m.Get(ctx, "k"); v != 3 {
			t.Fatalf("Get after Invalidate = %d; want 3", v)
		}
		vals, err := m.GetMulti(ctx, []string{"k", "x", "none"})
		if vals["k"] != 3 || vals["x"] != 4 || len(vals) != 2 || !errors.Is(err, memo.ErrNotFound) {
			t.Fatalf("GetMulti = %v, %v", vals, err)
		}
		if st := c.Stats(); st.Refreshes != 1 || st.Deletes != 2 || st.Computations != 5 {
			// k, its Refresh, none, k again, and one for GetMulti's x and none.
			t.Fatalf("stats = %+v; want 1 refresh, 2 deletes, 5 computations", st)
		}
	})
}

// Refresh keeps the cached value readable while it computes (for the
// other client too), then replaces it.
func TestFuncRefreshKeepsValueReadable(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Minute)
		var calls atomic.Int64
		started, release := make(chan struct{}), make(chan struct{})
		fn := func(context.Context, string) (string, error) {
			if calls.Add(1) == 2 {
				close(started)
				<-release
				return "new", nil
			}
			return "old", nil
		}
		m1, m2 := memo.Func(c1, fn, nil), memo.Func(c2, fn, nil)
		defer m1.Close()
		defer m2.Close()
		if v, err := m1.Get(ctx, "k"); err != nil || v != "old" {
			t.Fatalf("Get = %q, %v", v, err)
		}
		done := make(chan result, 1)
		go func() {
			v, err := m1.Refresh(ctx, "k")
			done <- result{v, err}
		}()
		<-started
		if v, err := m2.Get(ctx, "k"); err != nil || v != "old" {
			t.Fatalf("Get while refreshing = %q, %v; want the old value at once", v, err)
		}
		close(release)
		if r := <-done; r.err != nil || r.v != "new" {
			t.Fatalf("Refresh = %q, %v", r.v, r.err)
		}
		if v, err := m2.Get(ctx, "k"); err != nil || v != "new" {
			t.Fatalf("Get after Refresh = %q, %v; want new", v, err)
		}
		if st := c2.Stats(); st.Hits != 2 || st.Computations != 0 || st.LeaseWaits != 0 {
			t.Fatalf("other client's stats = %+v; want 2 hits, no wait", st)
		}
	})
}

// Refresh waits for a computation that holds the key's lease (in another
// client), then computes its own value.
func TestFuncRefreshWaitsForLease(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c1, c2, _, s2 := twoClients[string](t, b, s, ns, time.Minute)
		var calls atomic.Int64
		var bl *blocked
		fn := func(ctx context.Context, _ string) (string, error) {
			n := calls.Add(1)
			if n == 1 {
				return bl.compute("first")(ctx)
			}
			return fmt.Sprint("refreshed ", n), nil
		}
		m1, m2 := memo.Func(c1, fn, nil), memo.Func(c2, fn, nil)
		defer m1.Close()
		defer m2.Close()
		bl = newBlocked()
		bl.start(t, func() (string, error) { return m1.Get(ctx, "k") })
		done := make(chan result, 1)
		go func() {
			v, err := m2.Refresh(ctx, "k")
			done <- result{v, err}
		}()
		waitFor(t, "Refresh to wait for the lease", func() bool { return s2.GetCalls.Load() >= 2 })
		if calls.Load() != 1 {
			t.Fatalf("Refresh computed while another computation held the lease")
		}
		if r := bl.finish(t); r.err != nil || r.v != "first" {
			t.Fatalf("first Get = %q, %v", r.v, r.err)
		}
		if r := <-done; r.err != nil || r.v != "refreshed 2" {
			t.Fatalf("Refresh = %q, %v; want refreshed 2", r.v, r.err)
		}
		wantValue(t, c1, "k", "refreshed 2")
	})
}

// A cached not-found is replaced by the value Refresh computes.
func TestFuncRefreshReplacesNotFound(t *testing.T) {
	ctx := context.Background()
	c := newCache[string](memStore(t), "m", time.Minute)
	var exists atomic.Bool
	m := memo.Func(c, func(context.Context, string) (string, error) {
		if !exists.Load() {
			return "", memo.ErrNotFound
		}
		return "value", nil
	}, &memo.Options{NegativeTTL: time.Minute})
	defer m.Close()
	if _, err := m.Get(ctx, "k"); !errors.Is(err, memo.ErrNotFound) {
		t.Fatal(err)
	}
	exists.Store(true)
	if _, err := m.Get(ctx, "k"); !errors.Is(err, memo.ErrNotFound) {
		t.Fatalf("Get = %v; want the cached not-found", err)
	}
	if v, err := m.Refresh(ctx, "k"); err != nil || v != "value" {
		t.Fatalf("Refresh = %q, %v", v, err)
	}
	if v, err := m.Get(ctx, "k"); err != nil || v != "value" {
		t.Fatalf("Get after Refresh = %q, %v; want the value", v, err)
	}
}

// Memo.GetMulti reports fn's errors as they are and never caches them as
// not found.
func TestFuncGetMultiErrors(t *testing.T) {
	ctx := context.Background()
	c := newCache[string](memStore(t), "m", time.Minute)
	errDB := errors.New("db timeout")
	var calls atomic.Int64
	m := memo.Func(c, func(_ context.Context, k string) (string, error) {
		calls.Add(1)
		switch k {
		case "down":
			return "", errDB
		case "boom":
			panic("boom")
		}
		return "v" + k, nil
	}, &memo.Options{NegativeTTL: time.Minute})
	defer m.Close()
	got, err := m.GetMulti(ctx, []string{"a", "down", "boom"})
	var kerrs memo.KeyErrors[string]
	if !errors.As(err, &kerrs) || !errors.Is(kerrs["down"], errDB) || !errors.Is(kerrs["boom"], cache.ErrPanic) {
		t.Fatalf("GetMulti errors = %v; want db timeout for down and a panic for boom", err)
	}
	if got["a"] != "va" || len(got) != 1 {
		t.Fatalf("GetMulti values = %v; want a only", got)
	}
	assertNoEntry(t, c, "down")
	assertNoEntry(t, c, "boom")
	before := calls.Load()
	if _, err := m.Get(ctx, "down"); !errors.Is(err, errDB) {
		t.Fatalf("Get after a failure: %v; want fn called again and its error", err)
	}
	if calls.Load() != before+1 {
		t.Fatal("a failure was cached")
	}
}

// Corrupt bytes do not defeat negative caching.
func TestNegativeCachingOverCorruptBytes(t *testing.T) {
	ctx := context.Background()
	s := memStore(t)
	c := newCache[profile](s, "m", time.Minute)
	if err := s.Set(ctx, c.Key("k"), []byte{cache.EntryMagic}, 0); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	for range 3 {
		_, err := memo.GetOrCompute(ctx, c, "k", func(context.Context) (profile, error) {
			calls.Add(1)
			return profile{}, memo.ErrNotFound
		}, &memo.Options{NegativeTTL: time.Minute})
		if !errors.Is(err, memo.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("computations = %d; want 1", calls.Load())
	}
}

// Memo.Close waits for a flight whose caller has gone: it cancels the
// flight's context, and waits for the computation, which here ignores it.
func TestFuncCloseWaitsForFlights(t *testing.T) {
	c := newCache[string](memStore(t), "m", time.Minute)
	started, cancelled, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	m := memo.Func(c, func(ctx context.Context, _ string) (string, error) {
		close(started)
		<-ctx.Done()
		close(cancelled)
		<-release
		finished.Store(true)
		return "v", nil
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	if _, err := m.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get = %v; want Canceled", err)
	}
	closed := make(chan struct{})
	go func() { m.Close(); close(closed) }()
	<-cancelled // Close cancelled the flight, and waits for it
	select {
	case <-closed:
		t.Fatal("Close returned while the flight still ran")
	default:
	}
	close(release)
	<-closed
	if !finished.Load() {
		t.Fatal("Close returned before the computation finished")
	}
	// What the computation returned after its ctx ended is not stored, and
	// its lease is given up.
	assertNoEntry(t, c, "k")
}

// Memo.Close cancels a background refresh in progress, waits for it and
// returns; what the refresh returns then is not stored, and the value is
// put back without the refresh's lease. The Memo stays usable.
func TestFuncCloseCancelsRefresh(t *testing.T) {
	ctx := context.Background()
	const ttl, ahead = time.Minute, 0.001
	c := newCache[int64](memStore(t), "m", ttl)
	var calls atomic.Int64
	refreshing := make(chan struct{})
	refreshErr := make(chan error, 1)
	m := memo.Func(c, func(ctx context.Context, _ string) (int64, error) {
		n := calls.Add(1)
		if n == 2 { // the refresh: runs until its ctx ends
			close(refreshing)
			<-ctx.Done()
			refreshErr <- ctx.Err()
		}
		return n, nil
	}, &memo.Options{RefreshAhead: ahead})
	if v, err := m.Get(ctx, "k"); err != nil || v != 1 {
		t.Fatalf("first Get = %d, %v", v, err)
	}
	sleepPastRefreshPoint(t, c, "k", ttl, ahead)
	if v, err := m.Get(ctx, "k"); err != nil || v != 1 {
		t.Fatalf("Get past the refresh point = %d, %v; want the cached 1", v, err)
	}
	<-refreshing
	closed := make(chan struct{})
	go func() { m.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(bound):
		t.Fatal("Close did not return: it did not stop the refresh")
	}
	if err := <-refreshErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("the refresh's ctx ended with %v; want Canceled", err)
	}
	if e := entry(t, c, "k"); e.Value != 1 || e.Lease {
		t.Fatalf("entry after Close = %+v; want the value 1 without a lease", e)
	}
	// Still usable: a new key is computed and stored.
	if v, err := m.Get(ctx, "other"); err != nil || v != 3 {
		t.Fatalf("Get after Close = %d, %v; want 3", v, err)
	}
	if v, found, _ := c.Get(ctx, "other"); !found || v != 3 {
		t.Fatalf("after Close, the value was not stored: %d, %v", v, found)
	}
	m.Close()
}

// Memo.Close cancels the flight of a miss; a caller still waiting gets the
// computation's error, and the lease is given up.
func TestFuncCloseCancelsFlight(t *testing.T) {
	c := newCache[string](memStore(t), "m", time.Minute)
	started := make(chan struct{})
	m := memo.Func(c, func(ctx context.Context, _ string) (string, error) {
		close(started)
		<-ctx.Done()
		return "", ctx.Err()
	}, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := m.Get(context.Background(), "k")
		errc <- err
	}()
	<-started
	m.Close()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting caller got %v; want Canceled", err)
	}
	assertNoEntry(t, c, "k")
}

// A call made while Memo.Close waits computes nothing: its flight starts
// on the cancelled base and stops at once.
func TestFuncCloseStopsFlightsStartedWhileWaiting(t *testing.T) {
	c := newCache[string](memStore(t), "m", time.Minute)
	started, cancelled, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var others atomic.Int64
	m := memo.Func(c, func(ctx context.Context, k string) (string, error) {
		if k != "k" {
			others.Add(1)
			return "computed " + k, nil
		}
		close(started)
		<-ctx.Done()
		close(cancelled)
		<-release // ignores its ctx: Close waits
		return "", ctx.Err()
	}, nil)
	go m.Get(context.Background(), "k")
	<-started
	closed := make(chan struct{})
	go func() { m.Close(); close(closed) }()
	<-cancelled // Close cancelled the flight of k and waits for it
	for i := range 20 {
		k := "other" + string(rune('a'+i))
		if v, err := m.Get(context.Background(), k); !errors.Is(err, context.Canceled) {
			t.Errorf("Get(%s) while Close waits = %q, %v; want Canceled", k, v, err)
		}
		assertNoEntry(t, c, k)
	}
	close(release)
	<-closed
	if n := others.Load(); n != 0 {
		t.Fatalf("%d computations started while Close waited; want none", n)
	}
}

// FuncBatch: GetMulti calls the batch loader once for all the keys it
// misses; Get calls it with one key; a key it does not return is not
// found.
func TestFuncBatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		c := newCache[string](s, ns, time.Minute)
		var calls atomic.Int64
		var asked atomic.Int64
		m := memo.FuncBatch(c, func(ctx context.Context, keys []string) (map[string]string, error) {
			calls.Add(1)
			asked.Add(int64(len(keys)))
			out := map[string]string{}
			for _, k := range keys {
				if k != "nobody" {
					out[k] = "v-" + k
				}
			}
			return out, nil
		}, nil)
		defer m.Close()
		keys := make([]string, 50)
		for i := range keys {
			keys[i] = fmt.Sprintf("k%d", i)
		}
		got, err := m.GetMulti(ctx, keys)
		if err != nil || len(got) != 50 {
			t.Fatalf("GetMulti: %d values, %v", len(got), err)
		}
		if calls.Load() != 1 || asked.Load() != 50 {
			t.Fatalf("50 misses: %d batch calls for %d keys; want 1 for 50", calls.Load(), asked.Load())
		}
		if v, err := m.Get(ctx, "k3"); v != "v-k3" || err != nil {
			t.Fatalf("Get of a cached key = %q, %v", v, err)
		}
		if v, err := m.Get(ctx, "new"); v != "v-new" || err != nil || calls.Load() != 2 {
			t.Fatalf("Get of a new key = %q, %v, %d calls; want one more call", v, err, calls.Load())
		}
		if _, err := m.Get(ctx, "nobody"); !errors.Is(err, memo.ErrNotFound) {
			t.Fatalf("Get of a key the batch does not return: %v; want ErrNotFound", err)
		}
	})
}

// FuncBatch across two clients: the clients ask for overlapping batches at
// the same time (the second while the first one's batch loader runs), and
// every key is computed once in all: the second client's loader is asked
// only for the keys the first did not lease, and it gets the others from
// the first client's computation.
func TestFuncBatchAcrossClients(t *testing.T) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c1, c2, _, _ := twoClients[string](t, b, s, ns, time.Minute)
		var mu sync.Mutex
		var asked [][]string
		second := make(chan struct{})
		batch := func(ctx context.Context, keys []string) (map[string]string, error) {
			mu.Lock()
			asked = append(asked, slices.Clone(keys))
			n := len(asked)
			mu.Unlock()
			switch n {
			case 1:
				// The first batch holds its leases until the second
				// client has asked for its own batch.
				select {
				case <-second:
				case <-time.After(bound):
					t.Error("the second client's batch never came")
				}
			case 2:
				close(second)
			}
			out := make(map[string]string, len(keys))
			for _, k := range keys {
				out[k] = "v-" + k
			}
			return out, nil
		}
		m1, m2 := memo.FuncBatch(c1, batch, nil), memo.FuncBatch(c2, batch, nil)
		defer m1.Close()
		defer m2.Close()
		keys := func(from, to int) []string {
			var ks []string
			for i := from; i < to; i++ {
				ks = append(ks, fmt.Sprintf("k%02d", i))
			}
			return ks
		}
		first := goCall(func() (map[string]string, error) { return m1.GetMulti(ctx, keys(0, 30)) })
		waitFor(t, "the first batch to be asked for", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(asked) == 1
		})
		got2, err := m2.GetMulti(ctx, keys(15, 45))
		if err != nil || len(got2) != 30 {
			t.Fatalf("client 2: %d values, %v; want 30", len(got2), err)
		}
		got1, err := first.wait(t)
		if err != nil || len(got1) != 30 {
			t.Fatalf("client 1: %d values, %v; want 30", len(got1), err)
		}
		for k, v := range got2 {
			if v != "v-"+k {
				t.Fatalf("client 2: %s = %q", k, v)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		seen := map[string]int{}
		for _, ks := range asked {
			for _, k := range ks {
				seen[k]++
			}
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("%s computed %d times; want once (batches %v)", k, n, asked)
			}
		}
		if len(seen) != 45 || len(asked) != 2 {
			t.Fatalf("%d keys in %d batches (%v); want 45 keys in 2 batches", len(seen), len(asked), asked)
		}
		// Contention: the second batch was asked for while the first held
		// its leases (the first waited for it), and so without their keys.
		if !slices.Equal(asked[0], keys(0, 30)) || !slices.Equal(asked[1], keys(30, 45)) {
			t.Fatalf("batches %v; want k00-k29, then k30-k44 (the keys client 1 did not lease)", asked)
		}
	})
}
