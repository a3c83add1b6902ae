package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Exit statuses.
const (
	exitOK        = 0
	exitViolation = 1 // a correctness violation was seen
	exitError     = 2 // bad flags, or the benchmark could not run
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := mainCode(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// mainCode runs the command with args and returns its exit status.
func mainCode(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "cachebench:", err)
		return exitError
	}
	_, err = run(ctx, cfg, stdout, stderr)
	return exitCode(err, stderr)
}

// exitCode reports err on stderr and returns the exit status it means.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var v *violationError
	if errors.As(err, &v) {
		fmt.Fprintln(stderr, v.Error())
		return exitViolation
	}
	fmt.Fprintln(stderr, "cachebench:", err)
	return exitError
}

// config is what the flags say.
type config struct {
	redis         string
	cluster       []string
	memcached     []string
	duration      time.Duration // of each mode's timed phase
	instances     int
	goroutines    int // per instance
	keys          int
	zipf          float64
	loaderLatency time.Duration
	writes        float64 // fraction of operations that are writes
	maxStaleness  time.Duration
	modes         []mode
	out           string
	quiet         bool

	// wrap, set only by tests, wraps each instance of each mode, to plant
	// the faults that the checks must catch.
	wrap func(m mode, db *database, in instance) instance
}

func parseConfig(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("cachebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cluster, memcached, modeNames string
	fs.StringVar(&cfg.redis, "redis", "", "address of a Redis server to run on (or, with -memcached, whose bus the local tier uses)")
	fs.StringVar(&cluster, "cluster", "", "comma-separated seed addresses of a Redis Cluster to run on")
	fs.StringVar(&memcached, "memcached", "", "comma-separated addresses of memcached servers to run on")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "how long each mode's timed phase runs")
	fs.IntVar(&cfg.instances, "instances", 3, "simulated service instances, each with its own store client")
	fs.IntVar(&cfg.goroutines, "goroutines", 8, "goroutines per instance")
	fs.IntVar(&cfg.keys, "keys", 1000, "size of the key space")
	fs.Float64Var(&cfg.zipf, "zipf", 1.1, "exponent of the zipf distribution of keys (> 1; larger is more skewed)")
	fs.DurationVar(&cfg.loaderLatency, "loader-latency", 2*time.Millisecond, "how long the database takes to answer")
	fs.Float64Var(&cfg.writes, "writes", 0.01, "fraction of operations that update a key and invalidate it")
	fs.DurationVar(&cfg.maxStaleness, "max-staleness", 500*time.Millisecond, "how stale a read may be in the memo modes, and the local tier's LocalOptions.MaxStaleness")
	fs.StringVar(&modeNames, "modes", "none,cache,memo,memo+local", "comma-separated modes to run")
	fs.StringVar(&cfg.out, "out", "", "directory to write summary.md and the charts to")
	fs.BoolVar(&cfg.quiet, "quiet", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: cachebench [flags]\n\n"+
			"Runs a service-shaped workload in each mode (none, cache, memo, memo+local)\n"+
			"and prints a table; on embedded miniredis unless a server is given.\n"+
			"Exits 1 on a correctness violation, 2 when it cannot run.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	cfg.cluster = splitAddrs(cluster)
	cfg.memcached = splitAddrs(memcached)
	for _, name := range splitAddrs(modeNames) {
		i := slices.IndexFunc(modes, func(m mode) bool { return m.name == name })
		if i < 0 {
			return cfg, fmt.Errorf("-modes: no mode %q (there are none, cache, memo, memo+local)", name)
		}
		if !slices.Contains(cfg.modes, modes[i]) {
			cfg.modes = append(cfg.modes, modes[i])
		}
	}
	return cfg, cfg.validate()
}

func (c *config) validate() error {
	switch {
	case c.duration <= 0:
		return errors.New("-duration must be positive")
	case c.instances < 1 || c.goroutines < 1:
		return errors.New("-instances and -goroutines must be at least 1")
	case c.keys < 2:
		return errors.New("-keys must be at least 2")
	case !(c.zipf > 1):
		return errors.New("-zipf must be greater than 1")
	case c.loaderLatency < 0:
		return errors.New("-loader-latency must not be negative")
	case !(c.writes >= 0 && c.writes < 1):
		return errors.New("-writes must be in [0, 1)")
	case len(c.modes) == 0:
		return errors.New("-modes names no mode")
	case c.maxStaleness <= 0:
		return errors.New("-max-staleness must be positive")
	case len(c.cluster) > 0 && (c.redis != "" || len(c.memcached) > 0):
		return errors.New("-cluster goes alone: give one of -redis, -cluster, -memcached (-redis may go with -memcached, for the local tier's bus)")
	}
	return nil
}

// splitAddrs splits a comma-separated list, dropping empty items.
func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// run runs every mode on the backend cfg names, prints the table on
// stdout (the progress bar on stderr), writes the -out files, and returns
// the report, with a *violationError when a check failed.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) (*report, error) {
	b, err := openBackend(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer b.close()

	rep := &report{cfg: cfg, backend: b.name, runAt: time.Now()}
	bar := newProgress(stderr, cfg, len(cfg.modes))
	for _, m := range cfg.modes {
		res, err := runMode(ctx, cfg, b, m, bar)
		if err != nil {
			bar.stop()
			return nil, fmt.Errorf("%s: %w", m.name, err)
		}
		rep.results = append(rep.results, res)
	}
	bar.stop()

	rep.writeText(stdout)
	if cfg.out != "" {
		if err := rep.writeFiles(cfg.out); err != nil {
			return rep, err
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", cfg.out)
	}
	if v := rep.violations(); len(v) > 0 {
		return rep, &violationError{violations: v}
	}
	return rep, nil
}

// violationError is the error of a run that saw correctness violations.
type violationError struct {
	violations []string
}

func (e *violationError) Error() string {
	return "cachebench: correctness violations:\n  " + strings.Join(e.violations, "\n  ")
}
