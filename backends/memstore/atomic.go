package memstore

// The operations that read and write a key in one atomic step, each in one
// otter Compute: its function runs under the lock of the key's bucket.

import (
	"bytes"
	"context"
	"encoding/binary"
	"strconv"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/decimal"
)

// Add stores a copy of value under key only if the key is absent (or has
// expired), atomically; otherwise it returns cache.ErrExists.
func (s *Store) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := s.add(ctx, key, value, ttl, false, false)
	return err
}

// AddLease is Add for a lease lock (cache.Leaser): with a positive ttl the
// key is outside the store's bound, MaxEntries or MaxBytes, and leaves only
// when it expires or is deleted, never for size.
func (s *Store) AddLease(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := s.add(ctx, key, value, ttl, false, true)
	return err
}

// AddFenced is Add that also takes a fencing token in the same atomic step
// and returns it. Tokens come from one clock for the whole Store, a hybrid
// logical clock: each token is the greater of the last token plus one and
// the time in microseconds (the wall clock when the Store was made, plus
// the monotonic time since). So a key's tokens grow strictly for the life
// of the Store, whatever happens to the key (Delete, expiry, Clear), and
// cost no memory per key; and a Store made later, in this process or in
// the next one, hands out greater tokens than an earlier one, as long as
// the wall clock has moved forward past them between the two (tokens run
// ahead of the clock only while they are taken faster than one per
// microsecond).
//
// Only locks take fencing tokens, so the key is kept as AddLease keeps it.
func (s *Store) AddFenced(ctx context.Context, key string, value []byte, ttl time.Duration) (int64, error) {
	return s.add(ctx, key, value, ttl, true, true)
}

// nextFence returns the next token of the Store's fencing clock:
// max(last + 1, now in microseconds).
func (s *Store) nextFence() int64 {
	now := s.now() / int64(time.Microsecond)
	for {
		last := s.fence.Load()
		next := max(last+1, now)
		if s.fence.CompareAndSwap(last, next) {
			return next
		}
	}
}

// add is Add; AddFenced when fenced is set; AddLease, or AddFenced, when
// lease is set.
func (s *Store) add(ctx context.Context, key string, value []byte, ttl time.Duration, fenced, lease bool) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if ttl < 0 {
		return 0, cache.ErrInvalidTTL
	}
	var (
		added bool
		fence int64
	)
	s.c.Compute(key, func(old *entry, found bool) (*entry, otter.ComputeOp) {
		now := s.now()
		if found && old.live(now) {
			return old, otter.CancelOp
		}
		added = true
		if fenced {
			fence = s.nextFence()
		}
		e := s.newEntry(value, deadline(now, ttl))
		e.pinned = lease && ttl > 0
		return e, otter.WriteOp
	})
	if !added {
		return 0, cache.ErrExists
	}
	return fence, nil
}

// Expire sets the ttl of key (0 removes its expiry) and reports whether the
// key held a live value. It keeps the key's version: a CompareAndSwap with
// a token read before Expire still succeeds.
func (s *Store) Expire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return s.extend(ctx, key, nil, ttl, false)
}

// ExtendIfEqual sets the ttl of key (0 removes its expiry) only if it holds
// exactly value, atomically, and reports whether it did. Like Expire, it
// keeps the key's version.
func (s *Store) ExtendIfEqual(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return s.extend(ctx, key, value, ttl, true)
}

// extend is Expire, and ExtendIfEqual when compare is set.
func (s *Store) extend(ctx context.Context, key string, value []byte, ttl time.Duration, compare bool) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	if ttl < 0 {
		return false, cache.ErrInvalidTTL
	}
	done := false
	s.c.Compute(key, func(old *entry, found bool) (*entry, otter.ComputeOp) {
		now := s.now()
		if !found || !old.live(now) || (compare && !bytes.Equal(old.value, value)) {
			return old, otter.CancelOp
		}
		done = true
		return &entry{value: old.value, expiresAt: deadline(now, ttl), version: old.version, pinned: old.pinned}, otter.WriteOp
	})
	return done, nil
}

// Increment adds delta to the decimal int64 stored under key, atomically,
// and returns the result. A missing key is created holding delta without
// expiry; an existing key keeps its expiry. A value that is not a decimal
// int64 (canonical decimal text, as Redis reads it: "+5", "05" and "-0"
// are not), or a result that would overflow,
// gives cache.ErrNotInteger and changes nothing.
func (s *Store) Increment(ctx context.Context, key string, delta int64) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	var (
		result int64
		err    error
	)
	s.c.Compute(key, func(old *entry, found bool) (*entry, otter.ComputeOp) {
		now := s.now()
		var expiresAt int64
		result = delta
		if found && old.live(now) {
			n, ok := decimal.ParseInt64(old.value)
			sum := n + delta
			if !ok || (delta > 0 && sum < n) || (delta < 0 && sum > n) {
				err = cache.ErrNotInteger
				return old, otter.CancelOp
			}
			result, expiresAt = sum, old.expiresAt
		}
		v := strconv.AppendInt(make([]byte, 0, 20), result, 10)
		return &entry{value: v, expiresAt: expiresAt, version: s.version.Add(1)}, otter.WriteOp
	})
	if err != nil {
		return 0, err
	}
	return result, nil
}

// Gets returns a copy of the value of key and a token for CompareAndSwap:
// the entry's version, which every write of the key changes. On a miss it
// returns the absent token and cache.ErrNotFound.
func (s *Store) Gets(ctx context.Context, key string) ([]byte, cache.Token, error) {
	if err := s.check(ctx); err != nil {
		return nil, cache.AbsentToken(), err
	}
	e := s.lookup(key)
	if e == nil {
		return nil, cache.AbsentToken(), cache.ErrNotFound
	}
	return clone(e.value), cache.NewToken(binary.BigEndian.AppendUint64(nil, e.version)), nil
}

// CompareAndSwap stores a copy of value with ttl only if key still has the
// version the token was read with (or, for the absent token, is still
// absent); otherwise it returns cache.ErrConflict. Versions are never
// reused, so a key deleted and written again does not match an old token.
// Expire and ExtendIfEqual keep the version.
func (s *Store) CompareAndSwap(ctx context.Context, key string, value []byte, token cache.Token, ttl time.Duration) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if ttl < 0 {
		return cache.ErrInvalidTTL
	}
	var want uint64
	if !token.Absent() {
		b := token.Bytes()
		if len(b) != 8 {
			return cache.ErrConflict
		}
		want = binary.BigEndian.Uint64(b)
	}
	swapped := false
	s.c.Compute(key, func(old *entry, found bool) (*entry, otter.ComputeOp) {
		now := s.now()
		live := found && old.live(now)
		if token.Absent() == live || (live && old.version != want) {
			return old, otter.CancelOp
		}
		swapped = true
		return s.newEntry(value, deadline(now, ttl)), otter.WriteOp
	})
	if !swapped {
		return cache.ErrConflict
	}
	return nil
}

// DeleteIfEqual deletes key only if it holds exactly value, atomically, and
// reports whether it deleted. A successful delete wakes the watchers of key.
func (s *Store) DeleteIfEqual(ctx context.Context, key string, value []byte) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	deleted := false
	s.c.Compute(key, func(old *entry, found bool) (*entry, otter.ComputeOp) {
		if !found || !old.live(s.now()) || !bytes.Equal(old.value, value) {
			return old, otter.CancelOp
		}
		deleted = true
		return nil, otter.InvalidateOp
	})
	if deleted {
		s.watch.wake(key)
	}
	return deleted, nil
}

// SwapIfEqual stores a copy of value with ttl only if key holds a live
// value equal to old, in one otter Compute, and reports whether it did.
// It then wakes the watchers of key, whether or not it swapped (see
// cache.Swapper). The new entry is an ordinary one: it is not pinned as a
// lease, even when the old one was.
func (s *Store) SwapIfEqual(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	if ttl < 0 {
		return false, cache.ErrInvalidTTL
	}
	swapped := false
	s.c.Compute(key, func(cur *entry, found bool) (*entry, otter.ComputeOp) {
		now := s.now()
		if !found || !cur.live(now) || !bytes.Equal(cur.value, old) {
			return cur, otter.CancelOp
		}
		swapped = true
		return s.newEntry(value, deadline(now, ttl)), otter.WriteOp
	})
	s.watch.wake(key)
	return swapped, nil
}
