package memo_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/teststores"
	"github.com/typedcache/typedcache/memo"
)

// Jitter takes a random part of up to that fraction off the TTL of every
// value memo writes: 40 values written together with Jitter 0.5 get TTLs
// spread between 50% and 100% of the TTL; with no jitter, all get the
// TTL. The TTLs are read where each store tells them: the store's TTL
// (where TTLReadable), and the entry's logical expiry with fail-safe (on
// every store, Memcached included).
func TestJitter(t *testing.T) {
	const ttl = time.Hour
	const n = 40
	tests := []struct {
		name   string
		jitter float64
	}{
		{"jitter 0.5", 0.5},
		{"no jitter", 0},
	}
	forEachStore(t, func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		for _, tt := range tests {
			for _, failSafe := range []bool{false, true} {
				if !failSafe && !b.TTLReadable {
					continue // nothing tells the TTL
				}
				name := tt.name + map[bool]string{false: "/store TTL", true: "/fail-safe expiry"}[failSafe]
				t.Run(name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), bound)
					defer cancel()
					c1, c2, _, _ := twoClients[int](t, b, s, teststores.Namespace(ns), time.Minute)
					opts := &memo.Options{TTL: ttl, Jitter: tt.jitter}
					if failSafe {
						opts.FailSafeMax = time.Minute
					}
					m := memo.Func(c1, func(_ context.Context, k string) (int, error) { return len(k), nil }, opts)
					t.Cleanup(m.Close)
					keys := make([]string, n)
					for i := range keys {
						keys[i] = fmt.Sprintf("k%d", i)
					}
					if _, err := m.GetMulti(ctx, keys); err != nil {
						t.Fatal(err)
					}
					ttls := make([]time.Duration, n)
					for i, k := range keys {
						if failSafe {
							e := entry(t, c2, k)
							ttls[i] = e.FreshUntil.Sub(e.Written)
							continue
						}
						left, err := c2.TTL(ctx, k)
						if err != nil {
							t.Fatal(err)
						}
						ttls[i] = left
					}
					lo, hi := slices.Min(ttls), slices.Max(ttls)
					// The store's TTL has run a little since the write.
					const slack = time.Minute
					if tt.jitter == 0 {
						if lo < ttl-slack || hi > ttl {
							t.Fatalf("TTLs from %v to %v; want all %v", lo, hi, ttl)
						}
						if failSafe && lo != hi {
							t.Fatalf("fresh for %v to %v; want all exactly %v", lo, hi, ttl)
						}
						return
					}
					minTTL := time.Duration(float64(ttl) * (1 - tt.jitter))
					if lo < minTTL-slack || hi > ttl {
						t.Fatalf("TTLs from %v to %v; want them within [%v, %v]", lo, hi, minTTL, ttl)
					}
					// 40 draws from a range of half the TTL: the chance that
					// they all fall within half of it is 40 * 2^-39.
					if hi-lo < (ttl-minTTL)/2 {
						t.Fatalf("TTLs from %v to %v; want them spread over [%v, %v]", lo, hi, minTTL, ttl)
					}
				})
			}
		}
	})
}
