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
// 32-bit flags, in one of two forms told apart by the top three bits:
//
//   - a fine stamp, tag 0b110: the expiry in units of 1/128 s since the
//     Unix epoch, rounded up, modulo 2^29 (a period of about 48.5 days).
//     A reader at time now takes the one time with those low bits that
//     lies between a day before now and the period after that. Every
//     write with a ttl shorter than fineMaxTTL gets one;
//   - a coarse stamp, tag 0b101: the expiry in Unix seconds since
//     stampEpoch, rounded up (29 bits: past 2038, memcached's own limit),
//     for longer ttls. (Versions before the fine stamp wrote it for every
//     ttl; their items are still read right.)
//
// Flags 0 mean an item without expiry. A rewrite reads the stamp back and
// sends the remaining time. Flags without either tag, or with a coarse
// stamp more than a day in the past (which no live item has), were written
// by another client: their expiry is unknown, and rewrites keep such flags
// as they are.
//
// The fine stamp is what keeps a rewrite within the Store contract's bound.
// A rewrite at now of a key due at T sends the relative exptime r =
// ceil(T-now) + 1, which memcached keeps between r-1 and r seconds (its
// clock ticks once a second): the key stays past T and goes before T+2s.
// A stamp rounded to whole seconds would move T up by as much as a second,
// and the key could stay until T+3s.
const (
	stampShift = 29
	stampMax   = 1<<stampShift - 1
	stampSlack = 24 * 60 * 60 // seconds a stamp may lie in the past

	coarseTag   = 0b101 << stampShift
	stampEpoch  = 1735689600 // 2025-01-01T00:00:00Z
	fineTag     = 0b110 << stampShift
	fineUnit    = time.Second / 128
	finePeriod  = (stampMax + 1) * fineUnit
	fineMaxTTL  = finePeriod - 2*stampSlack*time.Second
	tagMask     = 0b111 << stampShift
	unitsPerSec = int64(time.Second / fineUnit)
)

// stampExpiry returns the expiry that flags record, as of now, and whether
// they are a stamp of this store at all.
func stampExpiry(flags uint32, now time.Time) (time.Time, bool) {
	switch flags & tagMask {
	case fineTag:
		// The units of the earliest time the stamp may denote, then the
		// first time at or after it with the stamp's low bits.
		from := floorDiv(now.UnixNano(), int64(fineUnit)) - stampSlack*unitsPerSec
		units := from + int64((uint32(flags)-uint32(from))&stampMax)
		return time.Unix(0, units*int64(fineUnit)), true
	case coarseTag:
		abs := int64(flags&stampMax) + stampEpoch
		if abs < now.Unix()-stampSlack {
			return time.Time{}, false
		}
		return time.Unix(abs, 0), true
	}
	return time.Time{}, false
}

// isStamp reports whether flags hold an expiry stamp of this store, as of
// now.
func isStamp(flags uint32, now time.Time) bool {
	_, ok := stampExpiry(flags, now)
	return ok
}

// floorDiv returns a/b rounded down, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// ceilSeconds returns ttl in whole seconds, rounded up.
func ceilSeconds(ttl time.Duration) int64 {
	s := int64(ttl / time.Second)
	if ttl%time.Second != 0 {
		s++
	}
	return s
}

// unixCeil returns the Unix time t in whole seconds, rounded up.
func unixCeil(t time.Time) int64 {
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
	at := now.Add(ttl)
	if secs := ceilSeconds(ttl) + 1; secs <= maxRelative {
		exptime = int32(secs)
	} else {
		exptime = clampInt32(unixCeil(at) + 1)
	}
	return exptime, stamp(at, ttl)
}

// stamp returns the flags recording the expiry at of a write with ttl: a
// fine stamp, or a coarse one for a ttl too long for the fine stamp's
// period.
func stamp(at time.Time, ttl time.Duration) uint32 {
	if ttl < fineMaxTTL {
		units := -floorDiv(-at.UnixNano(), int64(fineUnit)) // rounded up
		return fineTag | uint32(units)&stampMax
	}
	v := unixCeil(at) - stampEpoch
	v = max(v, 1)
	v = min(v, stampMax)
	return coarseTag | uint32(v)
}

// keptExpiry returns the exptime and flags with which a rewrite at time now
// keeps the expiry recorded in flags, or expired = true when that expiry
// has passed: the key is due and only memcached's clock, which ticks once a
// second, has kept it; the rewrite must treat it as gone. Foreign flags
// (not a stamp) are kept as they are and the rewrite gets no expiry:
// memcached cannot tell it.
func keptExpiry(flags uint32, now time.Time) (exptime int32, newFlags uint32, expired bool) {
	at, ok := stampExpiry(flags, now)
	if !ok {
		return 0, flags, false
	}
	rem := at.Sub(now)
	if rem <= 0 {
		return 0, flags, true
	}
	// One more second than remains, rounded up, as expiry sends: the key
	// stays past at and goes before at+2s.
	if secs := ceilSeconds(rem) + 1; secs <= maxRelative {
		return int32(secs), flags, false
	}
	return clampInt32(unixCeil(at) + 1), flags, false
}
