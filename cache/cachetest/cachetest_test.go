package cachetest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/cache/cachetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestSuiteSelfCheck runs the suite against the reference store: stores of
// one harness share a backend, expiry is exact.
func TestSuiteSelfCheck(t *testing.T) {
	b := newRefBackend(0, "")
	cachetest.RunConformanceTests(t, cachetest.Harness{
		NewStore:  func(*testing.T) cache.Store { return &refStore{b: b} },
		Exclusive: true,
	})
}

// TestSuiteSelfCheckCoarse runs the suite against a reference store that
// behaves like memcached: expiry in whole steps of a truncated clock, TTL
// unreadable, no Clear of a prefix, and every store its own backend.
func TestSuiteSelfCheckCoarse(t *testing.T) {
	const res = 100 * time.Millisecond
	cachetest.RunConformanceTests(t, cachetest.Harness{
		NewStore: func(*testing.T) cache.Store {
			b := newRefBackend(res, "")
			b.maxValue = 4096
			return &refStore{b: b, ttlUnreadable: true, noClearPrefix: true}
		},
		Exclusive:     true,
		TTLResolution: res,
		TTLUnreadable: true,
		NoClearPrefix: true,
		MaxValueSize:  4096,
		TooLargeSize:  4097,
		MaxKeySize:    250,
	})
}

// faultEnv names the deliberate bug TestFaulty runs the suite against.
const faultEnv = "CACHETEST_FAULT"

// TestFaulty runs the suite against a reference store with the bug named by
// $CACHETEST_FAULT. It is run by TestSuiteCatchesFaults, which expects it to
// fail, and skipped otherwise.
func TestFaulty(t *testing.T) {
	fault := os.Getenv(faultEnv)
	if fault == "" {
		t.Skip(faultEnv + " is not set: run by TestSuiteCatchesFaults")
	}
	// "+ttl-unreadable" makes the store hide its TTLs, so that only the
	// checks that wait for keys to expire can see a wrong ttl.
	fault, unreadable := strings.CutSuffix(fault, "+ttl-unreadable")
	b := newRefBackend(0, fault)
	b.maxValue = 1 << 20
	cachetest.RunConformanceTests(t, cachetest.Harness{
		NewStore:      func(*testing.T) cache.Store { return &refStore{b: b, ttlUnreadable: unreadable} },
		Exclusive:     true,
		TTLUnreadable: unreadable,
		TooLargeSize:  1<<20 + 1,
	})
}

// TestSuiteCatchesFaults checks that the suite can fail: for each bug
// planted in the reference store, the subtest meant to catch it fails.
func TestSuiteCatchesFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary once per fault")
	}
	faults := []struct {
		fault string
		run   string // -test.run pattern below TestFaulty, one level per /
		fails string // the subtest that must fail, below TestFaulty
	}{
		{"add-not-atomic", "Concurrency/Add", "Concurrency/Add"},
		{"clear-glob", "Clear/Star", "Clear/Star"},
		{"clear-glob", "Clear/Backslash", "Clear/Backslash"},
		{"clear-contains", "Clear/Prefix", "Clear/Prefix"},
		{"cas-ignores-token", "CompareAndSwap/AfterSet", "CompareAndSwap/AfterSet"},
		{"cas-ignores-token", "Concurrency/CompareAndSwap", "Concurrency/CompareAndSwap"},
		{"cas-absent-overwrites", "CompareAndSwap/AbsentCreatedMeanwhileBySetEmpty", "CompareAndSwap/AbsentCreatedMeanwhileBySetEmpty"},
		{"set-keeps-ttl", "Expiry/.*/SetWithoutTTLRemovesExpiry", "Expiry/Write/SetWithoutTTLRemovesExpiry"},
		{"set-keeps-ttl+ttl-unreadable", "Expiry/.*/SetWithoutTTLRemovesExpiry", "Expiry/Check/SetWithoutTTLRemovesExpiry"},
		{"expire-zero-noop", "Expiry/.*/ExpireZeroRemovesExpiry", "Expiry/Write/ExpireZeroRemovesExpiry"},
		{"expire-zero-noop+ttl-unreadable", "Expiry/.*/ExpireZeroRemovesExpiry", "Expiry/Check/ExpireZeroRemovesExpiry"},
		{"no-ctx-check+ttl-unreadable", "Expiry/.*/ExpireCanceled", "Expiry/Check/ExpireCanceled"},
		{"incr-drops-ttl", "Increment/KeepsTTL", "Increment/KeepsTTL"},
		{"incr-drops-ttl", "Expiry/.*/IncrementKeepsTTL", "Expiry/Write/IncrementKeepsTTL"},
		{"incr-wraps", "Increment/OverflowMax", "Increment/OverflowMax"},
		{"no-ctx-check", "Context/Canceled/Set", "Context/Canceled/Set"},
		{"alias", "Values/Ownership", "Values/Ownership"},
		{"die-prefix", "DeleteIfEqual/WrongValue", "DeleteIfEqual/WrongValue"},
		{"no-wake", "Notifier/WakeOtherStore", "Notifier/WakeOtherStore"},
		{"fence-dies-with-key", "Fencer/Cycles", "Fencer/Cycles"},
		{"get-stale", "Concurrency/Linearizable", "Concurrency/Linearizable"},
		{"too-large-drops", "Values/TooLarge", "Values/TooLarge"},
		{"bus-late", "Bus/InPlace", "Bus/InPlace"},
		{"bus-stop-noop", "Bus/Stop", "Bus/Stop"},
	}
	for _, f := range faults {
		t.Run(f.fault+"/"+f.fails, func(t *testing.T) {
			t.Parallel()
			pattern := "^TestFaulty$"
			for _, part := range strings.Split(f.run, "/") {
				pattern += "/^" + part + "$"
			}
			cmd := exec.Command(os.Args[0], "-test.run="+pattern, "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), faultEnv+"="+f.fault)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("suite passed against a store with fault %q; want subtest %s to fail\n%s", f.fault, f.fails, out)
			}
			if want := "--- FAIL: TestFaulty/" + f.fails + " "; !strings.Contains(string(out), want) {
				t.Fatalf("output does not contain %q\n%s", want, out)
			}
		})
	}
}
