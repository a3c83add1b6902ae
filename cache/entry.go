package cache

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/typedcache/typedcache/codec"
)

// Entries. A value that carries metadata is stored as an entry: a small
// versioned header, then the codec's bytes. The header tells the
// read-through layer (memo) what it needs about the value without a second
// key: whether it is a value, a cached "not found" or only a lease, when it
// was written, when it stops being fresh, and, while a computation runs,
// its lease.
//
// Layout, version 1, all integers big-endian:
//
//	0      magic 0xC1: no MessagePack output, UTF-8 text or decimal number
//	       starts with it, so a plain value is never taken for an entry
//	1      version (1)
//	2      flags: 0x01 value, 0x02 not found, 0x04 lease, 0x08 compressed
//	3      header length in bytes (28, or 36 with a lease); readers skip
//	       what they do not know, so later versions may add fields
//	4..11  written at, Unix milliseconds
//	12..19 fresh until (logical expiry), Unix milliseconds; 0: no expiry
//	20..27 id: the write's random id, or the lease's token
//	28..35 lease end, Unix milliseconds (with the lease flag)
//	...    the codec's bytes (with the value flag)
//
// Plain Cache writes (Set, SetMulti, Add) store the codec's bytes as they
// are, so that Increment and other programs read them; only bytes that
// themselves start with the magic byte (a []byte value) are written as an
// entry. CompareAndSwap writes an entry with a fresh id, so that a write
// whose reply was lost can be recognised by reading it back. Every read
// understands both: bytes without the magic byte are a plain, fresh value.

// EntryMagic is the first byte of every entry.
const EntryMagic = 0xC1

const (
	entryVersion = 1

	flagValue      = 0x01
	flagNotFound   = 0x02
	flagLease      = 0x04
	flagCompressed = 0x08

	entryHeaderLen      = 28
	entryLeaseHeaderLen = 36
)

// errEntry is wrapped by the errors of bytes that start with the magic
// byte but are no entry this version can read.
var errEntry = errors.New("corrupt entry header")

// entryMeta is an entry's header.
type entryMeta struct {
	flags      byte
	written    int64 // Unix ms
	freshUntil int64 // Unix ms; 0: no logical expiry
	id         uint64
	leaseEnd   int64 // Unix ms, with flagLease
}

// isEntry reports whether b is an entry (or corrupt bytes posing as one).
func isEntry(b []byte) bool { return len(b) > 0 && b[0] == EntryMagic }

// appendEntry appends the entry of m and payload to dst.
func appendEntry(dst []byte, m entryMeta, payload []byte) []byte {
	hl := entryHeaderLen
	if m.flags&flagLease != 0 {
		hl = entryLeaseHeaderLen
	}
	dst = append(dst, EntryMagic, entryVersion, m.flags, byte(hl))
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.written))
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.freshUntil))
	dst = binary.BigEndian.AppendUint64(dst, m.id)
	if m.flags&flagLease != 0 {
		dst = binary.BigEndian.AppendUint64(dst, uint64(m.leaseEnd))
	}
	if m.flags&flagValue != 0 {
		dst = append(dst, payload...)
	}
	return dst
}

// parseEntry reads the entry b (isEntry(b) is true). It never panics, never
// allocates, and returns an error wrapping codec.ErrDecode for bytes that
// are no entry: a header shorter than it says or than version 1's, an
// unknown version, contradictory flags, a value flag without a value, or
// bytes after a header that has no value.
func parseEntry(b []byte) (m entryMeta, payload []byte, err error) {
	if len(b) < 4 {
		return m, nil, entryError("truncated header (%d bytes)", len(b))
	}
	if b[1] != entryVersion {
		return m, nil, entryError("version %d", b[1])
	}
	m.flags = b[2]
	hl := int(b[3])
	want := entryHeaderLen
	if m.flags&flagLease != 0 {
		want = entryLeaseHeaderLen
	}
	switch {
	case m.flags&^(flagValue|flagNotFound|flagLease|flagCompressed) != 0:
		return m, nil, entryError("unknown flags %#x", m.flags)
	case m.flags&flagValue != 0 && m.flags&flagNotFound != 0:
		return m, nil, entryError("both a value and not found")
	case m.flags&(flagValue|flagNotFound|flagLease) == 0:
		return m, nil, entryError("neither a value, not found nor a lease")
	case m.flags&flagCompressed != 0 && m.flags&flagValue == 0:
		return m, nil, entryError("compressed without a value")
	case hl < want:
		return m, nil, entryError("header length %d, want at least %d", hl, want)
	case len(b) < hl:
		return m, nil, entryError("header length %d, only %d bytes", hl, len(b))
	}
	m.written = int64(binary.BigEndian.Uint64(b[4:]))
	m.freshUntil = int64(binary.BigEndian.Uint64(b[12:]))
	m.id = binary.BigEndian.Uint64(b[20:])
	if m.flags&flagLease != 0 {
		m.leaseEnd = int64(binary.BigEndian.Uint64(b[28:]))
	}
	payload = b[hl:]
	if m.flags&flagValue == 0 && len(payload) > 0 {
		return m, nil, entryError("%d bytes after a header without a value", len(payload))
	}
	return m, payload, nil
}

func entryError(format string, args ...any) error {
	return fmt.Errorf("%w: %w: "+format, append([]any{codec.ErrDecode, errEntry}, args...)...)
}

// newID returns a random entry id, never 0.
func newID() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
		if id := binary.BigEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}

// unixMilli returns t in Unix milliseconds, 0 for the zero time.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMilli returns the time of Unix milliseconds ms, the zero time for 0.
func fromMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
