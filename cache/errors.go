package cache

import (
	"errors"
	"strconv"
)

// Sentinel errors. Match them with [errors.Is]: every error the Cache returns
// wraps its cause together with the operation and the key, as in
// "cache: get users:42: <cause>".
var (
	// ErrNotFound is returned by Store.Get and Store.Gets on a miss. The Cache
	// never returns it from Get (a miss is found == false there), but does
	// from TTL on a missing key.
	ErrNotFound = errors.New("cache: not found")

	// ErrExists is returned by Add when the key already holds a value.
	ErrExists = errors.New("cache: key exists")

	// ErrConflict is returned by CompareAndSwap when the key changed since its
	// token was read.
	ErrConflict = errors.New("cache: conflict")

	// ErrNotInteger is returned by Increment when the stored value is not a
	// signed 64-bit decimal integer, or when the increment would overflow.
	ErrNotInteger = errors.New("cache: value is not an integer")

	// ErrUnsupported is returned by an operation the store cannot perform,
	// such as TTL on Memcached or Clear of a prefix on Memcached.
	ErrUnsupported = errors.New("cache: operation not supported by this store")

	// ErrInvalidKey is returned when a key is empty or otherwise cannot be used.
	ErrInvalidKey = errors.New("cache: invalid key")

	// ErrInvalidTTL is returned for a negative TTL.
	ErrInvalidTTL = errors.New("cache: invalid ttl")

	// ErrClosed is returned by a store that has been closed.
	ErrClosed = errors.New("cache: store closed")

	// ErrUncertain is wrapped by the error of a write whose outcome is not
	// known: the command reached the connection, but the connection failed
	// before the reply came, so the store may or may not have applied it.
	// A store never applies one call twice to find out (a client that
	// retries such a write could apply it twice); the caller decides, and
	// packages built on the Cache (lock, memo) read the key back where the
	// value they wrote can tell them.
	ErrUncertain = errors.New("cache: outcome unknown (the reply was lost)")

	// ErrTooLarge is returned by a write whose key and value are larger
	// than the store can hold (Memcached's item size limit). The store
	// refuses it before sending, so the key's old value is left as it was.
	ErrTooLarge = errors.New("cache: value too large for the store")

	// ErrRaw is returned by operations that need entry headers on a cache
	// made with Options.Raw.
	ErrRaw = errors.New("cache: a Raw cache stores no entries")

	// ErrNotInvalidated is wrapped by the error of a write that reached the
	// store but whose invalidation could not be sent on the local tier's
	// bus: other processes may serve the old value from their local tier
	// until its TTL (LocalOptions.TTL). Writing again sends it again.
	ErrNotInvalidated = errors.New("cache: written, but the invalidation was not sent")

	// ErrUnsafeConfig is wrapped by every finding of a Check: a server or
	// client setting under which the store cannot keep a guarantee of this
	// module (see Checker).
	ErrUnsafeConfig = errors.New("cache: unsafe setting")
)

// OpError is the error type of every failed Cache operation, and of the
// packages built on the Cache (lock, memo). It records the package, the
// operation, the full store key (empty for operations on many keys) and the
// cause, which [errors.Is] and [errors.As] see through Unwrap:
// "cache: get users:42: <cause>", "lock: release users:42\x00lock: <cause>".
type OpError struct {
	Pkg string // "lock", "memo"; "" for the cache itself
	Op  string // "get", "set", "add", ...
	Key string // the full store key, if the operation had exactly one
	Err error  // the cause
}

func (e *OpError) Error() string {
	pkg := e.Pkg
	if pkg == "" {
		pkg = "cache"
	}
	if e.Key == "" {
		return pkg + ": " + e.Op + ": " + e.Err.Error()
	}
	return pkg + ": " + e.Op + " " + printableKey(e.Key) + ": " + e.Err.Error()
}

// printableKey returns key as it is, or quoted (without the quotes) when it
// holds control bytes, such as the reserved NUL of the keys derived from a
// value's key: an error message never carries a raw NUL.
func printableKey(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] == 0x7f {
			q := strconv.Quote(key)
			return q[1 : len(q)-1]
		}
	}
	return key
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// SettingError is one finding of a Check: a setting of the server or of the
// client under which the store cannot keep one of its guarantees. It matches
// ErrUnsafeConfig.
type SettingError struct {
	Setting string // the setting, as the server or client names it: "maxmemory-policy", "ContextTimeoutEnabled"
	Value   string // its value
	Risk    string // what can go wrong, and what to set instead
}

func (e *SettingError) Error() string {
	return "cache: unsafe setting " + e.Setting + "=" + e.Value + ": " + e.Risk
}

// Is reports whether target is ErrUnsafeConfig.
func (e *SettingError) Is(target error) bool { return target == ErrUnsafeConfig }
