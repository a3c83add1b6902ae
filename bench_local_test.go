package typedcache_test

// Benchmarks of the local tier (cache.Options.Local): a hit beside otter's
// own GetIfPresent, the floor of an in-process hit, in one run:
//
//	go test -run '^$' -bench 'BenchmarkLocalHit' -benchmem -count 6 . > local.txt
//	benchstat -col /impl local.txt
//
// and the latency of an invalidation over Redis pub/sub, from a write in
// this process to a Get returning the new value in another (REDIS_ADDR):
//
//	go test -run '^$' -bench 'BenchmarkInvalidationLatency' -count 6 .

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
)

type localBenchValue struct {
	ID   int
	Name string
	Tags []string
}

// BenchmarkLocalHit measures a hit of the local tier (impl=local) beside
// a GetIfPresent of a raw otter cache holding the same value (impl=otter),
// and of one configured as the tier's own (impl=otter-ttl: a per-entry
// expiry on a coarse clock, pointers to entries), for a []byte and a
// small struct, serially and in parallel.
func BenchmarkLocalHit(b *testing.B) {
	b.Run("value=bytes", func(b *testing.B) { benchLocalHit(b, []byte("a cached value of some thirty bytes")) })
	b.Run("value=struct", func(b *testing.B) {
		benchLocalHit(b, localBenchValue{ID: 42, Name: "ada", Tags: []string{"a", "b"}})
	})
}

func benchLocalHit[V any](b *testing.B, value V) {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	c := cache.New[string, V](store, &cache.Options[string, V]{Namespace: "bench", Local: &cache.LocalOptions{}})
	b.Cleanup(func() { c.Close() })
	if err := c.Set(ctx, "k", value); err != nil {
		b.Fatal(err)
	}
	if _, found, err := c.Get(ctx, "k"); !found || err != nil {
		b.Fatal(found, err)
	}
	raw := otter.Must(&otter.Options[string, V]{MaximumSize: 10_000})
	b.Cleanup(func() { raw.StopAllGoroutines() })
	raw.Set("k", value)
	type entry struct {
		v       V
		expires int64
	}
	clock := otter.NewCoarseClock(time.Millisecond)
	b.Cleanup(clock.Stop)
	ttl := otter.Must(&otter.Options[string, *entry]{
		MaximumSize: 10_000,
		Clock:       clock,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *entry]) time.Duration {
			return time.Duration(e.Value.expires - e.SnapshotAtNano)
		}),
	})
	b.Cleanup(func() { ttl.StopAllGoroutines() })
	ttl.Set("k", &entry{v: value, expires: time.Now().Add(time.Hour).UnixNano()})

	run := func(b *testing.B, get func() bool) {
		b.Run("mode=serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !get() {
					b.Fatal("miss")
				}
			}
		})
		b.Run("mode=parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !get() {
						b.Error("miss")
						return
					}
				}
			})
		})
	}
	b.Run("impl=otter", func(b *testing.B) {
		run(b, func() bool { _, ok := raw.GetIfPresent("k"); return ok })
	})
	b.Run("impl=otter-ttl", func(b *testing.B) {
		run(b, func() bool { _, ok := ttl.GetIfPresent("k"); return ok })
	})
	b.Run("impl=local", func(b *testing.B) {
		run(b, func() bool { _, found, err := c.Get(ctx, "k"); return found && err == nil })
	})
}

// envLatencyNS names the namespace of BenchmarkInvalidationLatency's
// reader, a child process.
const envLatencyNS = "TYPEDCACHE_LATENCY_NS"

// readerPause is the pause of BenchmarkInvalidationLatency's reader
// between two reads. A reader that spins takes a core from Redis and the
// writer: on a 2-core machine that, not the bus, then makes the p99 (about
// 11ms, against 1.5ms with the pause).
const readerPause = 20 * time.Microsecond

// BenchmarkInvalidationLatency measures how long a write takes to reach
// another process's local tier over Redis pub/sub on loopback: from the
// start of a Set in this process to the first Get of the reader, a child
// process that reads the key from its local tier in a loop (pausing
// readerPause between reads), returning the new value (wall clocks of one
// machine). Each iteration is one write, made once the reader has seen
// the previous one; the figures are the percentiles of those latencies
// (p50-us, p99-us, max-us), which include the writer's two round trips
// (the SET, then the PUBLISH), the reader's read of the new value from
// Redis, and up to one pause (with the timer's granularity); p50-ack-us
// and p99-ack-us count from the Set's return instead.
func BenchmarkInvalidationLatency(b *testing.B) {
	ctx := context.Background()
	ns := teststores.Namespace("latency")
	w := localCache(b, teststores.Get(b, "redis").New(b), ns, cache.LocalOptions{})
	if err := w.Set(ctx, "k", 0); err != nil {
		b.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestInvalidationLatencyChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envLatencyNS+"="+ns)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close() // the reader stops
		io.Copy(io.Discard, stdout)
		if err := cmd.Wait(); err != nil {
			b.Errorf("the reader process: %v", err)
		}
	}()
	lines := bufio.NewScanner(stdout)
	// next returns the next "seen" line of the reader: a version, and the
	// wall clock (Unix ns) of the Get that returned it.
	next := func() (v int64, at int64) {
		for lines.Scan() {
			f := strings.Fields(lines.Text())
			if len(f) == 3 && f[0] == "seen" {
				v, _ = strconv.ParseInt(f[1], 10, 64)
				at, _ = strconv.ParseInt(f[2], 10, 64)
				return v, at
			}
		}
		b.Fatalf("the reader process stopped: %v", lines.Err())
		return 0, 0
	}
	if v, _ := next(); v != 0 { // the reader holds version 0 in its tier
		b.Fatalf("the reader's first value: %d; want 0", v)
	}

	var lat, fromAck []time.Duration
	for v := int64(1); b.Loop(); v++ {
		start := time.Now()
		if err := w.Set(ctx, "k", v); err != nil {
			b.Fatal(err)
		}
		ack := time.Now()
		got, at := next()
		if got != v {
			b.Fatalf("the reader saw %d; want %d", got, v)
		}
		lat = append(lat, time.Duration(at-start.UnixNano()))
		fromAck = append(fromAck, time.Duration(at-ack.UnixNano()))
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(fromAck)
	pct := func(d []time.Duration, p float64) float64 {
		return float64(d[min(len(d)-1, int(p*float64(len(d))))]) / float64(time.Microsecond)
	}
	b.ReportMetric(pct(lat, 0.50), "p50-us")
	b.ReportMetric(pct(lat, 0.99), "p99-us")
	b.ReportMetric(pct(lat, 1), "max-us")
	// From the Set's return (its invalidation published) instead.
	b.ReportMetric(pct(fromAck, 0.50), "p50-ack-us")
	b.ReportMetric(pct(fromAck, 0.99), "p99-ack-us")
	if len(lat) < 200 {
		b.Logf("%d writes; the percentiles want at least 200 (-benchtime 200x)", len(lat))
	}
}

// TestInvalidationLatencyChild is the reader of
// BenchmarkInvalidationLatency, in a child process: it reads "k" from its
// local tier in a loop and writes "seen <version> <Unix ns>" on stdout
// for each new version, the first once its tier holds it, until its stdin
// is closed. It does nothing when run as an ordinary test.
func TestInvalidationLatencyChild(t *testing.T) {
	ns := os.Getenv(envLatencyNS)
	if ns == "" {
		t.Skip("run by BenchmarkInvalidationLatency as a child process")
	}
	ctx := context.Background()
	r := localCache(t, teststores.Get(t, "redis").New(t), ns, cache.LocalOptions{})
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	// First, until the tier holds version 0.
	for {
		before := r.Stats().LocalHits
		v, found, err := r.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if found && v == 0 && r.Stats().LocalHits > before {
			break
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Printf("seen 0 %d\n", time.Now().UnixNano())
	last := int64(0)
	for i := 0; ; i++ {
		v, _, err := r.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if v != last {
			fmt.Printf("seen %d %d\n", v, time.Now().UnixNano())
			last = v
		}
		if i%1024 == 0 {
			select {
			case <-stop:
				return
			default:
			}
		}
		time.Sleep(readerPause)
	}
}
