package cachetest

import (
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/typedcache/typedcache/cache"
)

// testIncrement covers Increment (its ttl keeping is in testExpiry).
func (s *suite) testIncrement(t *testing.T) {
	s.run(t, "Missing", func(e *env) {
		k := e.key("k")
		if got := e.mustIncrement(k, 5); got != 5 {
			e.t.Errorf("Increment(missing key, 5): got %d; want 5", got)
		}
		e.wantValue(k, []byte("5"))
		e.wantNoExpiry(k)
	})
	s.run(t, "Deltas", func(e *env) {
		k := e.key("k")
		steps := []struct {
			delta, want int64
		}{
			{5, 5},
			{-8, -3},
			{10, 7},
			{0, 7},
			{-7, 0},
			{-1, -1},
			{1000000, 999999},
		}
		for _, st := range steps {
			if got := e.mustIncrement(k, st.delta); got != st.want {
				e.t.Fatalf("Increment(%d): got %d; want %d", st.delta, got, st.want)
			}
			e.wantValue(k, []byte(strconv.FormatInt(st.want, 10)))
		}
	})
	const maxS, minS = "9223372036854775807", "-9223372036854775808"
	tests := []struct {
		name   string
		stored string // "" = missing key
		delta  int64
		want   int64 // when ok
		ok     bool  // false: ErrNotInteger, value unchanged
	}{
		{"Positive", "42", 1, 43, true},
		{"NegativeValue", "-7", 2, -5, true},
		{"BelowZero", "0", -1, -1, true},
		{"MaxPlusZero", maxS, 0, math.MaxInt64, true},
		{"ToMax", "9223372036854775806", 1, math.MaxInt64, true},
		{"ToMin", "-9223372036854775807", -1, math.MinInt64, true},
		{"MissingMax", "", math.MaxInt64, math.MaxInt64, true},
		{"MissingMin", "", math.MinInt64, math.MinInt64, true},
		{"MinPlusMax", minS, math.MaxInt64, -1, true},
		{"MaxPlusMin", maxS, math.MinInt64, -1, true},
		{"OverflowMax", maxS, 1, 0, false},
		{"OverflowMin", minS, -1, 0, false},
		{"OverflowMaxPlusMax", maxS, math.MaxInt64, 0, false},
		{"OverflowMinPlusMin", minS, math.MinInt64, 0, false},
		{"OverflowOnePlusMax", "1", math.MaxInt64, 0, false},
		{"OverflowMinusTwoPlusMin", "-2", math.MinInt64, 0, false},
	}
	for _, tt := range tests {
		s.run(t, tt.name, func(e *env) {
			k := e.key("k")
			if tt.stored != "" {
				e.mustSet(k, []byte(tt.stored), 0)
			}
			got, err := e.s.Increment(e.ctx, k, tt.delta)
			if !tt.ok {
				if !errors.Is(err, cache.ErrNotInteger) {
					e.t.Errorf("Increment(%s, %d): got (%d, %v); want ErrNotInteger (overflow)", tt.stored, tt.delta, got, err)
				}
				e.wantValue(k, []byte(tt.stored))
				return
			}
			if err != nil || got != tt.want {
				e.t.Errorf("Increment(%s, %d): got (%d, %v); want (%d, nil)", tt.stored, tt.delta, got, err, tt.want)
			}
			e.wantValue(k, []byte(strconv.FormatInt(tt.want, 10)))
		})
	}
	s.run(t, "NotInteger", func(e *env) {
		values := []string{
			"abc", "1.5", "", "12abc", "1 ", " 1", "0x10", "1e3",
			"9223372036854775808", "-9223372036854775809", "\x00", "-",
			// Not canonical: Redis's INCRBY refuses them, so every store does.
			"+5", "05", "007", "-0", "-05",
		}
		for i, v := range values {
			k := e.key("k" + strconv.Itoa(i))
			e.mustSet(k, []byte(v), 0)
			got, err := e.s.Increment(e.ctx, k, 1)
			if !errors.Is(err, cache.ErrNotInteger) {
				e.t.Errorf("Increment(key holding %q, 1): got (%d, %v); want ErrNotInteger", v, got, err)
			}
			e.wantValue(k, []byte(v))
		}
	})
	s.run(t, "KeepsTTL", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("1"), e.longTTL)
		e.mustIncrement(k, 1)
		e.wantLongTTL(k)
	})
	s.run(t, "NotIntegerKeepsTTL", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("x"), e.longTTL)
		if _, err := e.s.Increment(e.ctx, k, 1); !errors.Is(err, cache.ErrNotInteger) {
			e.t.Errorf("Increment(non-integer): got %v; want ErrNotInteger", err)
		}
		e.wantLongTTL(k)
	})
	s.run(t, "ThenGets", func(e *env) {
		k := e.key("k")
		e.mustIncrement(k, 5)
		v, tok := e.mustGets(k)
		if string(v) != "5" {
			e.t.Errorf("Gets after Increment(5): got %s; want \"5\"", showValue(v))
		}
		e.mustCAS(k, []byte("7"), tok, 0)
		if got := e.mustIncrement(k, 1); got != 8 {
			e.t.Errorf("Increment after CompareAndSwap of \"7\": got %d; want 8", got)
		}
	})
}
