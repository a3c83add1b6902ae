package lock

import (
	"math"
	"testing"
	"time"
)

// The backoff's delays are uniform in [d/2, d], d doubling from min to max,
// and capped by the limit (the lease cap of a waiter) under which the
// doubling goes on.
func TestBackoff(t *testing.T) {
	const ms = time.Millisecond
	const runs = 200
	tests := []struct {
		name     string
		min, max time.Duration
		limits   []time.Duration // one per call; 0 = no limit
		want     []time.Duration // d of each call
	}{
		{
			name:   "doubling up to max",
			min:    10 * ms,
			max:    80 * ms,
			limits: make([]time.Duration, 6),
			want:   []time.Duration{10 * ms, 20 * ms, 40 * ms, 80 * ms, 80 * ms, 80 * ms},
		},
		{
			name:   "max not a power of two of min",
			min:    10 * ms,
			max:    50 * ms,
			limits: make([]time.Duration, 5),
			want:   []time.Duration{10 * ms, 20 * ms, 40 * ms, 50 * ms, 50 * ms},
		},
		{
			name:   "min equals max",
			min:    time.Hour,
			max:    time.Hour,
			limits: make([]time.Duration, 3),
			want:   []time.Duration{time.Hour, time.Hour, time.Hour},
		},
		{
			// An hour-long backoff with a lease of 25ms: never more than
			// the lease; the doubling goes on under the cap, so that
			// without it the next delay is the doubled one.
			name:   "capped by the lease",
			min:    10 * ms,
			max:    time.Hour,
			limits: []time.Duration{25 * ms, 25 * ms, 25 * ms, 25 * ms, 0},
			want:   []time.Duration{10 * ms, 20 * ms, 25 * ms, 25 * ms, 160 * ms},
		},
		{
			name:   "a limit above d changes nothing",
			min:    10 * ms,
			max:    40 * ms,
			limits: []time.Duration{time.Hour, time.Hour, time.Hour},
			want:   []time.Duration{10 * ms, 20 * ms, 40 * ms},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo := make([]time.Duration, len(tt.want))
			hi := make([]time.Duration, len(tt.want))
			for i := range lo {
				lo[i] = math.MaxInt64
			}
			for range runs {
				b := newBackoff(tt.min, tt.max)
				for i, d := range tt.want {
					got := b.delay(tt.limits[i])
					if got < d/2 || got > d {
						t.Fatalf("call %d: delay %v; want in [%v, %v]", i, got, d/2, d)
					}
					lo[i], hi[i] = min(lo[i], got), max(hi[i], got)
				}
			}
			// Jittered over the whole range: in 200 runs, some delay
			// fell in each quarter's outer part.
			for i, d := range tt.want {
				if lo[i] > d/2+d/4 || hi[i] < d/2+d/4 {
					t.Errorf("call %d: delays in [%v, %v] over %d runs; want spread over [%v, %v]", i, lo[i], hi[i], runs, d/2, d)
				}
			}
		})
	}
}

// A huge max does not overflow the doubling.
func TestBackoffNoOverflow(t *testing.T) {
	b := newBackoff(time.Nanosecond, math.MaxInt64)
	for i := range 100 {
		if d := b.delay(0); d <= 0 {
			t.Fatalf("call %d: delay %v; want positive", i, d)
		}
	}
	if b.next != math.MaxInt64 {
		t.Fatalf("next after 100 doublings = %v; want max", b.next)
	}
}
