package memo_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/memo"
)

// scripted is a loader whose behaviour is scripted call by call: the n-th
// call of it (from any client, any goroutine) plays the n-th step. A call
// past the end of the script is a test error (the source was asked when it
// should not have been), and fails. Every step announces itself on its
// started channel, so that tests wait for a computation to run instead of
// sleeping; a hanging step waits for its release, and Cleanup releases
// whatever the test left hanging.
type scripted[V any] struct {
	t     *testing.T
	steps []*step[V]
	calls atomic.Int64
}

// step is one call of a scripted loader: what it does once it runs (and,
// for a hanging step, once it is released).
type step[V any] struct {
	kind    stepKind
	v       V
	err     error
	f       func(ctx context.Context) (V, error)
	decide  func(ctx context.Context) // runs first, in the computation (CallFrom, Stale)
	hang    bool                      // wait for release (or the computation's ctx) first
	deaf    bool                      // with hang: ignore the computation's ctx
	started chan struct{}
	release chan struct{}
	once    sync.Once
	cause   error // the context.Cause of the computation's ctx when it ended during the hang
	ctxDone bool  // the hang ended because the computation's ctx did
}

type stepKind uint8

const (
	stepValue    stepKind = iota // return v
	stepError                    // return err
	stepPanic                    // panic
	stepNotFound                 // return memo.ErrNotFound
	stepFunc                     // return f(ctx)
)

// returns is a step that returns v.
func returns[V any](v V) *step[V] { return &step[V]{kind: stepValue, v: v} }

// fails is a step that returns err.
func fails[V any](err error) *step[V] { return &step[V]{kind: stepError, err: err} }

// panics is a step that panics.
func panics[V any]() *step[V] { return &step[V]{kind: stepPanic} }

// notFound is a step that answers memo.ErrNotFound.
func notFound[V any]() *step[V] { return &step[V]{kind: stepNotFound} }

// does is a step that returns what f returns.
func does[V any](f func(ctx context.Context) (V, error)) *step[V] {
	return &step[V]{kind: stepFunc, f: f}
}

// hangs makes s wait, once it runs, until the test releases it or the
// computation's ctx ends; then it does what s does (or, if ctx ended,
// returns context.Cause(ctx)).
func hangs[V any](s *step[V]) *step[V] {
	s.hang = true
	return s
}

// blocks makes s wait, once it runs, until the test releases it, whatever
// the computation's ctx does (a source that ignores its context).
func blocks[V any](s *step[V]) *step[V] {
	s.hang, s.deaf = true, true
	return s
}

// deciding makes s run decide(ctx) in the computation first: a
// computation that decides about its value (memo.CallFrom) or reads the
// value it replaces (memo.Stale).
func deciding[V any](s *step[V], decide func(ctx context.Context)) *step[V] {
	s.decide = decide
	return s
}

var errSource = errors.New("source down")

// newScripted returns a loader that plays steps, one per call.
func newScripted[V any](t *testing.T, steps ...*step[V]) *scripted[V] {
	t.Helper()
	for _, s := range steps {
		s.started = make(chan struct{})
		s.release = make(chan struct{})
	}
	ld := &scripted[V]{t: t, steps: steps}
	t.Cleanup(func() {
		for _, s := range steps {
			s.once.Do(func() { close(s.release) })
		}
	})
	return ld
}

// compute is the loader, for GetOrCompute.
func (ld *scripted[V]) compute(ctx context.Context) (V, error) {
	n := int(ld.calls.Add(1))
	var zero V
	if n > len(ld.steps) {
		ld.t.Errorf("the source was asked a %s time; the script has %d calls", ordinal(n), len(ld.steps))
		return zero, fmt.Errorf("unscripted call %d", n)
	}
	s := ld.steps[n-1]
	close(s.started)
	if s.decide != nil {
		s.decide(ctx)
	}
	if s.hang {
		done := ctx.Done()
		if s.deaf {
			done = nil
		}
		select {
		case <-s.release:
		case <-done:
			s.cause, s.ctxDone = context.Cause(ctx), true
			return zero, context.Cause(ctx)
		}
	}
	switch s.kind {
	case stepError:
		return zero, s.err
	case stepPanic:
		panic("the source panics")
	case stepNotFound:
		return zero, memo.ErrNotFound
	case stepFunc:
		return s.f(ctx)
	}
	return s.v, nil
}

// fn is the loader, for Func.
func (ld *scripted[V]) fn(ctx context.Context, _ string) (V, error) { return ld.compute(ctx) }

// count returns how many times the loader was called.
func (ld *scripted[V]) count() int { return int(ld.calls.Load()) }

// step returns the n-th step (from 1).
func (ld *scripted[V]) step(n int) *step[V] { return ld.steps[n-1] }

// awaitStarted waits until the n-th call runs.
func (ld *scripted[V]) awaitStarted(n int) {
	ld.t.Helper()
	select {
	case <-ld.step(n).started:
	case <-time.After(bound):
		ld.t.Fatalf("call %d of the source never started", n)
	}
}

// release lets the n-th call, hanging, go on.
func (ld *scripted[V]) release(n int) {
	s := ld.step(n)
	s.once.Do(func() { close(s.release) })
}

// wantCalls fails unless the loader was called want times.
func (ld *scripted[V]) wantCalls(want int) {
	ld.t.Helper()
	if got := ld.count(); got != want {
		ld.t.Fatalf("source calls = %d; want %d", got, want)
	}
}

func ordinal(n int) string {
	switch n {
	case 1:
		return "1st"
	case 2:
		return "2nd"
	case 3:
		return "3rd"
	}
	return fmt.Sprintf("%dth", n)
}

// call is a call made in a goroutine: its result arrives on done.
type call[V any] struct{ done chan callResult[V] }

type callResult[V any] struct {
	v   V
	err error
}

// goCall runs f in a goroutine.
func goCall[V any](f func() (V, error)) *call[V] {
	c := &call[V]{done: make(chan callResult[V], 1)}
	go func() {
		v, err := f()
		c.done <- callResult[V]{v, err}
	}()
	return c
}

// wait returns the call's result, failing the test if it never comes.
func (c *call[V]) wait(t *testing.T) (V, error) {
	t.Helper()
	select {
	case r := <-c.done:
		return r.v, r.err
	case <-time.After(bound):
		t.Fatal("the call did not return")
		var zero V
		return zero, nil
	}
}

// pending fails if the call returns within d: it is still waiting.
func (c *call[V]) pending(t *testing.T, d time.Duration, why string) {
	t.Helper()
	select {
	case r := <-c.done:
		t.Fatalf("the call returned %v, %v; want it still waiting (%s)", r.v, r.err, why)
	case <-time.After(d):
	}
}

// ttlFor scales a value's TTL that a store must expire to the backend: d
// on the stores that expire in milliseconds; on Memcached, which expires
// at whole seconds (a key lives at least its ttl, and goes within two
// seconds after), d rounded up to whole seconds. A value's logical expiry
// (fail-safe's fresh-until, a negative answer's) is in milliseconds in the
// entry on every store and needs no scaling.
func ttlFor(b teststores.Backend, d time.Duration) time.Duration {
	if b.Name != "memcached" {
		return d
	}
	return max((d + time.Second - 1).Truncate(time.Second), time.Second)
}

// leaseFor scales a lease to the backend: d, or at least two seconds on
// Memcached (see Options.Lease).
func leaseFor(b teststores.Backend, d time.Duration) time.Duration {
	if b.Name != "memcached" {
		return d
	}
	return max(ttlFor(b, d), 2*time.Second)
}
