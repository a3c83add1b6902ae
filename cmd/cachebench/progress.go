package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is the progress bar on standard error: it moves with the time
// spent in the modes' timed phases, the bulk of a run. Where standard error
// is not a terminal (a log, a pipe), it writes a line per phase instead. A
// nil *progress (-quiet) shows nothing.
type progress struct {
	bar      *progressbar.ProgressBar
	lines    io.Writer     // without a terminal: where the lines go, bar nil
	duration time.Duration // of one mode's timed phase

	mu     sync.Mutex
	done   time.Duration // of the modes already run
	since  time.Time     // start of the running timed phase; zero between them
	ticker *time.Ticker
	quit   chan struct{}
	exited chan struct{}
}

// newProgress starts the bar for n modes, or returns nil with cfg.quiet.
// Its goroutine redraws the bar every 100ms until stop.
func newProgress(w io.Writer, cfg config, n int) *progress {
	if cfg.quiet {
		return nil
	}
	if f, ok := w.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		return &progress{lines: w, duration: cfg.duration}
	}
	p := &progress{
		duration: cfg.duration,
		bar: progressbar.NewOptions64(int64(n)*cfg.duration.Milliseconds(),
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionClearOnFinish(),
		),
		ticker: time.NewTicker(100 * time.Millisecond),
		quit:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer close(p.exited)
	for {
		select {
		case <-p.quit:
			return
		case <-p.ticker.C:
			p.mu.Lock()
			at := p.done
			if !p.since.IsZero() {
				at += min(time.Since(p.since), p.duration)
			}
			p.mu.Unlock()
			_ = p.bar.Set64(at.Milliseconds())
		}
	}
}

// describe sets the text after the bar.
func (p *progress) describe(s string) {
	switch {
	case p == nil:
	case p.bar == nil:
		fmt.Fprintf(p.lines, "cachebench: %s\n", s)
	default:
		p.bar.Describe(s)
	}
}

// begin marks the start of the timed phase of mode.
func (p *progress) begin(mode string) {
	if p == nil {
		return
	}
	if p.bar == nil {
		p.describe(fmt.Sprintf("%s: %s", mode, fmtDur(p.duration)))
		return
	}
	p.describe(mode)
	p.mu.Lock()
	p.since = time.Now()
	p.mu.Unlock()
}

// end marks the end of a timed phase.
func (p *progress) end() {
	if p == nil || p.bar == nil {
		return
	}
	p.mu.Lock()
	p.done += p.duration
	p.since = time.Time{}
	p.mu.Unlock()
}

// skip accounts for a mode that does not run.
func (p *progress) skip() { p.end() }

// stop stops the bar's goroutine and clears the bar.
func (p *progress) stop() {
	if p == nil || p.bar == nil {
		return
	}
	p.ticker.Stop()
	close(p.quit)
	<-p.exited
	_ = p.bar.Finish()
	_ = p.bar.Exit()
}
