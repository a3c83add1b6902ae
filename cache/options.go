package cache

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/typedcache/typedcache/codec"
)

// Options configure a Cache. A nil *Options, and every zero field, means the
// default.
type Options[K comparable, V any] struct {
	// Namespace, when set, prefixes every key: key k is stored as
	// "Namespace:" + Key(k). Clear deletes exactly the keys of the namespace.
	// Namespaces must not nest ("app" and "app:users" share keys): see the
	// package documentation.
	Namespace string

	// Key turns a K into the key's text. The default uses strings as they
	// are, integers in decimal, then fmt.Stringer, then fmt.Sprint. A Key
	// function that returns "" for some k, or text containing a NUL byte
	// (reserved: see ReservedKeyByte), makes operations on k fail with
	// ErrInvalidKey.
	Key func(K) string

	// Codec encodes and decodes values; the default is codec.Default[V]().
	Codec codec.Codec[V]

	// TTL is the expiry of every write that does not say otherwise
	// (see Cache.WithTTL); 0 means no expiry. A negative TTL makes New panic.
	TTL time.Duration

	// Timeout bounds every store operation, and every publication of an
	// invalidation on the local tier's bus; 0 means only the caller's
	// context bounds it.
	Timeout time.Duration

	// ComputeTimeout bounds the shared computation of GetOrCompute, which
	// runs detached from its callers' contexts; the default is one minute.
	ComputeTimeout time.Duration

	// Raw makes every write store the codec's bytes as they are, and every
	// read take what it finds for the codec's bytes: no entry headers (see
	// the package documentation, Entries), for keys that programs other
	// than this module must read as plain values. A []byte value that
	// starts with the byte 0xC1 is then stored as it is. Packages that need
	// entries refuse a Raw cache with an error matching ErrRaw (memo's
	// leases, negative caching, refresh-ahead); CompareAndSwap writes
	// plain bytes, so a write whose reply was lost cannot be recognised
	// (lock.Update returns ErrUncertain).
	Raw bool

	// Compression, when set, compresses the encodings of large values: they
	// are stored as entries flagged compressed (see Entries in the package
	// documentation), whatever wrote them (Set, CompareAndSwap, memo), and
	// every reader decompresses them, with or without this option. Values
	// under the threshold stay as they were. New panics if it is set on a
	// Raw cache. See docs/benchmarks.md for what it costs and saves.
	Compression *Compression

	// Local, when set, keeps a bounded in-process tier of decoded values in
	// front of the store (see LocalOptions and the package documentation,
	// The local tier): a local hit costs a map lookup, no round trip and no
	// decoding. Writes and deletes through any Cache publish an
	// invalidation on the store's bus (or LocalOptions.Bus), and every
	// Cache with a local tier drops its copy.
	Local *LocalOptions

	// Name names the cache in metrics and logs (Event.Cache); default the
	// Namespace.
	Name string

	// Observer, when set, receives an Event for everything the cache (and
	// memo and lock through it) does, with durations; an Observer that is
	// also a Tracer follows operations as they run. Package
	// typedcache/otel provides one for OpenTelemetry. Nil costs nothing.
	Observer Observer

	// Logger, when set, receives failures of work no caller waits for
	// (memo's refreshes and writes of computed values, invalidations that
	// could not be sent, lease renewals), each cause once a minute at most,
	// with the key. Without it they are counted in Stats.BackgroundErrors
	// and reported to the Observer only.
	Logger *slog.Logger
}

// Compression configures the compression of large values (Options.
// Compression). Every zero field means the default.
type Compression struct {
	// Threshold is the size of an encoding from which it is compressed:
	// default DefaultCompressionThreshold.
	Threshold int
	// Compressor compresses; default codec.S2(). Entries written with
	// another built-in compressor are read all the same (the entry records
	// its compressor); one of your own must be given here to be read.
	Compressor codec.Compressor
	// MaxDecompressed bounds what one stored value may decompress to, so
	// that corrupt bytes cannot make a read allocate without bound:
	// default DefaultMaxDecompressed. A larger value fails to decode with
	// an error matching codec.ErrDecode.
	MaxDecompressed int
}

// Defaults of Compression.
const (
	DefaultCompressionThreshold = 1024
	DefaultMaxDecompressed      = 64 << 20
)

// DefaultComputeTimeout is the bound of a GetOrCompute computation when
// Options.ComputeTimeout is zero.
const DefaultComputeTimeout = time.Minute

// defaultKey returns the key function for K when Options.Key is nil.
func defaultKey[K comparable]() func(K) string {
	var zero K
	switch any(zero).(type) {
	case string:
		return func(k K) string { return any(k).(string) }
	case int:
		return func(k K) string { return strconv.Itoa(any(k).(int)) }
	case int64:
		return func(k K) string { return strconv.FormatInt(any(k).(int64), 10) }
	case int32:
		return func(k K) string { return strconv.FormatInt(int64(any(k).(int32)), 10) }
	case uint64:
		return func(k K) string { return strconv.FormatUint(any(k).(uint64), 10) }
	case uint32:
		return func(k K) string { return strconv.FormatUint(uint64(any(k).(uint32)), 10) }
	case uint:
		return func(k K) string { return strconv.FormatUint(uint64(any(k).(uint)), 10) }
	}
	return func(k K) string {
		if s, ok := any(k).(fmt.Stringer); ok {
			return s.String()
		}
		return fmt.Sprint(k)
	}
}
