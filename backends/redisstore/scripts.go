package redisstore

import (
	"context"
	_ "embed" // the Lua scripts
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/cache"
)

// The Lua scripts of the atomic operations. Each is run as a write (see
// eval): EVALSHA, then EVAL when the server does not know the script yet,
// each in a transaction.
var (
	//go:embed scripts/cas.lua
	casSrc string
	//go:embed scripts/delete_if_equal.lua
	deleteIfEqualSrc string
	//go:embed scripts/extend_if_equal.lua
	extendIfEqualSrc string
	//go:embed scripts/persist.lua
	persistSrc string
	//go:embed scripts/add_fenced.lua
	addFencedSrc string
	//go:embed scripts/batch.lua
	batchSrc string
	//go:embed scripts/swap_if_equal.lua
	swapIfEqualSrc string

	casScript           = redis.NewScript(casSrc)
	deleteIfEqualScript = redis.NewScript(deleteIfEqualSrc)
	extendIfEqualScript = redis.NewScript(extendIfEqualSrc)
	persistScript       = redis.NewScript(persistSrc)
	addFencedScript     = redis.NewScript(addFencedSrc)
	batchScript         = redis.NewScript(batchSrc)
	swapIfEqualScript   = redis.NewScript(swapIfEqualSrc)
)

// Gets returns the value of key and a token for CompareAndSwap. Redis has no
// version numbers: the token is the value itself, and CompareAndSwap
// compares values. A key changed from A to B and back to A since Gets is
// therefore not a conflict.
func (s *Store) Gets(ctx context.Context, key string) ([]byte, cache.Token, error) {
	b, err := s.Get(ctx, key)
	if err != nil {
		return nil, cache.AbsentToken(), err
	}
	// The token gets its own copy: a caller that modifies the value (a
	// Bytes codec hands it out as it is) must not change the token.
	return b, cache.NewToken(append([]byte{}, b...)), nil
}

// CompareAndSwap stores value with ttl only if key still holds the value the
// token was read from (for the absent token: only if key is still absent),
// atomically, in a Lua script. Otherwise it returns cache.ErrConflict. A
// ttl of 0 writes a key without expiry, removing any previous expiry.
func (s *Store) CompareAndSwap(ctx context.Context, key string, value []byte, token cache.Token, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	present, old := "0", []byte(nil)
	if !token.Absent() {
		present, old = "1", token.Bytes()
	}
	cmd, err := s.eval(ctx, casScript, []string{key}, value, ttlMillis(ttl), present, old)
	if err != nil {
		return err
	}
	if ok, _ := cmd.Bool(); !ok {
		return cache.ErrConflict
	}
	return nil
}

// DeleteIfEqual deletes key only if it holds exactly value, atomically, and
// reports whether it deleted. When it deletes, the same script publishes the
// release on the key's channel (see Channel and Watch).
func (s *Store) DeleteIfEqual(ctx context.Context, key string, value []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	cmd, err := s.eval(ctx, deleteIfEqualScript, []string{key}, value, s.Channel(key))
	if err != nil {
		return false, err
	}
	return cmd.Bool()
}

// SwapIfEqual stores value with ttl only if key holds exactly old,
// atomically, in a Lua script that then publishes on the key's channel,
// whether it swapped or not (see cache.Swapper), all in one round trip.
func (s *Store) SwapIfEqual(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	cmd, err := s.eval(ctx, swapIfEqualScript, []string{key}, old, value, ttlMillis(ttl), s.Channel(key))
	if err != nil {
		return false, err
	}
	return cmd.Bool()
}

// ExtendIfEqual sets the ttl of key (PEXPIRE; PERSIST for 0) only if it
// holds exactly value, atomically, and reports whether it did.
func (s *Store) ExtendIfEqual(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	cmd, err := s.eval(ctx, extendIfEqualScript, []string{key}, value, ttlMillis(ttl))
	if err != nil {
		return false, err
	}
	return cmd.Bool()
}

// AddFenced is Add that also takes a fencing token, in the same Lua script,
// and returns it: max(counter + 1, the server's time in microseconds), which
// becomes the new value of the key's fencing counter. The counter is
// stored under a name that starts with key and is in the same Cluster slot
// (key + ":fence" for a key with a hash tag, key + ":fence:" and five hex
// digits otherwise); it has no expiry. It returns cache.ErrExists, and
// writes nothing, when key holds a value. What the tokens' growth depends
// on (the counter evicted or lost, a failover, a Ring) is under "Fencing
// tokens" in the package documentation.
func (s *Store) AddFenced(ctx context.Context, key string, value []byte, ttl time.Duration) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	cmd, err := s.eval(ctx, addFencedScript, []string{key, fenceKey(key)}, value, ttlMillis(ttl))
	if err != nil {
		if errors.Is(err, redis.Nil) {
			return 0, cache.ErrExists
		}
		return 0, err
	}
	return cmd.Int64()
}
