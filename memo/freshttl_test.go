package memo

import (
	"testing"
	"time"
)

func TestFreshTTL(t *testing.T) {
	ms := time.Millisecond
	for _, tt := range []struct {
		ttl          time.Duration
		refreshAhead float64
		want         time.Duration
	}{
		{1050 * ms, 0.9, 945 * ms},               // a second earlier would be 50ms: kept
		{2 * time.Second, 0.9, time.Second},      // a second before the expiry
		{1900 * ms, 0.9, 900 * ms},               // 900ms >= 855ms: moved
		{1800 * ms, 0.9, 1620 * ms},              // 800ms < 810ms: kept
		{10 * time.Second, 0.9, 9 * time.Second}, // already a second before
		{4 * time.Second, 0.25, time.Second},     // well before: kept
		{time.Second, 0.5, 500 * ms},             // nothing a second before
		{600 * ms, 0.5, 300 * ms},
		{time.Minute, 0.99, 59 * time.Second},
		{time.Millisecond, 0.5, ms}, // at least 1ms
	} {
		if got := freshTTL(tt.ttl, tt.refreshAhead); got != tt.want {
			t.Errorf("freshTTL(%v, %v) = %v; want %v", tt.ttl, tt.refreshAhead, got, tt.want)
		}
	}
}
