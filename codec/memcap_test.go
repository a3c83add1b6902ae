package codec_test

import (
	"bytes"
	stdflag "flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memCapEnv marks the child process runUnderMemoryCap starts.
const memCapEnv = "TYPEDCACHE_CODEC_MEMORY_CAP"

const (
	// heapCap is the most heap a process under the memory cap may hold:
	// the watchdog ends it beyond. The decodes the tests run under the cap
	// hold a few MiB at most.
	heapCap = 1 << 30
	// addressHeadroom is the address space a process under the memory cap
	// may map beyond what it had when the cap was set.
	addressHeadroom = 2 << 30
)

var (
	capOnce sync.Once
	capErr  error
	// decoding describes the decode under way, for the watchdog's message.
	decoding atomic.Pointer[string]
)

// underMemoryCap reports whether tb, a test or fuzz target, runs under a
// memory cap: in the child process runUnderMemoryCap starts, or in a
// fuzzing worker, where it sets the cap up once per process. Elsewhere it
// runs tb's test again in a child process under the cap, fails tb if the
// child fails, and returns false: the caller does nothing more, the child
// having done its work. (In the process that coordinates the fuzzing of tb
// it returns false at once: the workers decode.)
//
// The cap turns a decode that would exhaust memory into a failed test, not
// a killed test binary nor a machine out of memory. It is an address-space
// limit (RLIMIT_AS, on Linux without the race detector, which reserves
// terabytes of address space), under which the Go runtime stops with
// "fatal error: out of memory", and a watchdog goroutine that ends the
// process when its heap passes heapCap.
func underMemoryCap(tb testing.TB) bool {
	tb.Helper()
	if os.Getenv(memCapEnv) == "" && !flagIs("test.fuzzworker", "true") {
		if !fuzzing(tb.Name()) {
			runUnderMemoryCap(tb)
		}
		return false
	}
	capOnce.Do(func() { capErr = setMemoryCap() })
	if capErr != nil {
		tb.Fatalf("memory cap: %v", capErr)
	}
	return true
}

// flagIs reports whether the test flag name is set to value.
func flagIs(name, value string) bool {
	f := stdflag.Lookup(name)
	return f != nil && f.Value.String() == value
}

// fuzzing reports whether this process coordinates the fuzzing of the fuzz
// target name (go test -fuzz).
func fuzzing(name string) bool {
	f := stdflag.Lookup("test.fuzz")
	if f == nil || f.Value.String() == "" {
		return false
	}
	ok, err := regexp.MatchString(f.Value.String(), name)
	return err == nil && ok
}

// runUnderMemoryCap runs tb's test in a child process, this test binary
// run again with memCapEnv set, and fails tb unless it passes.
func runUnderMemoryCap(tb testing.TB) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(tb.Name())+"$",
		"-test.count=1", "-test.v", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), memCapEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("%s in a child process under a memory cap: %v; output:\n%s", tb.Name(), err, excerpt(out))
	}
	if !bytes.Contains(out, []byte("--- PASS: "+tb.Name()+" ")) {
		tb.Fatalf("%s in a child process under a memory cap: got no PASS; output:\n%s", tb.Name(), excerpt(out))
	}
}

// excerpt returns what tells why a child process failed: from the last
// test it started before it stopped with a fatal error (or the watchdog
// stopped it) to the start of the stack trace, else the end of its output.
func excerpt(out []byte) []byte {
	const n = 40
	lines := bytes.SplitAfter(out, []byte("\n"))
	for i, l := range lines {
		if !bytes.HasPrefix(l, []byte("fatal error:")) && !bytes.HasPrefix(l, []byte("memory cap:")) {
			continue
		}
		from := i
		for from > 0 && !bytes.HasPrefix(lines[from], []byte("=== RUN")) {
			from--
		}
		if i-from > n {
			from = i - n
		}
		return bytes.Join(lines[from:min(len(lines), i+n)], nil)
	}
	return bytes.Join(lines[max(0, len(lines)-n):], nil)
}

// setMemoryCap caps this process's address space, where it can, and starts
// the heap watchdog.
func setMemoryCap() error {
	if !raceEnabled {
		if err := capAddressSpace(addressHeadroom); err != nil && runtime.GOOS == "linux" {
			return err
		}
	}
	go watchHeap()
	return nil
}

// watchHeap ends the process, saying what it was decoding, once its heap
// holds more than heapCap bytes. It checks every millisecond: a decode that
// builds a map of a billion entries does so table by table, and a single
// allocation larger than the machine fails at once.
func watchHeap() {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	for {
		metrics.Read(sample)
		if held := sample[0].Value.Uint64(); held > heapCap {
			what := "no decode"
			if p := decoding.Load(); p != nil {
				what = *p
			}
			fmt.Fprintf(os.Stderr, "memory cap: the heap holds %d bytes, more than %d, during %s\n", held, heapCap, what)
			os.Exit(3)
		}
		time.Sleep(time.Millisecond)
	}
}
