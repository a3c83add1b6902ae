package lock

import (
	"errors"

	"github.com/typedcache/typedcache/cache"
)

var (
	// ErrNotObtained is returned, joined with the context's error and its
	// cause, by TryAcquire, Acquire, AcquireOrWait and Do when their context
	// ends before the lock is held. A lock held by another holder is not an
	// error: TryAcquire reports it as (false, nil).
	ErrNotObtained = errors.New("lock: not obtained")

	// ErrNotHeld is returned by Release and Extend when this RedLock does not
	// hold the lock: it was never acquired, it was released already, or its
	// lease expired (and perhaps another holder has it now).
	ErrNotHeld = errors.New("lock: not held")

	// ErrConflict is returned by OptimisticLock.CAS when the key changed
	// since it was read, and by Update when every attempt conflicted. It is
	// cache.ErrConflict, so either name matches with errors.Is.
	ErrConflict = cache.ErrConflict
)

// ErrLost is the cause (context.Cause) of the context Hold gives its
// function when the lock is lost while the function runs: the lease could
// not be extended (another holder has it, or it ran out while the store
// could not be reached).
var ErrLost = errors.New("lock: lost")
