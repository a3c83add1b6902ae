package redisstore

import (
	"strings"
	"sync"
)

// numSlots is the number of Redis Cluster hash slots.
const numSlots = 16384

// crc16 returns the CRC-16/XMODEM checksum of s (polynomial 0x1021, initial
// value 0, no reflection, no final xor): the checksum Redis Cluster uses to
// map keys to slots.
func crc16(s string) uint16 { return crc16Update(0, s) }

// crc16Update continues the checksum crc over s.
func crc16Update(crc uint16, s string) uint16 {
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// hashTag returns the part of key that Redis Cluster hashes and whether it is
// a hash tag: the text between the first '{' and the first '}' after it, when
// that text is not empty; otherwise the whole key.
func hashTag(key string) (string, bool) {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			return key[s+1 : s+1+e], true
		}
	}
	return key, false
}

// keySlot returns the Redis Cluster hash slot of key.
func keySlot(key string) int {
	h, _ := hashTag(key)
	return int(crc16(h) % numSlots)
}

// Fence counter names. See fenceKey.
const (
	fenceSuffix      = ":fence"  // after a key with a hash tag
	fenceSuffixNoTag = ":fence:" // after a key without one, then fenceDigits hex digits
	fenceDigits      = 5
	hexDigits        = "0123456789abcdef"
	slotMask         = numSlots - 1
	zeroPad          = "\x00\x00\x00\x00\x00" // fenceDigits zero bytes
)

var (
	fenceTableOnce sync.Once
	// fenceTable[v] holds fenceDigits hex digits whose CRC-16 has v in its
	// low 14 bits.
	fenceTable [numSlots][fenceDigits]byte
)

// buildFenceTable fills fenceTable. CRC-16/XMODEM is linear, so the
// checksum of d0 d1 ... is the xor of the checksums of each digit followed
// by as many zero bytes as digits after it: those are computed once, and
// the candidates are tried in order until every slot has its digits.
func buildFenceTable() {
	var contrib [fenceDigits][16]uint16
	for pos := range fenceDigits {
		for d := range 16 {
			contrib[pos][d] = crc16Update(crc16(hexDigits[d:d+1]), zeroPad[:fenceDigits-1-pos])
		}
	}
	var filled [numSlots]bool
	found := 0
	for n := 0; n < 1<<(4*fenceDigits) && found < numSlots; n++ {
		var crc uint16
		for pos := range fenceDigits {
			crc ^= contrib[pos][(n>>(4*(fenceDigits-1-pos)))&0xf]
		}
		v := crc & slotMask
		if filled[v] {
			continue
		}
		filled[v] = true
		found++
		for pos := range fenceDigits {
			fenceTable[v][pos] = hexDigits[(n>>(4*(fenceDigits-1-pos)))&0xf]
		}
	}
	if found != numSlots {
		panic("redisstore: fence table incomplete") // see TestFenceTableComplete
	}
}

// fenceKey returns the name of the fencing counter of key. It starts with key
// (so that Clear of a prefix of key removes it too) and is always in the same
// Redis Cluster slot as key, so that one script can update both:
//
//   - a key with a hash tag (a non-empty "{...}", see the Cluster spec) keeps
//     it: the counter is key + ":fence";
//   - a key without one is hashed whole; the counter is key + ":fence:" +
//     five hex digits, chosen so that the whole counter name hashes to the
//     key's slot. Appending characters other than braces never creates or
//     changes a hash tag, so the counter is hashed whole too.
//
// The name does not depend on the kind of client, so every process agrees on
// it.
func fenceKey(key string) string {
	if _, tagged := hashTag(key); tagged {
		return key + fenceSuffix
	}
	fenceTableOnce.Do(buildFenceTable)
	// CRC-16/XMODEM is linear with a zero initial value, so for a fixed
	// length crc(P || X) = crc(P || 0000) ^ crc(X): pick X to make the low
	// 14 bits equal those of crc(key).
	prefix := key + fenceSuffixNoTag
	base := crc16Update(crc16(prefix), zeroPad)
	want := (base ^ crc16(key)) & slotMask
	return prefix + string(fenceTable[want][:])
}
