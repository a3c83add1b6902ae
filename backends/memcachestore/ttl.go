package memcachestore

import (
	"math"
	"time"
)

// maxRelative is the longest expiry memcached reads as relative seconds: a
// larger exptime is an absolute Unix time.
const maxRelative = 60 * 60 * 24 * 30

// Expiry stamps. memcached cannot report an item's remaining ttl, yet
// Increment, which rewrites a value with a compare-and-swap, must keep it.
// So every write of the store records the item's absolute expiry in its
// 32-bit flags: the tag 0b101 in the top three bits, then the expiry in
// Unix seconds since stampEpoch (29 bits: past 2038, memcached's own
// limit); or 0 for an item without expiry. A rewrite reads the flags back
// and sends the remaining time. Flags without the tag, or with a tag whose
// expiry lies more than a day in the past (which no live item has), were
// written by another client: their expiry is unknown, and rewrites keep
// such flags as they are.
const (
	stampEpoch = 1735689600 // 2025-01-01T00:00:00Z
	stampShift = 29
	stampTag   = 0b101 << stampShift
	stampMax   = 1<<stampShift - 1
	stampSlack = 24 * 60 * 60 // seconds a stamp may lie in the past
)

// isStamp reports whether flags hold an expiry stamp of this store, as of
// now.
func isStamp(flags uint32, now time.Time) bool {
	if flags>>stampShift != stampTag>>stampShift {
		return false
	}
	abs := int64(flags&stampMax) + stampEpoch
	return abs >= now.Unix()-stampSlack
}

// ceilSeconds returns ttl in whole seconds, rounded up.
func ceilSeconds(ttl time.Duration) int64 {
	s := int64(ttl / time.Second)
	if ttl%time.Second != 0 {
		s++
	}
	return s
}

// unixCeil returns the Unix time now+ttl in whole seconds, rounded up.
func unixCeil(now time.Time, ttl time.Duration) int64 {
	t := now.Add(ttl)
	u := t.Unix()
	if t.Nanosecond() != 0 {
		u++
	}
	return u
}

// clampInt32 limits an absolute Unix time to what memcached's exptime holds
// (January 2038).
func clampInt32(v int64) int32 {
	if v > math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(v)
}

// newExpiry returns the exptime and flags of a rewrite with ttl of an item
// whose flags are old: the store's stamp, unless old are another client's
// flags, which are kept.
func newExpiry(ttl time.Duration, old uint32, now time.Time) (exptime int32, flags uint32) {
	exptime, flags = expiry(ttl, now)
	if old != 0 && !isStamp(old, now) {
		flags = old
	}
	return exptime, flags
}

// expiry returns the exptime and the flags (the expiry stamp) of a write
// with ttl at time now. A ttl of 0 is no expiry; a positive ttl is rounded up
// to whole seconds, so that it never becomes 0 ("never"), plus one second;
// more than 30 days is sent as an absolute Unix time.
//
// The extra second is because memcached's clock ticks in whole seconds: an
// item stored with exptime n lives between n-1 and n seconds, depending on
// where in its second the server is. Sent n+1, it lives at least the n
// seconds asked, so that a lock's lease never ends before its holder's
// estimate of it.
func expiry(ttl time.Duration, now time.Time) (exptime int32, flags uint32) {
	if ttl <= 0 {
		return 0, 0
	}
	abs := unixCeil(now, ttl)
	if secs := ceilSeconds(ttl) + 1; secs <= maxRelative {
		exptime = int32(secs)
	} else {
		exptime = clampInt32(abs + 1)
	}
	return exptime, stamp(abs)
}

// stamp returns the flags recording the absolute expiry abs (Unix seconds).
func stamp(abs int64) uint32 {
	v := abs - stampEpoch
	v = max(v, 1)
	v = min(v, stampMax)
	return stampTag | uint32(v)
}

// keptExpiry returns the exptime and flags with which a rewrite at time now
// keeps the expiry recorded in flags. Foreign flags (not a stamp) are kept
// as they are and the rewrite gets no expiry: memcached cannot tell it.
func keptExpiry(flags uint32, now time.Time) (exptime int32, newFlags uint32) {
	if !isStamp(flags, now) {
		return 0, flags
	}
	abs := int64(flags&stampMax) + stampEpoch
	rem := abs - now.Unix()
	switch {
	case rem < 1:
		// Due now: the server has not dropped it yet. Keep it at most one
		// more second rather than reviving it for good.
		return 1, flags
	case rem+1 <= maxRelative:
		return int32(rem + 1), flags // one more second, as expiry sends
	default:
		return clampInt32(abs + 1), flags
	}
}
