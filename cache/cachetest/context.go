package cachetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// ctxCase is one method called with a done context: setup prepares the
// key, call makes the call, and check verifies with a live context that
// nothing was written.
type ctxCase struct {
	name  string
	setup func(e *env, k string) cache.Token
	call  func(ctx context.Context, e *env, k string, tok cache.Token) error
	check func(e *env, k string, tok cache.Token)
}

func setV(e *env, k string) cache.Token { e.mustSet(k, []byte("v"), 0); return cache.Token{} }

func keptV(e *env, k string, _ cache.Token) { e.wantValue(k, []byte("v")) }

func stillMissing(e *env, k string, _ cache.Token) { e.wantMiss(k) }

// keptNoExpiry checks that k, written without ttl, still has none. (Where
// the TTL cannot be read, the Expiry cases check it by waiting.)
func keptNoExpiry(e *env, k string, _ cache.Token) {
	e.t.Helper()
	e.wantValue(k, []byte("v"))
	e.wantNoExpiry(k)
}

func ctxCases(h *Harness) []ctxCase {
	cases := []ctxCase{
		{name: "Get", setup: setV, call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			_, err := e.s.Get(ctx, k)
			return err
		}},
		{name: "GetMulti", setup: setV, call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			_, err := e.s.GetMulti(ctx, []string{k, k + "-2"})
			return err
		}},
		{name: "Set", setup: setV, call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			return e.s.Set(ctx, k, []byte("new"), 0)
		}, check: keptV},
		{name: "SetMulti", call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			return e.s.SetMulti(ctx, []cache.Item{{Key: k, Value: []byte("new")}})
		}, check: stillMissing},
		{name: "Add", call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			return e.s.Add(ctx, k, []byte("new"), 0)
		}, check: stillMissing},
		{name: "Delete", setup: setV, call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			_, err := e.s.Delete(ctx, k)
			return err
		}, check: keptV},
		{name: "Exists", setup: setV, call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			_, err := e.s.Exists(ctx, k)
			return err
		}},
		{name: "Expire", setup: setV, call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			_, err := e.s.Expire(ctx, k, e.ttl)
			return err
		}, check: keptNoExpiry},
		{name: "TTL", setup: setV, call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			_, err := e.s.TTL(ctx, k)
			return err
		}},
		{name: "Increment", setup: func(e *env, k string) cache.Token {
			e.mustSet(k, []byte("5"), 0)
			return cache.Token{}
		}, call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			_, err := e.s.Increment(ctx, k, 1)
			return err
		}, check: func(e *env, k string, _ cache.Token) { e.wantValue(k, []byte("5")) }},
		{name: "IncrementMissing", call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			_, err := e.s.Increment(ctx, k, 1)
			return err
		}, check: stillMissing},
		{name: "Clear", setup: setV, call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			return e.s.Clear(ctx, k)
		}, check: keptV},
		{name: "Gets", setup: setV, call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			_, _, err := e.s.Gets(ctx, k)
			return err
		}},
		{name: "CompareAndSwap", setup: func(e *env, k string) cache.Token {
			setV(e, k)
			_, tok := e.mustGets(k)
			return tok
		}, call: func(ctx context.Context, e *env, k string, tok cache.Token) error {
			return e.s.CompareAndSwap(ctx, k, []byte("new"), tok, 0)
		}, check: func(e *env, k string, tok cache.Token) {
			e.wantValue(k, []byte("v"))
			// The token is still good: nothing happened.
			e.mustCAS(k, []byte("new"), tok, 0)
		}},
		{name: "CompareAndSwapAbsent", call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			return e.s.CompareAndSwap(ctx, k, []byte("new"), cache.AbsentToken(), 0)
		}, check: stillMissing},
		{name: "DeleteIfEqual", setup: setV, call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			_, err := e.s.DeleteIfEqual(ctx, k, []byte("v"))
			return err
		}, check: keptV},
		{name: "ExtendIfEqual", setup: setV, call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			_, err := e.s.ExtendIfEqual(ctx, k, []byte("v"), e.ttl)
			return err
		}, check: keptNoExpiry},
	}
	if h.Exclusive {
		cases = append(cases, ctxCase{name: "ClearAll", setup: setV, call: func(ctx context.Context, e *env, k string, _ cache.Token) error {
			return e.s.Clear(ctx, "")
		}, check: keptV})
	}
	return cases
}

// testContext calls every method with a cancelled context and with an
// expired deadline.
func (s *suite) testContext(t *testing.T) {
	kinds := []struct {
		name string
		want error
		ctx  func(parent context.Context) (context.Context, context.CancelFunc)
	}{
		{"Canceled", context.Canceled, func(parent context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(parent)
			cancel()
			return ctx, cancel
		}},
		{"DeadlineExceeded", context.DeadlineExceeded, func(parent context.Context) (context.Context, context.CancelFunc) {
			return context.WithDeadline(parent, time.Now().Add(-time.Second))
		}},
	}
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			for _, c := range ctxCases(&s.h) {
				f := func(e *env) {
					k := e.key("k")
					var tok cache.Token
					if c.setup != nil {
						tok = c.setup(e, k)
					}
					ctx, cancel := kind.ctx(e.ctx)
					defer cancel()
					if err := c.call(ctx, e, k, tok); !errors.Is(err, kind.want) {
						e.t.Errorf("%s with a done context: got %v; want an error matching %v", c.name, err, kind.want)
					}
					if c.check != nil {
						c.check(e, k, tok)
					}
				}
				s.run(t, c.name, f)
			}
		})
	}
}

// testClose closes stores twice, and uses one after Close.
func (s *suite) testClose(t *testing.T) {
	t.Run("Twice", func(t *testing.T) {
		st := s.h.NewStore(t)
		if err := st.Close(); err != nil {
			t.Errorf("first Close: %v", err)
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("second Close panicked: %v; want nil or an error", r)
				}
			}()
			_ = st.Close() // may return an error
		}()
	})
	t.Run("UseAfterClose", func(t *testing.T) {
		st := s.h.NewStore(t)
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("Get after Close panicked: %v; want a result or an error (ErrClosed)", r)
			}
		}()
		_, err := st.Get(ctx, uniquePrefix()+"k")
		if err != nil && !errors.Is(err, cache.ErrClosed) && !errors.Is(err, cache.ErrNotFound) {
			t.Logf("Get after Close: %v (ErrClosed is the documented error)", err)
		}
	})
}
