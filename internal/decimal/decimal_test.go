package decimal

import (
	"math"
	"strconv"
	"testing"
)

func TestParseInt64(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"7", 7, true},
		{"-12", -12, true},
		{"9223372036854775807", math.MaxInt64, true},
		{"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"18446744073709551616", 0, false},
		{"99999999999999999999", 0, false},
		{"123456789012345678901", 0, false},
		{"", 0, false},
		{"-", 0, false},
		{"+5", 0, false},
		{"05", 0, false},
		{"007", 0, false},
		{"-0", 0, false},
		{"-05", 0, false},
		{" 5", 0, false},
		{"5 ", 0, false},
		{"5\n", 0, false},
		{"1e3", 0, false},
		{"1.0", 0, false},
		{"0x10", 0, false},
		{"--1", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseInt64([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseInt64(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzParseInt64 checks ParseInt64 against strconv: it accepts exactly the
// canonical decimal text of an int64.
func FuzzParseInt64(f *testing.F) {
	for _, s := range []string{"0", "-1", "+1", "05", "-0", "9223372036854775807", "-9223372036854775808"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseInt64([]byte(s))
		n, err := strconv.ParseInt(s, 10, 64)
		canonical := err == nil && strconv.FormatInt(n, 10) == s
		if ok != canonical || (ok && got != n) {
			t.Fatalf("ParseInt64(%q) = %d, %v; strconv gives %d, %v (canonical %v)", s, got, ok, n, err, canonical)
		}
	})
}
