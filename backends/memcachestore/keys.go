package memcachestore

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

// Key encoding. memcached's text protocol takes keys of at most 250 bytes
// without spaces or control characters; cache keys are arbitrary strings.
//
// A key is plain, and sent as it is, when it is 1 to 250 bytes long, has no
// byte below 0x21 (space and control characters) and no 0x7f, and does not
// contain the marker "~#". Any other key is encoded as
//
//	readable + "~#" + base64url(SHA-256(key))
//
// where readable is a prefix of the key, cut at a UTF-8 boundary so that the
// whole fits in 250 bytes, in which every forbidden byte is replaced by '_',
// and the hash is 43 characters of unpadded base64url.
//
// No encoded key equals a plain key: every encoded key contains the marker,
// which no plain key does. Two encoded keys are equal only if their last 43
// bytes, the hashes of the original keys, are: distinct keys collide only
// with a SHA-256 collision.
const (
	maxKeyLen   = 250
	keyMarker   = "~#"
	hashLen     = 43 // base64.RawURLEncoding.EncodedLen(sha256.Size)
	maxReadable = maxKeyLen - len(keyMarker) - hashLen
)

// plainKey reports whether key can be sent to memcached as it is.
func plainKey(key string) bool {
	if len(key) == 0 || len(key) > maxKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c <= ' ' || c == 0x7f {
			return false
		}
		if c == '~' && i+1 < len(key) && key[i+1] == '#' {
			return false
		}
	}
	return true
}

// encodeKey returns the memcached key of key: key itself when it is plain,
// its encoded form otherwise. It allocates only for keys that need encoding.
func encodeKey(key string) string {
	if plainKey(key) {
		return key
	}
	readable := key
	if len(readable) > maxReadable {
		n := maxReadable
		for n > 0 && !utf8.RuneStart(readable[n]) {
			n--
		}
		readable = readable[:n]
	}
	var b strings.Builder
	b.Grow(len(readable) + len(keyMarker) + hashLen)
	for i := 0; i < len(readable); i++ {
		c := readable[i]
		if c <= ' ' || c == 0x7f {
			c = '_'
		}
		b.WriteByte(c)
	}
	b.WriteString(keyMarker)
	sum := sha256.Sum256([]byte(key))
	var h [hashLen]byte
	base64.RawURLEncoding.Encode(h[:], sum[:])
	b.Write(h[:])
	return b.String()
}

// encodeKeys returns the memcached keys of keys. It returns keys itself when
// every key is plain.
func encodeKeys(keys []string) []string {
	var out []string
	for i, k := range keys {
		if out == nil {
			if plainKey(k) {
				continue
			}
			out = make([]string, len(keys))
			copy(out, keys[:i])
		}
		out[i] = encodeKey(k)
	}
	if out == nil {
		return keys
	}
	return out
}
