package memcachestore

import (
	"math"
	"testing"
	"time"
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
	tests := []struct {
		name  string
		ttl   time.Duration
		later time.Duration
		want  int32
	}{
		{"no expiry", 0, time.Hour, 0},
		// One second more than remains, as expiry sends: never early.
		{"10s after 3s", 10 * time.Second, 3 * time.Second, 8},
		{"10s after 3.5s", 10 * time.Second, 3500 * time.Millisecond, 8},
		{"due", 10 * time.Second, 10 * time.Second, 1},
		{"overdue", 10 * time.Second, time.Minute, 1},
		{"60 days after 1", 60 * day, day, 1_800_000_000 + 60*24*3600 + 1},
		{"31 days after 2", 31 * day, 2 * day, 29*24*3600 + 1},
	}
	for _, tt := range tests {
		_, flags := expiry(tt.ttl, t0)
		got, kept := keptExpiry(flags, t0.Add(tt.later))
		if got != tt.want || kept != flags {
			t.Errorf("%s: keptExpiry = %d, %#x; want %d, %#x", tt.name, got, kept, tt.want, flags)
		}
	}
	// Flags written by another client are kept, and the expiry is unknown.
	if got, kept := keptExpiry(42, t0); got != 0 || kept != 42 {
		t.Errorf("keptExpiry(42) = %d, %d; want 0, 42", got, kept)
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
