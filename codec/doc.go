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
// Decoding bytes that are not a valid encoding (corrupt, truncated, written
// by another codec) returns an error wrapping [ErrDecode] and never panics;
// the cache reports such a value as an error, not as a miss, so that a
// mismatch between writers is seen (memo.GetOrCompute heals it instead).
package codec
