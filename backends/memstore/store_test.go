package memstore

// Tests of what is specific to memstore; the behaviour every Store shares is
// checked by the conformance suite (conformance_test.go). These tests are in
// the package itself only to call otter's CleanUp, so that the size bound
// can be checked without waiting for otter's maintenance.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/maypok86/otter/v2"
	"go.uber.org/goleak"

	"github.com/typedcache/typedcache/cache"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newStore(t testing.TB, opts *Options) *Store {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestNewOptions(t *testing.T) {
	tests := []struct {
		name     string
		opts     *Options
		wantErr  bool
		weighted bool
		max      uint64
	}{
		// Always weighted, so that lease locks can weigh nothing; by
		// entries, each weighs one.
		{name: "nil", opts: nil, weighted: true, max: DefaultMaxEntries},
		{name: "zero", opts: &Options{}, weighted: true, max: DefaultMaxEntries},
		{name: "entries", opts: &Options{MaxEntries: 10}, weighted: true, max: 10},
		{name: "bytes", opts: &Options{MaxBytes: 1 << 20}, weighted: true, max: 1 << 20},
		{name: "both", opts: &Options{MaxEntries: 10, MaxBytes: 1 << 20}, wantErr: true},
		{name: "negative entries", opts: &Options{MaxEntries: -1}, wantErr: true},
		{name: "negative bytes", opts: &Options{MaxBytes: -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.opts)
			if tt.wantErr {
				if err == nil {
					s.Close()
					t.Fatalf("New(%+v) = nil error; want an error", tt.opts)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%+v): %v", tt.opts, err)
			}
			defer s.Close()
			if got := s.c.IsWeighted(); got != tt.weighted {
				t.Errorf("IsWeighted() = %v; want %v", got, tt.weighted)
			}
			if got := s.c.GetMaximum(); got != tt.max {
				t.Errorf("GetMaximum() = %d; want %d", got, tt.max)
			}
		})
	}
}

// readable counts the keys key-0 ... key-(n-1) that the store returns.
func readable(t *testing.T, s *Store, n int) int {
	t.Helper()
	count := 0
	for i := range n {
		ok, err := s.Exists(context.Background(), "key-"+strconv.Itoa(i))
		if err != nil {
			t.Fatalf("Exists: %v", err)
		}
		if ok {
			count++
		}
	}
	return count
}

func TestMaxEntriesEvicts(t *testing.T) {
	const bound, written = 100, 1000
	s := newStore(t, &Options{MaxEntries: bound})
	ctx := context.Background()
	for i := range written {
		if err := s.Set(ctx, "key-"+strconv.Itoa(i), []byte("v"), 0); err != nil {
			t.Fatalf("Set: %v", err)
		}
	}
	s.c.CleanUp()
	if got := s.c.EstimatedSize(); got > bound {
		t.Errorf("EstimatedSize() = %d; want at most %d", got, bound)
	}
	got := readable(t, s, written)
	if got > bound || got == 0 {
		t.Errorf("%d of %d keys readable; want between 1 and %d", got, written, bound)
	}
}

func TestMaxBytesEvicts(t *testing.T) {
	const written = 1000
	value := bytes.Repeat([]byte("x"), 1000)
	weight := int64(len("key-000") + len(value) + entryOverhead)
	maxBytes := 50 * weight
	s := newStore(t, &Options{MaxBytes: maxBytes})
	ctx := context.Background()
	for i := range written {
		if err := s.Set(ctx, fmt.Sprintf("key-%03d", i), value, 0); err != nil {
			t.Fatalf("Set: %v", err)
		}
	}
	s.c.CleanUp()
	if got := s.c.WeightedSize(); got > uint64(maxBytes) {
		t.Errorf("WeightedSize() = %d; want at most %d", got, maxBytes)
	}
	count := 0
	for i := range written {
		if ok, _ := s.Exists(ctx, fmt.Sprintf("key-%03d", i)); ok {
			count++
		}
	}
	if got := int64(count) * weight; got > maxBytes || count == 0 {
		t.Errorf("%d keys of weight %d readable (%d bytes); want between 1 key and %d bytes", count, weight, got, maxBytes)
	}
}

func TestValuesAreCopies(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	in := []byte("abc")
	if err := s.Set(ctx, "set", in, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, "add", in, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMulti(ctx, []cache.Item{{Key: "multi", Value: in}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CompareAndSwap(ctx, "cas", in, cache.AbsentToken(), 0); err != nil {
		t.Fatal(err)
	}
	in[0] = 'X' // the caller may reuse its slice once the write returns

	keys := []string{"set", "add", "multi", "cas"}
	for _, k := range keys {
		got, err := s.Get(ctx, k)
		if err != nil || string(got) != "abc" {
			t.Fatalf("Get(%q) = %q, %v; want \"abc\", nil", k, got, err)
		}
		got[0] = 'Y'
		gets, _, err := s.Gets(ctx, k)
		if err != nil || string(gets) != "abc" {
			t.Fatalf("Gets(%q) after mutating a Get result = %q, %v; want \"abc\", nil", k, gets, err)
		}
		gets[1] = 'Y'
	}
	multi, err := s.GetMulti(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range multi {
		if string(v) != "abc" {
			t.Fatalf("GetMulti[%d] = %q; want \"abc\"", i, v)
		}
	}
	// The values of one GetMulti are independent: an append to one does
	// not write into the next.
	_ = append(multi[0], 'Z')
	if string(multi[1]) != "abc" {
		t.Errorf("GetMulti[1] after an append to GetMulti[0] = %q; want \"abc\"", multi[1])
	}
	for _, v := range multi {
		v[2] = 'Y'
	}
	for _, k := range keys {
		if got, _ := s.Get(ctx, k); string(got) != "abc" {
			t.Errorf("Get(%q) after mutating results = %q; want \"abc\"", k, got)
		}
	}
}

// ops calls every operation of the store once and returns their errors.
func ops(ctx context.Context, s *Store) map[string]error {
	errs := map[string]error{}
	_, errs["Get"] = s.Get(ctx, "k")
	_, errs["GetMulti"] = s.GetMulti(ctx, []string{"k"})
	errs["Set"] = s.Set(ctx, "k", []byte("1"), 0)
	errs["SetMulti"] = s.SetMulti(ctx, []cache.Item{{Key: "k", Value: []byte("1")}})
	errs["Add"] = s.Add(ctx, "a", []byte("1"), 0)
	_, errs["AddFenced"] = s.AddFenced(ctx, "f", []byte("1"), 0)
	_, errs["Delete"] = s.Delete(ctx, "d")
	_, errs["Exists"] = s.Exists(ctx, "k")
	_, errs["Expire"] = s.Expire(ctx, "k", time.Hour)
	_, errs["TTL"] = s.TTL(ctx, "k")
	_, errs["Increment"] = s.Increment(ctx, "i", 1)
	errs["Clear"] = s.Clear(ctx, "x")
	_, _, errs["Gets"] = s.Gets(ctx, "k")
	errs["CompareAndSwap"] = s.CompareAndSwap(ctx, "c", []byte("1"), cache.AbsentToken(), 0)
	_, errs["DeleteIfEqual"] = s.DeleteIfEqual(ctx, "k", []byte("1"))
	_, errs["ExtendIfEqual"] = s.ExtendIfEqual(ctx, "k", []byte("1"), time.Hour)
	_, stop, err := s.Watch(ctx, "k")
	if stop != nil {
		stop()
	}
	errs["Watch"] = err
	return errs
}

func TestClosed(t *testing.T) {
	s, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(context.Background(), "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d = %v; want nil", i+1, err)
		}
	}
	for op, err := range ops(context.Background(), s) {
		if !errors.Is(err, cache.ErrClosed) {
			t.Errorf("%s after Close = %v; want cache.ErrClosed", op, err)
		}
	}
	goleak.VerifyNone(t) // otter's clean-up goroutine is gone
}

// TestOwnExpiryCheck moves the Store's clock past the deadline of an entry
// that otter still holds, as otter may between its timer ticks, and checks
// that no operation that works on an entry (its atomic operations, TTL,
// Gets) sees it. The plain reads (Get, GetMulti, Exists) rely on otter's
// own check of the same deadline (TestReadsRelyOnOtterExpiry).
func TestReadsRelyOnOtterExpiry(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	if err := s.Set(ctx, "k", []byte("v"), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(40 * time.Millisecond)
	if _, err := s.Get(ctx, "k"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Get past the deadline: %v; want ErrNotFound", err)
	}
	if got, _ := s.GetMulti(ctx, []string{"k"}); got[0] != nil {
		t.Fatalf("GetMulti past the deadline: %q; want nil", got[0])
	}
	if ok, _ := s.Exists(ctx, "k"); ok {
		t.Fatal("Exists past the deadline: true")
	}
}

func TestOwnExpiryCheck(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	put := func() {
		t.Helper()
		if err := s.Set(ctx, "k", []byte("7"), time.Hour); err != nil {
			t.Fatal(err)
		}
		s.startNs += int64(2 * time.Hour) // the Store's clock jumps ahead; otter's does not
		if _, ok := s.c.GetIfPresent("k"); !ok {
			t.Fatal("otter does not hold the entry")
		}
	}
	checks := []struct {
		name string
		miss func() error
	}{
		{"TTL", func() error {
			if _, err := s.TTL(ctx, "k"); !errors.Is(err, cache.ErrNotFound) {
				return fmt.Errorf("err = %v; want cache.ErrNotFound", err)
			}
			return nil
		}},
		{"Gets", func() error {
			if _, tok, err := s.Gets(ctx, "k"); !errors.Is(err, cache.ErrNotFound) || !tok.Absent() {
				return fmt.Errorf("absent = %v, err = %v; want true, cache.ErrNotFound", tok.Absent(), err)
			}
			return nil
		}},
		{"Expire", func() error {
			if ok, _ := s.Expire(ctx, "k", time.Hour); ok {
				return errors.New("true; want false")
			}
			return nil
		}},
		{"ExtendIfEqual", func() error {
			if ok, _ := s.ExtendIfEqual(ctx, "k", []byte("7"), time.Hour); ok {
				return errors.New("true; want false")
			}
			return nil
		}},
		{"DeleteIfEqual", func() error {
			if ok, _ := s.DeleteIfEqual(ctx, "k", []byte("7")); ok {
				return errors.New("true; want false")
			}
			return nil
		}},
		{"Delete", func() error {
			if n, _ := s.Delete(ctx, "k"); n != 0 {
				return fmt.Errorf("%d; want 0", n)
			}
			return nil
		}},
		{"Increment", func() error {
			if n, err := s.Increment(ctx, "k", 1); n != 1 || err != nil {
				return fmt.Errorf("%d, %v; want 1, nil", n, err)
			}
			return nil
		}},
		{"Add", func() error {
			if err := s.Add(ctx, "k", []byte("new"), 0); err != nil {
				return fmt.Errorf("err = %v; want nil", err)
			}
			return nil
		}},
		{"CompareAndSwap absent", func() error {
			if err := s.CompareAndSwap(ctx, "k", []byte("new"), cache.AbsentToken(), 0); err != nil {
				return fmt.Errorf("err = %v; want nil", err)
			}
			return nil
		}},
	}
	for _, c := range checks {
		put()
		if err := c.miss(); err != nil {
			t.Errorf("%s of an expired entry: %v", c.name, err)
		}
	}
}

func TestWatch(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		release func(s *Store) error
	}{
		{"DeleteIfEqual", func(s *Store) error {
			ok, err := s.DeleteIfEqual(ctx, "lock:a", []byte("me"))
			if err == nil && !ok {
				err = errors.New("DeleteIfEqual did not delete")
			}
			return err
		}},
		{"Delete", func(s *Store) error { _, err := s.Delete(ctx, "lock:a"); return err }},
		{"Clear prefix", func(s *Store) error { return s.Clear(ctx, "lock:") }},
		{"Clear all", func(s *Store) error { return s.Clear(ctx, "") }},
		{"Close", func(s *Store) error { return s.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, nil)
			if err := s.Set(ctx, "lock:a", []byte("me"), 0); err != nil {
				t.Fatal(err)
			}
			a1, stopA1, err := s.Watch(ctx, "lock:a")
			if err != nil {
				t.Fatal(err)
			}
			defer stopA1()
			a2, stopA2, err := s.Watch(ctx, "lock:a")
			if err != nil {
				t.Fatal(err)
			}
			defer stopA2()
			other, stopOther, err := s.Watch(ctx, "other")
			if err != nil {
				t.Fatal(err)
			}
			defer stopOther()

			if err := tt.release(s); err != nil {
				t.Fatal(err)
			}
			for i, ch := range []<-chan struct{}{a1, a2} {
				select {
				case <-ch:
				default:
					t.Errorf("watcher %d of the released key not woken", i+1)
				}
			}
			if tt.name != "Close" && tt.name != "Clear all" {
				select {
				case <-other:
					t.Errorf("watcher of another key woken")
				default:
				}
			}
		})
	}
}

func TestWatchStop(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	ch, stop, err := s.Watch(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	stop()
	stop() // harmless
	if n := s.watch.n.Load(); n != 0 {
		t.Errorf("%d watchers after stop; want 0", n)
	}
	if len(s.watch.m) != 0 {
		t.Errorf("watch map holds %d keys after stop; want 0", len(s.watch.m))
	}
	if err := s.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteIfEqual(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Error("stopped watcher woken")
	default:
	}
}

func TestAddFencedCountersPersist(t *testing.T) {
	s := newStore(t, &Options{MaxEntries: 10})
	ctx := context.Background()
	var last int64
	for round := range 3 {
		got, err := s.AddFenced(ctx, "lock", []byte("me"), 0)
		if err != nil || got <= last {
			t.Fatalf("round %d: AddFenced = %d, %v; want > %d, nil", round, got, err, last)
		}
		last = got
		if _, err := s.AddFenced(ctx, "lock", []byte("you"), 0); !errors.Is(err, cache.ErrExists) {
			t.Fatalf("round %d: AddFenced of a held key = %v; want cache.ErrExists", round, err)
		}
		// Neither a release, nor Clear, nor eviction lowers the tokens.
		switch round {
		case 0:
			_, err = s.DeleteIfEqual(ctx, "lock", []byte("me"))
		case 1:
			err = s.Clear(ctx, "")
		case 2:
			for i := range 1000 {
				if err = s.Set(ctx, "fill-"+strconv.Itoa(i), nil, 0); err != nil {
					break
				}
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	s.c.CleanUp()
	if _, err := s.Delete(ctx, "lock"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AddFenced(ctx, "lock", []byte("me"), 0); err != nil || got <= last {
		t.Fatalf("AddFenced after eviction = %d, %v; want > %d, nil", got, err, last)
	}
}

func TestGetAllocs(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	if err := s.Set(ctx, "k", []byte("value"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "ttl", []byte("value"), time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"k", "ttl"} {
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := s.Get(ctx, key); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 1 {
			t.Errorf("Get(%q) allocates %v times; want at most 1 (the copy)", key, allocs)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	const keys = 1024
	ctx := context.Background()
	value := bytes.Repeat([]byte("v"), 64)
	names := make([]string, keys)
	for i := range names {
		names[i] = "key-" + strconv.Itoa(i)
	}
	b.Run("Store.Get", func(b *testing.B) {
		s := newStore(b, nil)
		for _, k := range names {
			if err := s.Set(ctx, k, value, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.Get(ctx, names[i&(keys-1)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	})
	b.Run("otter.GetIfPresent", func(b *testing.B) {
		// Configured as the Store configures it.
		c := otter.Must(&otter.Options[string, *entry]{
			MaximumSize:      DefaultMaxEntries,
			ExpiryCalculator: otter.ExpiryWritingFunc(expiresAfter),
		})
		b.Cleanup(func() { c.StopAllGoroutines() })
		for _, k := range names {
			c.Set(k, &entry{value: value})
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, ok := c.GetIfPresent(names[i&(keys-1)]); !ok {
					b.Fatal("miss")
				}
				i++
			}
		})
	})
}

// An entry written by AddLease or AddFenced with a ttl (a lease lock) is
// never evicted for size, however full the store: evicted, it would let a
// second holder take the lock. The bound still holds for every other
// entry, those written by Add with a ttl included.
func TestLeasesNotEvictedForSize(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
	}{
		{"MaxEntries", Options{MaxEntries: 100}},
		{"MaxBytes", Options{MaxBytes: 100 * (entryOverhead + 16)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := New(&tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.AddLease(ctx, "job-lock", []byte("token"), time.Hour); err != nil {
				t.Fatal(err)
			}
			if _, err := s.AddFenced(ctx, "fenced-lock", []byte("token"), time.Hour); err != nil {
				t.Fatal(err)
			}
			// Hot keys, read often, push the store far past its bound;
			// half of them written by Add with a ttl, which must not
			// escape the bound.
			for i := range 2000 {
				k := "hot-" + strconv.Itoa(i)
				write := func() error { return s.Set(ctx, k, []byte("value"), 0) }
				if i%2 == 1 {
					write = func() error { return s.Add(ctx, k, []byte("value"), time.Hour) }
				}
				if err := write(); err != nil {
					t.Fatal(err)
				}
				for range 3 {
					_, _ = s.Get(ctx, k)
				}
			}
			s.c.CleanUp()
			for _, k := range []string{"job-lock", "fenced-lock"} {
				if v, err := s.Get(ctx, k); err != nil || string(v) != "token" {
					t.Errorf("lock key %s after the store filled up: %q, %v; want token", k, v, err)
				}
				if err := s.Add(ctx, k, []byte("other"), time.Hour); !errors.Is(err, cache.ErrExists) {
					t.Errorf("Add over the held %s: %v; want ErrExists (a second holder)", k, err)
				}
			}
			if n := s.c.EstimatedSize(); n > 110 {
				t.Errorf("%d entries after the fill; want the bound (about 100) kept", n)
			}
		})
	}
}

// TestBusClose: Close stops the subscriptions, whose goroutines end
// (goleak checks it), calls state(false) once for each, and makes Publish
// and Subscribe fail; a stop after Close is harmless.
func TestBusClose(t *testing.T) {
	s, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	states := make(chan bool, 10)
	var stops []func()
	for range 2 {
		stop, err := s.Subscribe(ctx, "c", func([]byte) {}, func(connected bool) { states <- connected })
		if err != nil {
			t.Fatal(err)
		}
		stops = append(stops, stop)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		select {
		case got := <-states:
			if got {
				t.Fatalf("state %d after Close: got true; want false", i+1)
			}
		default:
			t.Fatalf("Close returned after %d calls of state(false); want 2", i)
		}
	}
	for _, stop := range stops {
		stop()
	}
	if len(states) != 0 {
		t.Errorf("%d more calls of state after the stops; want none", len(states))
	}
	if err := s.Publish(ctx, "c", []byte("m")); !errors.Is(err, cache.ErrClosed) {
		t.Errorf("Publish after Close: got %v; want ErrClosed", err)
	}
	if _, err := s.Subscribe(ctx, "c", func([]byte) {}, nil); !errors.Is(err, cache.ErrClosed) {
		t.Errorf("Subscribe after Close: got %v; want ErrClosed", err)
	}
}
