package teststores

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// The environment a child process reads its part from.
const (
	envRole    = "TYPEDCACHE_CHILD_ROLE"
	envBackend = "TYPEDCACHE_CHILD_BACKEND"
	envNS      = "TYPEDCACHE_CHILD_NS"
)

// StartChildren runs the test binary n times as child processes, each
// running only the test named child, which calls Child to learn its role,
// backend and namespace. It returns a function that waits for them all and
// reports a failed child as a test error. Cross-process tests use it to put
// several processes on one backend.
func StartChildren(t *testing.T, n int, child, role string, b Backend, ns string) (wait func()) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), envRole+"="+role, envBackend+"="+b.Name, envNS+"="+ns)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("child process: %v\n%s", err, out)
			}
		}()
	}
	return func() {
		t.Helper()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

// Child returns the role, backend and namespace a child process started by
// StartChildren was given. In an ordinary test run, where it is no child,
// it skips the test.
func Child(t *testing.T) (role string, b Backend, ns string) {
	t.Helper()
	role = os.Getenv(envRole)
	if role == "" {
		t.Skip("run by the cross-process tests as a child process")
	}
	return role, Get(t, os.Getenv(envBackend)), os.Getenv(envNS)
}

// Barrier is where n processes wait for each other before a cross-process
// test starts, so that they really contend: each adds itself to a counter
// in c and waits until all n have. It returns this process's ordinal, from
// 1 to n.
func Barrier(t *testing.T, ctx context.Context, c *cache.Cache[string, int64], n int64) int64 {
	t.Helper()
	ordinal, err := c.Increment(ctx, "barrier", 1)
	if err != nil {
		t.Fatal(err)
	}
	for {
		v, _, err := c.Get(ctx, "barrier")
		if err != nil {
			t.Fatal(err)
		}
		if v >= n {
			return ordinal
		}
		if ctx.Err() != nil {
			t.Fatal("the other processes never reached the barrier")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
