package memcachestore

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
)

func TestExpiry(t *testing.T) {
	now := time.Unix(1_800_000_000, 250_000_000)
	const day = 24 * time.Hour
	tests := []struct {
		ttl  time.Duration
		want int32
	}{
		// Rounded up to whole seconds, plus one: see expiry.
		{0, 0},
		{time.Nanosecond, 2},
		{time.Millisecond, 2},
		{time.Second, 2},
		{1500 * time.Millisecond, 3},
		{time.Hour, 3601},
		{30*day - time.Second, 30 * 24 * 3600},
		// Past 30 days, absolute: now has 250ms, rounded up, plus one.
		{30 * day, 1_800_000_000 + 30*24*3600 + 2},
		{30*day + time.Millisecond, 1_800_000_000 + 30*24*3600 + 2},
		{31 * day, 1_800_000_000 + 31*24*3600 + 2},
		{100 * 365 * day, math.MaxInt32},
	}
	for _, tt := range tests {
		got, flags := expiry(tt.ttl, now)
		if got != tt.want {
			t.Errorf("expiry(%v) exptime = %d; want %d", tt.ttl, got, tt.want)
		}
		if (tt.ttl == 0) != (flags == 0) {
			t.Errorf("expiry(%v) flags = %#x; want a stamp exactly when ttl > 0", tt.ttl, flags)
		}
	}
}

func TestKeptExpiry(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	const day = 24 * time.Hour
	const expired = -1
	tests := []struct {
		name  string
		t0    time.Time
		ttl   time.Duration
		later time.Duration
		want  int32 // the exptime sent, or expired
	}{
		{"no expiry", t0, 0, time.Hour, 0},
		// One second more than remains, rounded up: never early, gone
		// within 2s of the expiry.
		{"10s after 3s", t0, 10 * time.Second, 3 * time.Second, 8},
		{"10s after 3.5s", t0, 10 * time.Second, 3500 * time.Millisecond, 8},
		{"10s after 3.2s", t0, 10 * time.Second, 3200 * time.Millisecond, 8},
		{"10s after 9.99s", t0, 10 * time.Second, 9990 * time.Millisecond, 2},
		// The reported case: written at .25 of a second, incremented
		// 0.94s later. A whole-second stamp (rounded up to the next
		// second) sent 3, so that the key stayed up to 3.94s.
		{"1s at .25 after 0.94s", t0.Add(250 * time.Millisecond), time.Second, 940 * time.Millisecond, 2},
		{"1s at .01 after 0.94s", t0.Add(10 * time.Millisecond), time.Second, 940 * time.Millisecond, 2},
		{"1.5s after 0.2s", t0.Add(600 * time.Millisecond), 1500 * time.Millisecond, 200 * time.Millisecond, 3},
		{"due", t0, 10 * time.Second, 10 * time.Second, expired},
		{"overdue", t0, 10 * time.Second, time.Minute, expired},
		{"60 days after 1", t0, 60 * day, day, 1_800_000_000 + 60*24*3600 + 1},
		{"45 days after 1", t0, 45 * day, day, 1_800_000_000 + 45*24*3600 + 1},
		{"31 days after 2", t0, 31 * day, 2 * day, 29*24*3600 + 1},
		{"31 days after 2, at .5", t0.Add(500 * time.Millisecond), 31 * day, 2 * day, 29*24*3600 + 1},
	}
	for _, tt := range tests {
		_, flags := expiry(tt.ttl, tt.t0)
		got, kept, gone := keptExpiry(flags, tt.t0.Add(tt.later))
		if tt.want == expired {
			if !gone {
				t.Errorf("%s: keptExpiry = %d, %#x, false; want expired", tt.name, got, kept)
			}
			continue
		}
		if got != tt.want || kept != flags || gone {
			t.Errorf("%s: keptExpiry = %d, %#x, %v; want %d, %#x, false", tt.name, got, kept, gone, tt.want, flags)
		}
	}
	// Flags written by another client are kept, and the expiry is unknown.
	if got, kept, gone := keptExpiry(42, t0); got != 0 || kept != 42 || gone {
		t.Errorf("keptExpiry(42) = %d, %d, %v; want 0, 42, false", got, kept, gone)
	}
}

// TestStampRoundTrip reads stamps back from a day before their write (a
// reader whose clock is behind) to past their expiry: each denotes the
// expiry written, rounded up by less than the stamp's unit.
func TestStampRoundTrip(t *testing.T) {
	const day = 24 * time.Hour
	bases := []time.Time{
		time.Unix(1_767_225_600, 0),           // 2026
		time.Unix(1_767_225_600, 123_456_789), // 2026, within a second
		time.Unix(2_100_000_000, 999_999_999), // 2036
	}
	ttls := []time.Duration{time.Millisecond, time.Second, 1500 * time.Millisecond, time.Hour, 30 * day, fineMaxTTL - time.Second}
	for _, base := range bases {
		for _, ttl := range ttls {
			_, flags := expiry(ttl, base)
			if flags&tagMask != fineTag {
				t.Fatalf("expiry(%v) flags = %#x; want a fine stamp", ttl, flags)
			}
			want := base.Add(ttl)
			for _, reader := range []time.Duration{-day + time.Second, 0, ttl / 2, ttl, ttl + time.Hour} {
				got, ok := stampExpiry(flags, base.Add(reader))
				if d := got.Sub(want); !ok || d < 0 || d >= fineUnit {
					t.Errorf("stamp of %v + %v read at +%v = %v, %v; want %v rounded up to %v", base, ttl, reader, got, ok, want, fineUnit)
				}
			}
		}
	}
	// Past the fine stamp's range, a coarse stamp: whole seconds.
	base := bases[1]
	_, flags := expiry(fineMaxTTL, base)
	if flags&tagMask != coarseTag {
		t.Fatalf("expiry(%v) flags = %#x; want a coarse stamp", fineMaxTTL, flags)
	}
	if got, ok := stampExpiry(flags, base); !ok || !got.Equal(time.Unix(unixCeil(base.Add(fineMaxTTL)), 0)) {
		t.Errorf("coarse stamp read back as %v, %v; want %v rounded up to a second", got, ok, base.Add(fineMaxTTL))
	}
}

// TestKeptExpiryBound checks the bound a rewrite keeps, on the model of
// memcached's clock (an exptime of r seconds keeps the key between r-1 and
// r seconds): for writes at every point of a second and rewrites at every
// point of the ttl, the key stays past its expiry and goes within 2s of it
// (plus the stamp's unit, by which the expiry is rounded up).
func TestKeptExpiryBound(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	for _, ttl := range []time.Duration{time.Second, 1500 * time.Millisecond, 7 * time.Second} {
		for w := time.Duration(0); w < time.Second; w += 10 * time.Millisecond {
			write := base.Add(w)
			_, flags := expiry(ttl, write)
			due := write.Add(ttl)
			for at := time.Duration(0); at < ttl; at += 10 * time.Millisecond {
				now := write.Add(at)
				r, _, gone := keptExpiry(flags, now)
				if gone {
					t.Fatalf("ttl %v written at +%v, rewritten %v later: expired; want kept", ttl, w, at)
				}
				earliest := now.Add(time.Duration(r-1) * time.Second)
				latest := now.Add(time.Duration(r) * time.Second)
				if earliest.Before(due) {
					t.Errorf("ttl %v written at +%v, rewritten %v later: exptime %d may end %v before the ttl", ttl, w, at, r, due.Sub(earliest))
				}
				if limit := due.Add(2*time.Second + fineUnit); latest.After(limit) {
					t.Errorf("ttl %v written at +%v, rewritten %v later: exptime %d may keep it %v past the ttl; want at most 2s", ttl, w, at, r, latest.Sub(due))
				}
			}
		}
	}
}

func TestExpiryOnServer(t *testing.T) {
	s, _, k := testStore(t)
	ctx := t.Context()
	const day = 24 * time.Hour
	// Beyond 30 days the ttl is an absolute time; sent as relative seconds
	// it would be a date in 1970 and the key would vanish at once.
	for _, ttl := range []time.Duration{30 * day, 30*day + time.Second, 365 * day} {
		mustSet(t, s, k("long"), []byte("v"), ttl)
		wantValue(t, s, k("long"), []byte("v"))
		if ok, err := s.Expire(ctx, k("long"), ttl); !ok || err != nil {
			t.Fatalf("Expire(%v) = %v, %v; want true, nil", ttl, ok, err)
		}
		wantValue(t, s, k("long"), []byte("v"))
	}
	// A 1ms ttl is two seconds at most, not 0 ("never").
	mustSet(t, s, k("ms"), []byte("v"), time.Millisecond)
	waitMissing(t, s, k("ms"), 5*time.Second)

	mustSet(t, s, k("e"), []byte("v"), 0)
	if ok, err := s.Expire(ctx, k("e"), time.Second); !ok || err != nil {
		t.Fatalf("Expire = %v, %v; want true, nil", ok, err)
	}
	waitMissing(t, s, k("e"), 5*time.Second)
	if ok, err := s.Expire(ctx, k("e"), time.Second); ok || err != nil {
		t.Fatalf("Expire(missing) = %v, %v; want false, nil", ok, err)
	}
}

// A key never expires before its ttl has passed, though memcached's clock
// ticks in whole seconds: a lock's lease relies on it. Each round writes a
// key with a 1s ttl at another point of the server's second and checks it
// is still there until just before the ttl ends.
func TestExpiryNeverEarly(t *testing.T) {
	s, _, k := testStore(t)
	ctx := t.Context()
	const ttl = time.Second
	for round := range 6 {
		key := k("early")
		start := time.Now()
		mustSet(t, s, key, []byte("v"), ttl)
		for {
			ok, err := s.Exists(ctx, key)
			elapsed := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if elapsed >= ttl-50*time.Millisecond {
				break // the check is over; what follows is allowed
			}
			if !ok {
				t.Fatalf("round %d: key with ttl %v gone after %v; want it kept for the whole ttl", round, ttl, elapsed)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Start the next round at another point of the server's second.
		time.Sleep(170 * time.Millisecond)
	}
}

// TestRewriteExpiryBound checks the ttl bound of the Store contract on a key
// that Increment rewrites just before it expires: the key must stay until
// the ttl has passed since its write (Set, Expire, ExtendIfEqual or
// CompareAndSwap) and be gone 2s after that. Rounds start at several points
// of the client's wall-clock second, where whole-second expiry stamps round
// differently; they run at once, so the test takes one round's time.
func TestRewriteExpiryBound(t *testing.T) {
	s, _, k := testStore(t)
	ctx := t.Context()
	const (
		ttl   = time.Second
		slack = 2 * time.Second // the most a key may outlive its ttl
		incAt = 940 * time.Millisecond
		poll  = 50 * time.Millisecond
	)
	one := []byte("1")
	writes := []struct {
		name  string
		write func(key string) error
	}{
		{"Set", func(key string) error { return s.Set(ctx, key, one, ttl) }},
		{"Expire", func(key string) error {
			if err := s.Set(ctx, key, one, 0); err != nil {
				return err
			}
			ok, err := s.Expire(ctx, key, ttl)
			if err == nil && !ok {
				err = errors.New("Expire = false; want true")
			}
			return err
		}},
		{"ExtendIfEqual", func(key string) error {
			if err := s.Set(ctx, key, one, 0); err != nil {
				return err
			}
			ok, err := s.ExtendIfEqual(ctx, key, one, ttl)
			if err == nil && !ok {
				err = errors.New("ExtendIfEqual = false; want true")
			}
			return err
		}},
		{"CompareAndSwap", func(key string) error {
			if err := s.Set(ctx, key, []byte("0"), 0); err != nil {
				return err
			}
			_, tok, err := s.Gets(ctx, key)
			if err != nil {
				return err
			}
			return s.CompareAndSwap(ctx, key, one, tok, ttl)
		}},
	}
	// Points of the wall-clock second at which the writes start: the first
	// three are where the old whole-second stamps kept the key 3s and more.
	phases := []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond,
		300 * time.Millisecond, 700 * time.Millisecond}
	base := time.Now().Truncate(time.Second).Add(2 * time.Second)

	var wg sync.WaitGroup
	var checked atomic.Int64 // rounds whose Increment came before the ttl
	for _, w := range writes {
		for _, phase := range phases {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("%s at +%v", w.name, phase)
				key := k(fmt.Sprintf("bound-%s-%d", w.name, phase.Milliseconds()))
				time.Sleep(time.Until(base.Add(phase)))
				start := time.Now()
				if err := w.write(key); err != nil {
					t.Errorf("%s: write: %v", name, err)
					return
				}
				written := time.Now()
				time.Sleep(time.Until(start.Add(incAt)))
				incStart := time.Now()
				n, err := s.Increment(ctx, key, 1)
				switch {
				case err != nil:
					t.Errorf("%s: Increment: %v", name, err)
					return
				case n != 2 && incStart.Before(start.Add(ttl)):
					t.Errorf("%s: Increment at %v = %d; want 2 (the key expired early?)", name, incStart.Sub(start), n)
					return
				case n != 2:
					// A loaded machine ran the Increment after the ttl:
					// the key was rightly gone, and this round proves
					// nothing.
					t.Logf("%s: Increment ran late, at %v: round skipped", name, incStart.Sub(start))
					return
				}
				checked.Add(1)
				// Poll until the key is gone. lastHit is when the last
				// Get that found it was sent; gone is when the first that
				// missed it returned.
				var lastHit time.Time
				for {
					sent := time.Now()
					_, err := s.Get(ctx, key)
					got := time.Now()
					if errors.Is(err, cache.ErrNotFound) {
						if early := start.Add(ttl); got.Before(early) {
							t.Errorf("%s: gone %v after the write; want it kept the whole ttl %v", name, got.Sub(start), ttl)
						}
						if late := written.Add(ttl + slack); lastHit.After(late) {
							t.Errorf("%s: still present %v after the write; want it gone within ttl+%v = %v", name, lastHit.Sub(written), slack, ttl+slack)
						}
						return
					}
					if err != nil {
						t.Errorf("%s: Get: %v", name, err)
						return
					}
					lastHit = sent
					if sent.Sub(start) > ttl+slack+3*time.Second {
						t.Errorf("%s: still present %v after the write; want it gone within ttl+%v", name, sent.Sub(start), slack)
						return
					}
					time.Sleep(poll)
				}
			}()
		}
	}
	wg.Wait()
	if checked.Load() == 0 {
		t.Errorf("every round's Increment ran after the ttl: the machine was too slow, and the test proved nothing")
	}
}
