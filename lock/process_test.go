package lock_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/lock"
)

// The cross-process tests run the test binary twice more as children
// (TestLockChild), so that three processes share one backend.
const (
	processes  = 3
	goroutines = 4
	iterations = 100
)

// TestLockChild is the body of a child process; it does nothing when run
// as an ordinary test.
func TestLockChild(t *testing.T) {
	role, b, ns := teststores.Child(t)
	runWorkload(t, role, b.New(t), ns)
}

// runAcrossProcesses runs role in this process and in two children, all on
// backend b in namespace ns, and waits for all three.
func runAcrossProcesses(t *testing.T, role string, b teststores.Backend, s cache.Store, ns string) {
	t.Helper()
	wait := teststores.StartChildren(t, processes-1, "TestLockChild", role, b, ns)
	runWorkload(t, role, s, ns)
	wait()
}

// runWorkload runs goroutines × iterations of role against s.
func runWorkload(t *testing.T, role string, s cache.Store, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ints := cache.New[string, int64](s, &cache.Options[string, int64]{Namespace: ns})

	// Start together, so that the processes' goroutines really contend.
	proc := teststores.Barrier(t, ctx, ints, processes)

	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			switch role {
			case "mutex":
				err = mutexWorker(ctx, ints, proc)
			case "update":
				err = updateWorker(ctx, cache.New[string, counter](s, &cache.Options[string, counter]{Namespace: ns}), ints)
			default:
				err = fmt.Errorf("unknown role %q", role)
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// mutexWorker runs critical sections that do an unprotected
// read-increment-write of "counter", count overlaps with an atomic "inside"
// counter, count the acquisitions that had to wait, and count in
// "handoffs" the critical sections whose previous holder ("last") was
// another process.
func mutexWorker(ctx context.Context, c *cache.Cache[string, int64], proc int64) error {
	for range iterations {
		l, err := lock.NewRedLock(c, "mutex", 30*time.Second, nil)
		if err != nil {
			return err
		}
		ok, err := l.TryAcquire(ctx)
		if err != nil {
			return err
		}
		if !ok {
			if _, err := c.Increment(ctx, "waited:"+strconv.FormatInt(proc, 10), 1); err != nil {
				return err
			}
			if err := l.Acquire(ctx); err != nil {
				return err
			}
		}
		in, err := c.Increment(ctx, "inside", 1)
		if err != nil {
			return err
		}
		if in != 1 {
			if _, err := c.Increment(ctx, "overlaps", 1); err != nil {
				return err
			}
		}
		n, _, err := c.Get(ctx, "counter")
		if err != nil {
			return err
		}
		if err := c.Set(ctx, "counter", n+1); err != nil {
			return err
		}
		last, found, err := c.Get(ctx, "last")
		if err != nil {
			return err
		}
		if found && last != proc {
			if _, err := c.Increment(ctx, "handoffs", 1); err != nil {
				return err
			}
		}
		if err := c.Set(ctx, "last", proc); err != nil {
			return err
		}
		if _, err := c.Increment(ctx, "inside", -1); err != nil {
			return err
		}
		if err := l.Release(ctx); err != nil {
			return err
		}
	}
	return nil
}

// updateWorker increments a struct field with lock.Update, and counts in
// "attempts" of ints the calls of the update function (one more than the
// conflicts of each Update).
func updateWorker(ctx context.Context, c *cache.Cache[string, counter], ints *cache.Cache[string, int64]) error {
	var attempts int64
	for range iterations {
		v, err := lock.Update(ctx, c, "n", func(old counter, _ bool) (counter, error) {
			attempts++
			old.N++
			return old, nil
		}, &lock.UpdateOptions{MaxAttempts: 10000})
		if err != nil {
			return err
		}
		if v.N < 1 || v.N > processes*goroutines*iterations {
			return fmt.Errorf("Update returned %d; want in [1, %d]", v.N, processes*goroutines*iterations)
		}
	}
	_, err := ints.Increment(ctx, "attempts", attempts)
	return err
}

func sharedBackends(t *testing.T, f func(t *testing.T, b teststores.Backend, s cache.Store, ns string)) {
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		if !b.Shared {
			t.Skipf("%s is in-process: nothing to share between processes", b.Name)
		}
		f(t, b, s, ns)
	})
}

// Mutual exclusion across three processes of four goroutines each.
func TestRedLockAcrossProcesses(t *testing.T) {
	sharedBackends(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		runAcrossProcesses(t, "mutex", b, s, ns)
		ctx := context.Background()
		c := cache.New[string, int64](s, &cache.Options[string, int64]{Namespace: ns})
		want := int64(processes * goroutines * iterations)
		if got, _, err := c.Get(ctx, "counter"); err != nil || got != want {
			t.Errorf("counter = %d (err %v); want %d: critical sections overlapped", got, err, want)
		}
		if got, _, _ := c.Get(ctx, "overlaps"); got != 0 {
			t.Errorf("overlap detector saw %d overlapping critical sections; want 0", got)
		}
		// The lock passed from process to process, not only between the
		// goroutines of one.
		handoffs, _, err := c.Get(ctx, "handoffs")
		t.Logf("%d handoffs between processes", handoffs)
		if err != nil || handoffs == 0 {
			t.Errorf("the lock never passed from one process to another (err %v): no cross-process contention", err)
		}
		// Every process had to wait at least once: contention happened
		// across processes, not only within one.
		for proc := 1; proc <= processes; proc++ {
			n, _, err := c.Get(ctx, "waited:"+strconv.Itoa(proc))
			t.Logf("process %d: %d acquisitions waited", proc, n)
			if err != nil || n == 0 {
				t.Errorf("process %d never waited for the lock (err %v): no contention", proc, err)
			}
		}
	})
}

// No lost updates across three processes of four goroutines each.
func TestUpdateAcrossProcesses(t *testing.T) {
	sharedBackends(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		runAcrossProcesses(t, "update", b, s, ns)
		c := cache.New[string, counter](s, &cache.Options[string, counter]{Namespace: ns})
		want := processes * goroutines * iterations
		if got, _, err := c.Get(context.Background(), "n"); err != nil || got.N != want {
			t.Errorf("count = %d (err %v); want %d: updates were lost", got.N, err, want)
		}
		// Some updates conflicted: writers really contended.
		ints := cache.New[string, int64](s, &cache.Options[string, int64]{Namespace: ns})
		attempts, _, err := ints.Get(context.Background(), "attempts")
		t.Logf("%d attempts for %d updates", attempts, want)
		if err != nil || attempts <= int64(want) {
			t.Errorf("attempts = %d (err %v); want more than the %d updates: no contention", attempts, err, want)
		}
	})
}
