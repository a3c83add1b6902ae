package redisstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/cache"
)

// scanCount is the COUNT hint of the SCAN calls of Clear: about how many
// keys each call examines, and so the size of each UNLINK batch.
const scanCount = 1000

// Clear deletes exactly the keys that start with prefix. The prefix "" runs
// FLUSHDB, which empties the client's database whoever wrote the keys.
// Another prefix is cleared with SCAN MATCH (the prefix's glob characters
// escaped, every key returned checked again) and UNLINK of each batch of
// about 1000 keys, so a large clear does not block the server; the scan is
// repeated until a pass finds nothing left to delete (see clearNode).
//
// On a Cluster it runs on every master (and FLUSHDB on every master); on a
// Ring on every shard that the Ring sees as up: the keys of a shard that is
// down are not cleared. Keys written while Clear runs may or may not be
// deleted.
//
// With a client of another type than *redis.Client, *redis.ClusterClient
// and *redis.Ring (a UniversalClient of the caller's making), Clear returns
// an error matching cache.ErrUnsupported and sends nothing: the store
// cannot tell which servers hold the keys, and a SCAN or a FLUSHDB through
// such a client reaches one server, which would silently leave the keys of
// the others.
func (s *Store) Clear(ctx context.Context, prefix string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		// SCAN each master; UNLINK through the cluster client, which
		// follows MOVED and ASK when a slot migrates during the scan.
		err = c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return clearNode(ctx, node, c, prefix, true)
		})
	case *redis.Ring:
		err = c.ForEachShard(ctx, func(ctx context.Context, shard *redis.Client) error {
			return clearNode(ctx, shard, shard, prefix, false)
		})
	case *redis.Client:
		err = clearNode(ctx, c, c, prefix, false)
	default:
		return fmt.Errorf("redisstore: clear with a client of type %T: %w", s.client, cache.ErrUnsupported)
	}
	if err != nil {
		return fail(ctx, err)
	}
	return nil
}

// maxClearPasses bounds the SCAN passes of Clear on one server.
const maxClearPasses = 8

// clearNode clears prefix on one server. A Cluster node refuses a
// multi-key UNLINK of keys in different slots, so with perKey each key is
// unlinked by its own command, in one pipeline per batch.
//
// Redis's SCAN returns every key present for the whole scan, however many
// keys are deleted meanwhile, so one pass would do; but a key written or
// moved (Cluster resharding) during the scan may be missed, and servers
// that emulate Redis (miniredis) skip keys when keys are deleted during the
// scan. So passes repeat until one deletes nothing, at most maxClearPasses.
func clearNode(ctx context.Context, c, del redis.Cmdable, prefix string, perKey bool) error {
	if prefix == "" {
		return c.FlushDB(ctx).Err()
	}
	match := escapeGlob(prefix) + "*"
	for range maxClearPasses {
		n, err := clearPass(ctx, c, del, prefix, match, perKey)
		if err != nil || n == 0 {
			return err
		}
	}
	return nil
}

// clearPass runs one SCAN of the server and unlinks the keys that start
// with prefix, each batch as it comes; it returns how many it unlinked.
func clearPass(ctx context.Context, c, del redis.Cmdable, prefix, match string, perKey bool) (int, error) {
	var (
		cursor uint64
		total  int
	)
	for {
		keys, next, err := c.Scan(ctx, cursor, match, scanCount).Result()
		if err != nil {
			return total, err
		}
		// The pattern already selects the prefix; checking again keeps
		// Clear exact even on a server whose matcher differs.
		n := 0
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) {
				keys[n] = k
				n++
			}
		}
		if err := unlink(ctx, del, keys[:n], perKey); err != nil {
			return total, err
		}
		total += n
		if next == 0 {
			return total, nil
		}
		cursor = next
	}
}

func unlink(ctx context.Context, c redis.Cmdable, keys []string, perKey bool) error {
	switch {
	case len(keys) == 0:
		return nil
	case !perKey || len(keys) == 1:
		return c.Unlink(ctx, keys...).Err()
	}
	pipe := c.Pipeline()
	for _, k := range keys {
		pipe.Unlink(ctx, k)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// escapeGlob escapes the characters that are special in a Redis glob
// pattern (* ? [ ] and the backslash), so that the pattern matches prefix
// literally.
func escapeGlob(prefix string) string {
	if !strings.ContainsAny(prefix, `*?[]\`) {
		return prefix
	}
	var b strings.Builder
	b.Grow(len(prefix) + 8)
	for i := 0; i < len(prefix); i++ {
		switch c := prefix[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
