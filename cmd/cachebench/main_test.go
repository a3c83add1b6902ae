package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// benchConfig parses args after short-run defaults (-quiet, 1s per mode,
// 300 keys to warm up).
func benchConfig(t *testing.T, args ...string) config {
	t.Helper()
	cfg, err := parseConfig(append([]string{"-quiet", "-duration", "1s", "-keys", "300"}, args...), io.Discard)
	if err != nil {
		t.Fatalf("parseConfig(%q): %v", args, err)
	}
	return cfg
}

// runBench runs cfg and returns its report and what it printed.
func runBench(t *testing.T, cfg config) (*report, string, error) {
	t.Helper()
	var out bytes.Buffer
	rep, err := run(context.Background(), cfg, &out, io.Discard)
	t.Logf("output:\n%s", out.String())
	return rep, out.String(), err
}

// checkInvariants checks what every run must show, whatever the backend.
func checkInvariants(t *testing.T, rep *report) {
	t.Helper()
	cfg := rep.cfg
	callers := int64(cfg.instances * cfg.goroutines)
	for _, r := range rep.results {
		name := r.mode.name
		if r.skipped != "" {
			continue
		}
		if r.load.reads == 0 {
			t.Errorf("%s: no reads in the timed phase", name)
		}
		if n := r.warmUpErrors + r.load.errors + r.stampede.errors + r.audit.errors; n > 0 {
			t.Errorf("%s: %d operations failed, the first: %v %v %v %v", name, n, r.warmUpErr, r.stampede.err, r.load.err, r.audit.err)
		}
		if len(r.stampede.calls) != coldKeys {
			t.Fatalf("%s: %d cold keys in the stampede; want %d", name, len(r.stampede.calls), coldKeys)
		}
		for i, calls := range r.stampede.calls {
			switch {
			case name == "none" && calls != callers:
				t.Errorf("none: cold key %d: %d loader calls; want %d (one per caller)", i, calls, callers)
			case name == "cache" && (calls < 1 || calls > int64(cfg.instances)):
				t.Errorf("cache: cold key %d: %d loader calls; want 1 to %d (one per instance at most)", i, calls, cfg.instances)
			case r.mode.memo && calls != 1:
				t.Errorf("%s: cold key %d: %d loader calls; want 1", name, i, calls)
			}
		}
		if r.mode.memo && r.stampede.misses <= coldKeys {
			// Otherwise the callers did not overlap and the count of 1
			// proves nothing.
			t.Errorf("%s: %d misses in the stampede of %d keys: the callers did not contend", name, r.stampede.misses, coldKeys)
		}
		if r.mode.coherent && r.load.stale.pastBound > 0 {
			t.Errorf("%s: %d stale reads past the bound %v (the worst: %s)", name, r.load.stale.pastBound, r.bound, r.load.stale.worstPast)
		}
		if name == "none" && r.load.stale.stale > 0 {
			t.Errorf("none: %d stale reads; want 0", r.load.stale.stale)
		}
		if r.mode.memo && r.audit.sets > 0 {
			t.Errorf("%s: %d stale sets (the worst: %s)", name, r.audit.sets, r.audit.stale.worst)
		}
		if r.mode.cached && r.audit.reads == 0 {
			t.Errorf("%s: the audit read no value", name)
		}
		if r.load.wrong > 0 {
			t.Errorf("%s: %d reads returned another key's record", name, r.load.wrong)
		}
		if r.mode.local {
			ratio, on := r.localHitRatio()
			switch {
			case on && ratio <= 0:
				t.Errorf("%s: local hit ratio %v with the local tier on; want > 0", name, ratio)
			case !on && r.stats.LocalHits != 0:
				t.Errorf("%s: %d local hits with the local tier off (%s)", name, r.stats.LocalHits, r.localOff)
			}
		}
	}
	// Loader calls per operation, so that a mode that ran more operations
	// is not penalised: none >= cache >= memo.
	perOp := func(name string) (float64, bool) {
		r := rep.find(name)
		if r == nil || r.skipped != "" {
			return 0, false
		}
		return ratio0(r.loaderCalls, r.load.reads+r.load.writes), true
	}
	order := []string{"none", "cache", "memo"}
	for i := 1; i < len(order); i++ {
		hi, ok1 := perOp(order[i-1])
		lo, ok2 := perOp(order[i])
		if ok1 && ok2 && hi < lo {
			t.Errorf("loader calls per operation: %s %.4f < %s %.4f; want %s >= %s", order[i-1], hi, order[i], lo, order[i-1], order[i])
		}
	}
}

func TestEmbedded(t *testing.T) {
	t.Parallel() // the runs check invariants, not timings
	dir := t.TempDir()
	cfg := benchConfig(t, "-out", dir)
	rep, out, err := runBench(t, cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(rep.results) != len(modes) {
		t.Fatalf("%d results; want %d", len(rep.results), len(modes))
	}
	checkInvariants(t, rep)
	for _, want := range []string{"ops/s", "calls/cold key", "stale reads", "memo+local", "no correctness violations"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not contain %q", want)
		}
	}
	summary, err := os.ReadFile(filepath.Join(dir, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range modes {
		if !strings.Contains(string(summary), "| "+m.name+" |") {
			t.Errorf("summary.md has no row for %s", m.name)
		}
	}
	for _, name := range []string{"throughput.svg", "latency.svg", "loader-calls.svg"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if !bytes.Contains(data, []byte("<svg")) {
			t.Errorf("%s is not an SVG image", name)
		}
		if !strings.Contains(string(summary), "("+name+")") {
			t.Errorf("summary.md does not show %s", name)
		}
	}
}

func TestRedis(t *testing.T) {
	t.Parallel() // the runs check invariants, not timings
	addr := testenv.RedisAddr(t)
	rep, _, err := runBench(t, benchConfig(t, "-redis", addr, "-duration", "700ms"))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	checkInvariants(t, rep)
}

func TestCluster(t *testing.T) {
	t.Parallel() // the runs check invariants, not timings
	addrs := testenv.RedisClusterAddrs(t)
	rep, _, err := runBench(t, benchConfig(t, "-cluster", strings.Join(addrs, ","), "-modes", "memo", "-duration", "700ms"))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	checkInvariants(t, rep)
}

func TestMemcached(t *testing.T) {
	t.Parallel() // the runs check invariants, not timings
	addrs := strings.Join(testenv.MemcachedAddrs(t), ",")
	t.Run("alone", func(t *testing.T) {
		rep, out, err := runBench(t, benchConfig(t, "-memcached", addrs, "-modes", "memo,memo+local", "-duration", "700ms"))
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		checkInvariants(t, rep)
		if r := rep.find("memo+local"); r.skipped == "" {
			t.Error("memo+local ran on memcached without a bus; want it skipped")
		}
		if !strings.Contains(out, "memo+local: skipped") {
			t.Error("the output does not say that memo+local was skipped")
		}
	})
	t.Run("with a Redis bus", func(t *testing.T) {
		redis := testenv.RedisAddr(t)
		rep, _, err := runBench(t, benchConfig(t, "-memcached", addrs, "-redis", redis, "-modes", "memo+local", "-duration", "700ms"))
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		checkInvariants(t, rep)
		if r := rep.find("memo+local"); r.skipped != "" {
			t.Errorf("memo+local skipped with -redis: %s", r.skipped)
		}
	})
}

// TestViolations plants faults through the test hook and checks that the
// run fails naming each, and that the exit status says so. Two runs, each
// with faults that the other's checks would not see: the read checks (with
// a store left clean, and a bound of 1ms), then the audit (with reads
// allowed an hour).
func TestViolations(t *testing.T) {
	t.Parallel() // the runs check invariants, not timings
	type fault struct {
		plant func(db *database, in instance) instance
		want  string
	}
	tests := []struct {
		name   string
		args   []string
		faults []fault
		absent string // a violation that must not be reported
	}{
		{
			name: "reads",
			args: []string{"-max-staleness", "1ms"},
			faults: []fault{
				{
					plant: func(db *database, in instance) instance { return &doubleComputer{instance: in, db: db} },
					want:  "memo: a cold key was computed 4 times in the stampede, want 1",
				},
				{
					plant: func(db *database, in instance) instance { return staleReader{in} },
					want:  "stale reads past the bound of 1ms",
				},
				{
					plant: func(db *database, in instance) instance { return wrongKey{in} },
					want:  "reads returned another key's record",
				},
			},
			absent: "stale sets",
		},
		{
			name: "audit",
			args: []string{"-max-staleness", "1h"},
			faults: []fault{{
				plant: func(db *database, in instance) instance { return staleSetter{in, in.(*memoized).c} },
				want:  "stale sets: the audit found values in the store older than an acknowledged invalidation",
			}},
			absent: "stale reads past the bound",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := benchConfig(t, append([]string{"-modes", "memo", "-duration", "500ms", "-writes", "0.1"}, tt.args...)...)
			cfg.wrap = func(m mode, db *database, in instance) instance {
				for _, f := range tt.faults {
					in = f.plant(db, in)
				}
				return in
			}
			_, out, err := runBench(t, cfg)
			var v *violationError
			if !errors.As(err, &v) {
				t.Fatalf("run: %v; want a *violationError", err)
			}
			if len(v.violations) != len(tt.faults) {
				t.Errorf("%d violations; want %d", len(v.violations), len(tt.faults))
			}
			var stderr bytes.Buffer
			if got := exitCode(err, &stderr); got != exitViolation {
				t.Errorf("exitCode = %d; want %d", got, exitViolation)
			}
			for _, f := range tt.faults {
				if !strings.Contains(out, f.want) {
					t.Errorf("the output does not say %q", f.want)
				}
				if !strings.Contains(stderr.String(), f.want) {
					t.Errorf("stderr does not say %q", f.want)
				}
			}
			if strings.Contains(err.Error(), tt.absent) {
				t.Errorf("error %q says %q: that check should have passed", err, tt.absent)
			}
		})
	}
}

// doubleComputer calls the loader once more for each cold key, once per
// instance: the stampede must see 1 + instances computations.
type doubleComputer struct {
	instance
	db   *database
	once [coldKeys]sync.Once
}

func (d *doubleComputer) get(ctx context.Context, k int) (record, error) {
	if c := k - d.db.coldKey(0); c >= 0 {
		d.once[c].Do(func() { _, _ = d.db.load(ctx, k) })
	}
	return d.instance.get(ctx, k)
}

// staleSetter writes an old record into the store after each
// invalidation, as a computation that lost the cache-aside race would.
type staleSetter struct {
	instance
	c *cache.Cache[int, record]
}

func (s staleSetter) invalidate(ctx context.Context, k int) error {
	if err := s.instance.invalidate(ctx, k); err != nil {
		return err
	}
	return s.c.Set(ctx, k, record{Key: k, Version: 0, Call: 1 << 62})
}

// staleReader answers every read with version 0.
type staleReader struct{ instance }

func (s staleReader) get(ctx context.Context, k int) (record, error) {
	r, err := s.instance.get(ctx, k)
	r.Version = 0
	return r, err
}

// wrongKey answers reads of key 0 with key 1's record.
type wrongKey struct{ instance }

func (w wrongKey) get(ctx context.Context, k int) (record, error) {
	r, err := w.instance.get(ctx, k)
	if k == 0 {
		r.Key = 1
	}
	return r, err
}

func TestFlags(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"-h"}, exitOK},
		{[]string{"-zipf", "1"}, exitError},
		{[]string{"-writes", "1"}, exitError},
		{[]string{"-modes", "memo,nope"}, exitError},
		{[]string{"-cluster", "127.0.0.1:1", "-redis", "127.0.0.1:2"}, exitError},
		{[]string{"extra"}, exitError},
		{[]string{"-quiet", "-redis", "127.0.0.1:1"}, exitError}, // nothing listens on port 1
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		if got := mainCode(context.Background(), tt.args, io.Discard, &stderr); got != tt.want {
			t.Errorf("cachebench %q: exit status %d; want %d (stderr: %s)", tt.args, got, tt.want, stderr.String())
		}
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{fmtCount(0), "0"},
		{fmtCount(999), "999"},
		{fmtCount(1000), "1,000"},
		{fmtCount(1234567), "1,234,567"},
		{fmtCount(-1234), "-1,234"},
		{fmtDur(0), "0"},
		{fmtDur(267_400), "267µs"},
		{fmtDur(2_000_000), "2ms"},
		{fmtDur(2_384_000), "2.38ms"},
		{fmtDur(52_000_000), "52ms"},
		{fmtDur(678_420_000), "678.4ms"},
		{fmtDur(1_234_567_890), "1.23s"},
		{fmtBound(-1), "-"},
		{fmtBound(0), "0"},
		{fmtBound(500 * time.Millisecond), "500ms"},
		{fmtAge(0), "-"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q; want %q", tt.got, tt.want)
		}
	}
}
