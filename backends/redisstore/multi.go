package redisstore

import (
	"context"
	"errors"
	"unsafe"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/cache"
)

// GetMulti returns the values of keys, aligned with keys, nil for a miss.
//
// On a single server it is one MGET. On a Cluster, a Ring or an unknown
// client it is one pipeline of GETs, which go-redis splits into one pipeline
// per master (per shard on a Ring), sent concurrently: one round trip per
// node, and no CROSSSLOT error whatever slots the keys are in.
func (s *Store) GetMulti(ctx context.Context, keys []string) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	if s.topo == single {
		vals, err := s.client.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, fail(ctx, err)
		}
		for i, v := range vals {
			if str, ok := v.(string); ok {
				out[i] = stringBytes(str)
			}
		}
		return out, nil
	}
	pipe := s.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, k)
	}
	// Exec returns the first failed command's error, which is redis.Nil
	// when a key is missing: look at each command instead.
	_, _ = pipe.Exec(ctx)
	for i, cmd := range cmds {
		b, err := cmd.Bytes()
		switch {
		case err == nil:
			out[i] = nonNil(b)
		case errors.Is(err, redis.Nil):
		default:
			return nil, fail(ctx, err)
		}
	}
	return out, nil
}

// stringBytes returns the bytes of a string go-redis read from a reply, as
// a non-nil slice, without copying. go-redis reads each bulk reply into a
// fresh buffer that nothing else refers to, and StringCmd.Bytes hands it out
// the same way; SliceCmd (MGET) only offers the strings.
func stringBytes(s string) []byte {
	return nonNil(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// SetMulti sets every item with its own ttl, SET (with PX when the ttl is
// positive), in transactions, one round trip per server (see Writes in the
// package documentation). It is not atomic: on error some items may be
// written.
func (s *Store) SetMulti(ctx context.Context, items []cache.Item) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	ops := make([]batchOp, len(items))
	for i, it := range items {
		ops[i] = batchOp{op: "set", key: it.Key, value: it.Value, ttl: it.TTL}
	}
	_, err := s.batch(ctx, ops)
	return err
}

// Delete removes the keys and reports how many existed, with UNLINK in
// transactions (see Writes in the package documentation): one UNLINK of
// every key on a single server; elsewhere one-key UNLINKs, one round trip
// per server.
func (s *Store) Delete(ctx context.Context, keys ...string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if len(keys) == 0 {
		return 0, nil
	}
	if s.topo == single {
		var cmd *redis.IntCmd
		if err := s.tx(ctx, func(p redis.Pipeliner) error { cmd = p.Unlink(ctx, keys...); return nil }); err != nil {
			return 0, err
		}
		return int(cmd.Val()), nil
	}
	ops := make([]batchOp, len(keys))
	for i, k := range keys {
		ops[i] = batchOp{op: "unlink", key: k}
	}
	counts, err := s.batch(ctx, ops)
	n := 0
	for _, c := range counts {
		n += int(c)
	}
	return n, err
}
