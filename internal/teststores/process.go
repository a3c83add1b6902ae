package teststores

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// StartChildren runs the test binary n times as child processes, each
// running only the test named child with env added to its environment, and
// returns a function that waits for them all and reports a failed child as
// a test error. Cross-process tests use it to put several processes on one
// backend.
func StartChildren(t *testing.T, n int, child string, env ...string) (wait func()) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), env...)
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
