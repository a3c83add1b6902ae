package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// result is what one mode's run saw.
type result struct {
	mode     mode
	skipped  string        // why the mode did not run; "" when it ran
	localOff string        // why its local tier stayed off; "" when it had one, or none was asked
	bound    time.Duration // how stale a read may be (see boundOf); -1: no bound claimed

	warmUpErrors int64
	warmUpErr    error
	stampede     stampedeResult
	load         loadResult
	audit        auditResult
	loaderCalls  int64       // during the timed phase, after the warm-up
	stats        cache.Stats // of the timed phase, all instances together
}

func (r *result) opsPerSec() float64 {
	if r.load.elapsed <= 0 {
		return 0
	}
	return float64(r.load.reads+r.load.writes) / r.load.elapsed.Seconds()
}

func (r *result) p50() time.Duration { return percentile(r.load.latencies, 50) }
func (r *result) p99() time.Duration { return percentile(r.load.latencies, 99) }

// localHitRatio is LocalHits over all reads of the cache; ok is false for
// a mode without a working local tier.
func (r *result) localHitRatio() (ratio float64, ok bool) {
	if !r.mode.local || r.localOff != "" || r.skipped != "" {
		return 0, false
	}
	return ratio0(r.stats.LocalHits, r.stats.Hits+r.stats.Misses), true
}

// storeHitRatio is the store's hits over the reads that reached it.
func (r *result) storeHitRatio() float64 {
	store := r.stats.Hits - r.stats.LocalHits
	return ratio0(store, store+r.stats.Misses)
}

func ratio0(n, d int64) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// report is a run's results, in the order of modes.
type report struct {
	cfg     config
	backend string
	runAt   time.Time
	results []*result
}

// find returns the result of the mode named name, or nil.
func (rep *report) find(name string) *result {
	for _, r := range rep.results {
		if r.mode.name == name {
			return r
		}
	}
	return nil
}

// violations returns the correctness violations the run saw, one line
// each.
func (rep *report) violations() []string {
	var v []string
	for _, r := range rep.results {
		if r.skipped != "" {
			continue
		}
		name := r.mode.name
		if r.mode.memo && r.stampede.maxCalls() > 1 {
			v = append(v, fmt.Sprintf("%s: a cold key was computed %d times in the stampede, want 1 (loader calls per cold key: %v)",
				name, r.stampede.maxCalls(), r.stampede.calls))
		}
		if r.mode.coherent && r.load.stale.pastBound > 0 {
			v = append(v, fmt.Sprintf("%s: %d stale reads past the bound of %s (the worst: %s)",
				name, r.load.stale.pastBound, fmtBound(r.bound), r.load.stale.worstPast))
		}
		if r.mode.memo && r.audit.sets > 0 {
			v = append(v, fmt.Sprintf("%s: %d stale sets: the audit found values in the store older than an acknowledged invalidation (the worst: %s)",
				name, r.audit.sets, r.audit.stale.worst))
		}
		if r.load.wrong > 0 {
			v = append(v, fmt.Sprintf("%s: %d reads returned another key's record", name, r.load.wrong))
		}
	}
	return v
}

// header describes the run in one line.
func (rep *report) header() string {
	c := rep.cfg
	return fmt.Sprintf("%d instances × %d goroutines on %s; %d keys, zipf %g; loader %s; %g%% writes; %s per mode",
		c.instances, c.goroutines, rep.backend, c.keys, c.zipf, fmtDur(c.loaderLatency), c.writes*100, fmtDur(c.duration))
}

var columns = []string{"mode", "ops/s", "p50", "p99", "loader calls", "calls/cold key", "local hits", "store hits", "stale reads", "worst", "bound", "stale sets"}

// row returns the cells of r's row of the table.
func (rep *report) row(r *result) []string {
	if r.skipped != "" {
		cells := []string{r.mode.name, "skipped"}
		for len(cells) < len(columns) {
			cells = append(cells, "-")
		}
		return cells
	}
	local, store, sets := "-", "-", "-"
	if r.mode.cached {
		store = fmtPct(r.storeHitRatio())
		sets = fmtCount(int64(r.audit.sets))
		if ratio, ok := r.localHitRatio(); ok {
			local = fmtPct(ratio)
		} else if r.mode.local {
			local = "off"
		}
	}
	return []string{
		r.mode.name,
		fmtCount(int64(r.opsPerSec() + 0.5)),
		fmtDur(r.p50()),
		fmtDur(r.p99()),
		fmtCount(r.loaderCalls),
		strconv.FormatInt(r.stampede.maxCalls(), 10),
		local,
		store,
		fmtCount(r.load.stale.stale),
		fmtAge(r.load.stale.worst.age),
		fmtBound(r.bound),
		sets,
	}
}

// notes explain the table: what the columns count, and what each mode
// saw that the table cannot say.
func (rep *report) notes() []string {
	c := rep.cfg
	callers := c.instances * c.goroutines
	n := []string{
		fmt.Sprintf("calls/cold key: the most loader calls one of %d cold keys got when all %d callers read it at once: "+
			"none makes one per caller (%d), cache at most one per instance (%d), memo exactly one.",
			coldKeys, callers, callers, c.instances),
		"local hits: LocalHits / reads; store hits: hits in the store / reads that reached it (cache.Stats, timed phase).",
		"stale reads: reads that returned a version older than one whose write and invalidation had been acknowledged before the read started; " +
			"worst: how long after that acknowledgment the stalest one started; bound: how long a mode allows, - for none claimed. " +
			"memo's is -max-staleness: memo promises no stale sets, and a computation running when the invalidation returns still gives its value " +
			"to the reads waiting for it, however late they started; for memo+local it is also the local tier's MaxStaleness (the bus's delivery).",
		"stale sets: values the audit (a client of its own, reading the store while the workload runs) found older than an acknowledged " +
			"invalidation: stored after it. memo must have none; no allowance of time is involved.",
	}
	for _, r := range rep.results {
		name := r.mode.name
		switch {
		case r.skipped != "":
			n = append(n, fmt.Sprintf("%s: skipped: %s.", name, r.skipped))
			continue
		case r.localOff != "":
			n = append(n, fmt.Sprintf("%s: local tier off: %s; it lights up when there is one (until then this is memo again).", name, r.localOff))
		}
		if !r.mode.coherent && r.audit.sets > 0 {
			n = append(n, fmt.Sprintf("%s: its %s stale sets are the cache-aside race: a computation that read the database before a write "+
				"stores its value after the write's Delete, and the old value stays until the next write or its TTL "+
				"(the stalest read: %s). memo's leases close it; Cache.GetOrCompute does not promise to.",
				name, fmtCount(int64(r.audit.sets)), r.load.stale.worst))
		}
		if errs := r.warmUpErrors + r.load.errors + r.stampede.errors + r.audit.errors; errs > 0 {
			first := r.warmUpErr
			for _, err := range []error{r.stampede.err, r.load.err, r.audit.err} {
				if first == nil {
					first = err
				}
			}
			n = append(n, fmt.Sprintf("%s: %d operations failed (the first: %v).", name, errs, first))
		}
	}
	return n
}

// writeText prints the report as text: a header, the table, the notes and
// the verdict.
func (rep *report) writeText(w io.Writer) {
	fmt.Fprintf(w, "cachebench: %s\n\n", rep.header())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(columns, "\t")+"\t")
	for _, r := range rep.results {
		fmt.Fprintln(tw, strings.Join(rep.row(r), "\t")+"\t")
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, n := range rep.notes() {
		fmt.Fprintf(w, "- %s\n", n)
	}
	fmt.Fprintln(w)
	if v := rep.violations(); len(v) > 0 {
		fmt.Fprintf(w, "VIOLATIONS (%d):\n", len(v))
		for _, s := range v {
			fmt.Fprintf(w, "  %s\n", s)
		}
		return
	}
	fmt.Fprintln(w, "no correctness violations.")
}

// writeFiles writes summary.md and the charts into dir.
func (rep *report) writeFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	charts, err := writeCharts(rep, dir)
	if err != nil {
		return fmt.Errorf("charts: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# cachebench\n\n%s (run %s).\n\n", rep.header(), rep.runAt.UTC().Format(time.RFC3339))
	b.WriteString("| " + strings.Join(columns, " | ") + " |\n|")
	for i := range columns {
		if i == 0 {
			b.WriteString(" --- |")
		} else {
			b.WriteString(" ---: |")
		}
	}
	b.WriteString("\n")
	for _, r := range rep.results {
		b.WriteString("| " + strings.Join(rep.row(r), " | ") + " |\n")
	}
	b.WriteString("\n")
	for _, n := range rep.notes() {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	b.WriteString("\n")
	if v := rep.violations(); len(v) > 0 {
		fmt.Fprintf(&b, "**Correctness violations (%d):**\n\n", len(v))
		for _, s := range v {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	} else {
		b.WriteString("No correctness violations.\n")
	}
	b.WriteString("\n")
	for _, c := range charts {
		fmt.Fprintf(&b, "![%s](%s)\n\n", c.title, c.file)
	}
	return os.WriteFile(filepath.Join(dir, "summary.md"), []byte(b.String()), 0o644)
}

// fmtDur formats a duration with about three significant digits.
func fmtDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case d <= 0:
		return "0"
	case d < time.Microsecond:
		return "<1µs"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Round(time.Microsecond)/time.Microsecond)
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(math.Round(ms*100)/100, 'f', -1, 64) + "ms"
	case d < time.Second:
		return strconv.FormatFloat(math.Round(ms*10)/10, 'f', -1, 64) + "ms"
	}
	return d.Round(10 * time.Millisecond).String()
}

func fmtBound(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmtDur(d)
}

// fmtAge formats the age of the worst stale read: "-" when there was none.
func fmtAge(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmtDur(d)
}

func fmtPct(r float64) string { return fmt.Sprintf("%.1f%%", r*100) }

// fmtCount formats n with thousands separators.
func fmtCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
