// Package codec turns typed values into the bytes a cache stores, and back.
//
// A [Codec] encodes a V to bytes and decodes bytes to a V. The built-in
// codecs are:
//
//   - [MsgPack]: MessagePack (github.com/vmihailenco/msgpack/v5), compact and
//     fast; the default for structs, maps, slices and pointers.
//   - [JSON]: encoding/json, readable by any tool.
//   - [String] and [Bytes]: the bytes as they are.
//   - [Int], [Uint], [Float] and [Bool]: decimal text, so that
//     Cache.Increment and Cache.Get of one key agree.
//
// [Default] picks one by type, and a named type such as time.Duration by
// its kind; cache.New uses it when no codec is given, and [Funcs] adapts a
// pair of functions.
//
// # Corrupt bytes
//
// Decoding bytes that are not a valid encoding (corrupt, truncated, written
// by another codec) returns an error wrapping [ErrDecode]; the cache reports
// such a value as an error, not as a miss, so that a mismatch between
// writers is seen (memo.GetOrCompute heals it instead).
//
// Whatever the bytes, Decode of every codec here but [Funcs] (whose
// functions are yours) returns a value or an ErrDecode error, and neither
// panics nor exhausts the memory or the stack, which the Go runtime cannot
// recover from. Decoding n bytes allocates at most a fixed multiple of n
// bytes beyond the size of V: the tests hold it to 256 bytes per byte, plus
// 64 KiB, for value types whose slice elements, map entries (key and value)
// and pointed-to values take at most 32 bytes, as numbers, strings, slices,
// maps, interfaces and small structs do; a larger element can cost a few
// times its size per byte, since one byte (nil, an empty map) stands for
// one. Arrays and maps nest at most 10000 levels deep, as encoding/json
// allows, which keeps the goroutine stack within a few MiB.
//
// For [MsgPack] this takes a check of the bytes before the msgpack decoder,
// which trusts the lengths it reads, sees them (see MsgPack). A type that
// decodes itself (msgpack.CustomDecoder or msgpack.Unmarshaler,
// encoding.BinaryUnmarshaler or encoding.TextUnmarshaler, a msgpack
// extension) is given checked bytes, but what it allocates from them is its
// own affair, as with Funcs.
//
// # Times
//
// [MsgPack] stores a time.Time as a MessagePack timestamp, the instant only:
// it decodes as the same instant (Equal reports true) in time.Local, its
// zone and offset lost; the zero Time decodes as itself. [JSON] stores RFC
// 3339 text, which keeps the offset but not the zone's name. Neither keeps
// the monotonic clock reading. To get times back in a given location, call
// In or UTC on them after decoding, or use JSON.
//
// # Goroutines
//
// Every codec is safe for concurrent use and starts no goroutine. Codecs
// take no context: they do no I/O.
package codec
