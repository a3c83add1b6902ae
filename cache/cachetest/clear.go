package cachetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/typedcache/typedcache/cache"
)

// clearCase is one Clear(prefix) case: keys are relative to the test's
// unique prefix.
type clearCase struct {
	name   string
	prefix string
	in     []string // keys starting with prefix: deleted
	out    []string // keys not starting with prefix: kept
}

var clearCases = []clearCase{
	{
		name:   "Prefix",
		prefix: "a:",
		in:     []string{"a:", "a:1", "a:2", "a:x:y"},
		// A shorter prefix, a longer first segment, the prefix in the
		// middle, another case.
		out: []string{"a", "ab:1", "ab", "x:a:1", "A:1", "b", ":a:"},
	},
	{name: "Star", prefix: "s*", in: []string{"s*", "s*1"}, out: []string{"s", "s1", "sX1"}},
	{name: "Question", prefix: "q?", in: []string{"q?", "q?1"}, out: []string{"q", "qX", "qX1"}},
	{name: "Brackets", prefix: "b[ab]", in: []string{"b[ab]1"}, out: []string{"ba1", "bb", "b[ab", "b[a"}},
	{name: "OpenBracket", prefix: "o[", in: []string{"o[1"}, out: []string{"o1", "o"}},
	{name: "CloseBracket", prefix: "c]", in: []string{"c]1"}, out: []string{"c1", "c"}},
	{name: "Negation", prefix: "n[^a]", in: []string{"n[^a]x"}, out: []string{"nbx", "n^x"}},
	{name: "Bang", prefix: "g[!a]", in: []string{"g[!a]x"}, out: []string{"gbx", "g!x"}},
	// As a glob, `e\*` matches the key "e*": not as a string prefix.
	{name: "Backslash", prefix: `e\`, in: []string{`e\`, `e\1`, `e\*`}, out: []string{"e*", "e1", "e"}},
	{name: "EscapedStar", prefix: `f\*`, in: []string{`f\*x`}, out: []string{"f*x", `f\x`}},
	{name: "AllGlob", prefix: `*?[]\`, in: []string{`*?[]\1`}, out: []string{`x?[]\1`, `*x[]\1`, "*", "z"}},
	{name: "Regexp", prefix: "r.+", in: []string{"r.+1"}, out: []string{"rxy1", "r.1", "r+"}},
	{name: "SQLLike", prefix: "l%_", in: []string{"l%_1"}, out: []string{"lab1", "l%x", "l_"}},
	{name: "NoMatch", prefix: "nothing:", out: []string{"nothing", "other:1"}},
}

// testClear covers Clear.
func (s *suite) testClear(t *testing.T) {
	if s.h.NoClearPrefix {
		s.run(t, "PrefixUnsupported", func(e *env) {
			k := e.key("x1")
			e.mustSet(k, []byte("v"), 0)
			if err := e.s.Clear(e.ctx, e.key("x")); !errors.Is(err, cache.ErrUnsupported) {
				e.t.Errorf("Clear(prefix) with Harness.NoClearPrefix: got %v; want ErrUnsupported", err)
			}
			e.wantValue(k, []byte("v"))
		})
	} else {
		for _, tc := range clearCases {
			s.run(t, tc.name, func(e *env) {
				for i, k := range tc.in {
					e.mustSet(e.key(k), []byte(fmt.Sprint("in", i)), 0)
				}
				for i, k := range tc.out {
					e.mustSet(e.key(k), []byte(fmt.Sprint("out", i)), 0)
				}
				// A key holding the whole prefix in its middle: outside the
				// test's prefix, so deleted here.
				mid := "cachetest-mid:" + e.key(tc.prefix) + "1"
				e.mustSet(mid, []byte("mid"), 0)
				e.t.Cleanup(func() { _, _ = e.s.Delete(context.Background(), mid) })
				if err := e.s.Clear(e.ctx, e.key(tc.prefix)); err != nil {
					e.t.Fatalf("Clear(%q): %v", e.key(tc.prefix), err)
				}
				for _, k := range tc.in {
					if e.mustExists(e.key(k)) {
						e.t.Errorf("after Clear(prefix+%q): key prefix+%q still exists; want it deleted", tc.prefix, k)
					}
				}
				if got, err := e.s.Get(e.ctx, mid); err != nil || string(got) != "mid" {
					e.t.Errorf("after Clear(%q): Get(%q): got (%s, %v); want \"mid\": Clear deleted a key holding the prefix in its middle", e.key(tc.prefix), mid, showValue(got), err)
				}
				for i, k := range tc.out {
					got, err := e.s.Get(e.ctx, e.key(k))
					if err != nil || string(got) != fmt.Sprint("out", i) {
						e.t.Errorf("after Clear(prefix+%q): Get(prefix+%q): got (%s, %v); want %q: Clear deleted a key outside the prefix", tc.prefix, k, showValue(got), err, fmt.Sprint("out", i))
					}
				}
			})
		}
		s.run(t, "ManyKeys", func(e *env) {
			// Enough keys that a store enumerating them in pages (SCAN)
			// needs several.
			const n = 1200
			var items []cache.Item
			keys := make([]string, n)
			for i := range n {
				keys[i] = e.key(fmt.Sprintf("m:%04d", i))
				items = append(items, cache.Item{Key: keys[i], Value: []byte("v")})
			}
			kept := e.key("n:1")
			items = append(items, cache.Item{Key: kept, Value: []byte("kept")})
			if err := e.s.SetMulti(e.ctx, items); err != nil {
				e.t.Fatalf("SetMulti(%d items): %v", len(items), err)
			}
			if err := e.s.Clear(e.ctx, e.key("m:")); err != nil {
				e.t.Fatalf("Clear: %v", err)
			}
			got, err := e.s.GetMulti(e.ctx, keys)
			if err != nil {
				e.t.Fatalf("GetMulti: %v", err)
			}
			left := 0
			for _, v := range got {
				if v != nil {
					left++
				}
			}
			if left != 0 {
				e.t.Errorf("after Clear of %d keys: got %d keys left; want 0", n, left)
			}
			e.wantValue(kept, []byte("kept"))
		})
	}
	s.run(t, "All", func(e *env) {
		if !e.h.Exclusive {
			e.t.Skip(`Harness.Exclusive is false: Clear("") would empty a shared backend`)
		}
		other, shared := e.shared()
		a, b, c := e.key("a"), e.key("b"), e.track("cachetest-clear-all"+e.prefix)
		e.mustSet(a, []byte("1"), 0)
		e.mustSet(b, []byte("2"), e.longTTL)
		e.mustSet(c, []byte("3"), 0)
		e.mustSet(e.key(""), []byte{}, 0)
		if shared {
			if err := other.Set(e.ctx, e.key("other"), []byte("4"), 0); err != nil {
				e.t.Fatalf("second store: Set: %v", err)
			}
		}
		if err := e.s.Clear(e.ctx, ""); err != nil {
			e.t.Fatalf(`Clear(""): %v`, err)
		}
		for _, k := range []string{a, b, c, e.key(""), e.key("other"), e.key("shared-probe")} {
			e.wantAllMiss(k)
		}
		if shared {
			if ok, err := other.Exists(e.ctx, e.key("other")); ok || err != nil {
				e.t.Errorf(`second store, after Clear(""): Exists: got (%v, %v); want (false, nil)`, ok, err)
			}
		}
		// The store still works.
		e.mustSet(a, []byte("again"), 0)
		e.wantValue(a, []byte("again"))
	})
}
