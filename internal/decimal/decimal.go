// Package decimal parses the decimal integers that the stores' Increment
// keeps, by Redis's rules, so that every store accepts and refuses the same
// values.
package decimal

import "math"

// ParseInt64 parses b as Redis's INCRBY does (its string2ll): an optional
// minus sign and at least one digit, no plus sign, no leading zeros, no
// "-0", no spaces, within the range of int64. It reports whether b is such
// a number.
func ParseInt64(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	// Accumulate the magnitude as uint64, which holds 2^63 for MinInt64.
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if u > (math.MaxUint64-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return int64(-u), true // -(1<<63) wraps to MinInt64, as wanted
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}
