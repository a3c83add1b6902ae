package memo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/codec"
	"github.com/typedcache/typedcache/internal/teststores"
	"github.com/typedcache/typedcache/memo"
)

var errDB = errors.New("db timeout")

func TestZZReviewGetMultiSwallows(t *testing.T) {
	s := teststores.Get(t, "memory").New(t)
	c := cache.New[string, string](s, &cache.Options[string, string]{Namespace: "r1"})
	calls := 0
	fail := true
	m := memo.Func(c, func(ctx context.Context, k string) (string, error) {
		calls++
		if fail {
			return "", errDB
		}
		return "v", nil
	}, &memo.Options{NegativeTTL: time.Minute})
	_, err := m.GetMulti(context.Background(), []string{"k"})
	t.Logf("GetMulti err=%v; Is(errDB)=%v Is(ErrNotFound)=%v", err, errors.Is(err, errDB), errors.Is(err, memo.ErrNotFound))
	fail = false
	v, err := m.Get(context.Background(), "k")
	t.Logf("after recovery Get=%q err=%v calls=%d", v, err, calls)
}

func TestZZReviewNegativeResurrect(t *testing.T) {
	s := teststores.Get(t, "memory").New(t)
	c := cache.New[string, string](s, &cache.Options[string, string]{Namespace: "r2", TTL: 100 * time.Millisecond})
	exists := false
	m := memo.Func(c, func(ctx context.Context, k string) (string, error) {
		if !exists {
			return "", memo.ErrNotFound
		}
		return "v", nil
	}, &memo.Options{NegativeTTL: time.Minute})
	_, err := m.Get(context.Background(), "k")
	t.Logf("first Get err=%v", err)
	exists = true
	v, err := m.Refresh(context.Background(), "k")
	t.Logf("Refresh=%q err=%v", v, err)
	v, err = m.Get(context.Background(), "k")
	t.Logf("Get right after Refresh=%q err=%v", v, err)
	time.Sleep(200 * time.Millisecond)
	v, err = m.Get(context.Background(), "k")
	t.Logf("Get after value TTL=%q err=%v (fn would return v)", v, err)
}

func TestZZReviewCorruptNegative(t *testing.T) {
	s := teststores.Get(t, "memory").New(t)
	c := cache.New[string, int64](s, &cache.Options[string, int64]{Namespace: "r3"})
	_ = s.Set(context.Background(), c.Key("k"), []byte("garbage"), 0)
	calls := 0
	for i := 0; i < 3; i++ {
		_, err := memo.GetOrCompute(context.Background(), c, "k", func(ctx context.Context) (int64, error) {
			calls++
			return 0, memo.ErrNotFound
		}, &memo.Options{NegativeTTL: time.Minute})
		t.Logf("call %d err=%v", i, err)
	}
	t.Logf("computations=%d (want 1 with negative caching)", calls)
}

func TestZZReviewMultiEncode(t *testing.T) {
	s := teststores.Get(t, "memory").New(t)
	c := cache.New[string, any](s, &cache.Options[string, any]{Namespace: "r4", Codec: codec.JSON[any]()})
	out, err := memo.GetOrComputeMulti(context.Background(), c, []string{"a", "b"}, func(ctx context.Context, missing []string) (map[string]any, error) {
		return map[string]any{"a": 1, "b": make(chan int)}, nil
	}, nil)
	t.Logf("out=%v err=%v", out, err)
}
