package memcachestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/decimal"
)

// The operations in this file are read-modify-write: a gets, then a cas
// carrying the CAS unique that the gets returned. memcached stores the cas
// only if the item was not written since (its CAS unique changes with every
// write), so each operation takes effect atomically at its cas; a cas that
// loses a race is retried from the read.

// Gets returns the value of key and a token holding its CAS unique (8 bytes,
// big-endian). On a miss it returns cache.AbsentToken and cache.ErrNotFound.
func (s *Store) Gets(ctx context.Context, key string) ([]byte, cache.Token, error) {
	it, err := s.gets(ctx, encodeKey(key))
	if err != nil {
		return nil, cache.AbsentToken(), missAs(err, cache.ErrNotFound)
	}
	var tok [8]byte
	binary.BigEndian.PutUint64(tok[:], it.CasID)
	return it.Value, cache.NewToken(tok[:]), nil
}

// CompareAndSwap stores value with ttl only if key is unchanged since token
// was read: memcached's cas with the token's CAS unique, or, for the absent
// token, memcached's add. It compares versions, not values: any write since
// the read, even of the same value, and any change of the key's ttl through
// this store (Expire, ExtendIfEqual), is a conflict. A conflict, a key that
// vanished, or a token that no Gets of this package returned give
// cache.ErrConflict.
func (s *Store) CompareAndSwap(ctx context.Context, key string, value []byte, token cache.Token, ttl time.Duration) error {
	it := newItem(encodeKey(key), value, ttl)
	if token.Absent() {
		err := s.write(ctx, opAdd, it)
		if errors.Is(err, memcache.ErrNotStored) {
			return cache.ErrConflict
		}
		return err
	}
	b := token.Bytes()
	if len(b) != 8 {
		if err := s.enter(ctx); err != nil {
			return err
		}
		return cache.ErrConflict
	}
	it.CasID = binary.BigEndian.Uint64(b)
	err := s.write(ctx, opCAS, it)
	if lostCAS(err) {
		return cache.ErrConflict
	}
	return err
}

// DeleteIfEqual deletes key only if it holds exactly value. memcached's text
// protocol has no conditional delete, so the delete is a cas, carrying the
// CAS unique of the read that compared the value, that stores an empty item
// already expired (exptime -1): it takes effect only if the key was not
// written since the read.
func (s *Store) DeleteIfEqual(ctx context.Context, key string, value []byte) (bool, error) {
	mkey := encodeKey(key)
	for {
		it, err := s.gets(ctx, mkey)
		if errors.Is(err, memcache.ErrCacheMiss) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !bytes.Equal(it.Value, value) {
			return false, nil
		}
		s.afterRead()
		err = s.write(ctx, opCAS, &memcache.Item{Key: mkey, Expiration: -1, CasID: it.CasID})
		if !lostCAS(err) {
			return err == nil, err
		}
	}
}

// ExtendIfEqual sets the ttl of key (0 removes the expiry) only if it holds
// exactly value: a read, then a cas rewriting the same value with the new
// ttl.
func (s *Store) ExtendIfEqual(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return s.rewriteTTL(ctx, encodeKey(key), true, value, ttl)
}

// Expire sets the ttl of an existing key (0 removes its expiry) and reports
// whether the key existed. It is a read, then a cas rewriting the value with
// the new ttl, rather than memcached's touch, so that the expiry stamp that
// Increment relies on (see the package documentation) stays true. It moves
// the value over the network twice.
func (s *Store) Expire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return s.rewriteTTL(ctx, encodeKey(key), false, nil, ttl)
}

// rewriteTTL rewrites the value of mkey with ttl, if it holds exactly want
// (any value unless compare), and reports whether it did.
func (s *Store) rewriteTTL(ctx context.Context, mkey string, compare bool, want []byte, ttl time.Duration) (bool, error) {
	for {
		it, err := s.gets(ctx, mkey)
		if errors.Is(err, memcache.ErrCacheMiss) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if compare && !bytes.Equal(it.Value, want) {
			return false, nil
		}
		s.afterRead()
		it.Expiration, it.Flags = newExpiry(ttl, it.Flags, time.Now())
		err = s.write(ctx, opCAS, it)
		if !lostCAS(err) {
			return err == nil, err
		}
	}
}

// Increment adds delta to the signed 64-bit decimal integer stored under
// key. memcached's incr and decr are unsigned, clamp at 0, pad a shortened
// value with spaces and wrap around at 2^64, so Increment does not use them:
// it reads the value, parses it (canonical decimal text, as Redis's INCRBY
// reads it: "+5", "05" and "-0" are not integers), adds with an
// overflow check and writes the result back as decimal text with a cas,
// keeping the key's expiry (see the package documentation), retrying when
// the cas loses a race. A missing key is created holding delta without
// expiry (memcached's add); so is a key whose expiry stamp says it is past
// its ttl, which memcached may keep up to two seconds longer (a cas
// replaces it).
func (s *Store) Increment(ctx context.Context, key string, delta int64) (int64, error) {
	mkey := encodeKey(key)
	for {
		it, err := s.gets(ctx, mkey)
		if errors.Is(err, memcache.ErrCacheMiss) {
			err = s.write(ctx, opAdd, &memcache.Item{Key: mkey, Value: strconv.AppendInt(nil, delta, 10)})
			if errors.Is(err, memcache.ErrNotStored) {
				continue // created meanwhile
			}
			if err != nil {
				return 0, err
			}
			return delta, nil
		}
		if err != nil {
			return 0, err
		}
		n, ok := decimal.ParseInt64(it.Value)
		if (delta > 0 && n > math.MaxInt64-delta) || (delta < 0 && n < math.MinInt64-delta) {
			ok = false
		}
		s.afterRead()
		exptime, flags, expired := keptExpiry(it.Flags, time.Now())
		switch {
		case expired:
			// Past its expiry, kept only by memcached's clock: as a
			// missing key, it becomes delta without expiry, whatever it
			// held.
			n, exptime, flags = delta, 0, 0
		case !ok:
			return 0, cache.ErrNotInteger
		default:
			n += delta
		}
		it.Value = strconv.AppendInt(it.Value[:0], n, 10)
		it.Expiration, it.Flags = exptime, flags
		err = s.write(ctx, opCAS, it)
		if err == nil {
			return n, nil
		}
		if !lostCAS(err) {
			return 0, err
		}
	}
}

// lostCAS reports whether err is a cas that found the key written since the
// read (EXISTS) or gone (NOT_FOUND, NOT_STORED).
func lostCAS(err error) bool {
	return errors.Is(err, memcache.ErrCASConflict) ||
		errors.Is(err, memcache.ErrCacheMiss) ||
		errors.Is(err, memcache.ErrNotStored)
}

// afterRead runs the test hook, if any.
func (s *Store) afterRead() {
	if s.testHookAfterRead != nil {
		s.testHookAfterRead()
	}
}
