package lock

import (
	"math/rand/v2"
	"time"
)

// backoff is a jittered exponential backoff between min and max.
type backoff struct {
	min, max, next time.Duration
}

func newBackoff(min, max time.Duration) *backoff {
	return &backoff{min: min, max: max, next: min}
}

// delay returns the next delay: uniformly random in [d/2, d], where d
// doubles from min up to max with each call, and is capped by limit when
// limit is positive (the doubling goes on under the cap).
func (b *backoff) delay(limit time.Duration) time.Duration {
	d := b.next
	if b.next < b.max {
		if b.next > b.max/2 {
			b.next = b.max
		} else {
			b.next *= 2
		}
	}
	if limit > 0 && d > limit {
		d = limit
	}
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}
