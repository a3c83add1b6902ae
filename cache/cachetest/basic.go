package cachetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/typedcache/typedcache/cache"
)

// testBasic covers Get, Set, SetMulti, Exists and Delete.
func (s *suite) testBasic(t *testing.T) {
	s.run(t, "GetMissing", func(e *env) {
		e.wantMiss(e.key("missing"))
	})
	s.run(t, "SetGet", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("v1"), 0)
		e.wantValue(k, []byte("v1"))
		e.wantExists(k, true)
	})
	s.run(t, "SetReplacesValue", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("first value, longer"), 0)
		e.mustSet(k, []byte("v2"), 0)
		e.wantValue(k, []byte("v2"))
	})
	s.run(t, "SetWithoutTTLRemovesExpiry", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("v1"), e.longTTL)
		e.mustSet(k, []byte("v2"), 0)
		e.wantValue(k, []byte("v2"))
		e.wantNoExpiry(k)
	})
	s.run(t, "SetWithTTLReplacesTTL", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("v1"), 0)
		e.mustSet(k, []byte("v2"), e.longTTL)
		e.wantValue(k, []byte("v2"))
		e.wantLongTTL(k)
	})
	s.run(t, "ExistsMissing", func(e *env) {
		e.wantExists(e.key("missing"), false)
	})
	s.run(t, "DeleteOne", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("v"), 0)
		if n := e.mustDelete(k); n != 1 {
			e.t.Errorf("Delete(existing key): got %d; want 1", n)
		}
		e.wantMiss(k)
		e.wantExists(k, false)
	})
	s.run(t, "DeleteMissing", func(e *env) {
		if n := e.mustDelete(e.key("missing")); n != 0 {
			e.t.Errorf("Delete(missing key): got %d; want 0", n)
		}
	})
	s.run(t, "DeleteNoKeys", func(e *env) {
		if n := e.mustDelete(); n != 0 {
			e.t.Errorf("Delete(): got %d; want 0", n)
		}
	})
	s.run(t, "DeleteSeveral", func(e *env) {
		a, b, c, missing := e.key("a"), e.key("b"), e.key("c"), e.key("missing")
		e.mustSet(a, []byte("1"), 0)
		e.mustSet(b, []byte("2"), e.longTTL)
		e.mustSet(c, []byte("3"), 0)
		if n := e.mustDelete(a, missing, b); n != 2 {
			e.t.Errorf("Delete(2 existing keys, 1 missing): got %d; want 2", n)
		}
		e.wantMiss(a)
		e.wantMiss(b)
		e.wantValue(c, []byte("3"))
	})
	s.run(t, "DeleteEmptyValue", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte{}, 0)
		if n := e.mustDelete(k); n != 1 {
			e.t.Errorf("Delete(key holding an empty value): got %d; want 1", n)
		}
		e.wantMiss(k)
	})
	s.run(t, "SetMulti", func(e *env) {
		a, b, c := e.key("a"), e.key("b"), e.key("c")
		e.mustSet(c, []byte("old"), e.longTTL)
		items := []cache.Item{
			{Key: a, Value: []byte("va")},
			{Key: b, Value: []byte("vb"), TTL: e.longTTL},
			{Key: c, Value: []byte("vc")},
		}
		if err := e.s.SetMulti(e.ctx, items); err != nil {
			e.t.Fatalf("SetMulti: %v", err)
		}
		e.wantValue(a, []byte("va"))
		e.wantValue(b, []byte("vb"))
		e.wantValue(c, []byte("vc"))
		e.wantNoExpiry(a)
		e.wantLongTTL(b)
		e.wantNoExpiry(c) // SetMulti replaced the ttl of c too
	})
	s.run(t, "SetMultiNoItems", func(e *env) {
		if err := e.s.SetMulti(e.ctx, nil); err != nil {
			e.t.Errorf("SetMulti(nil): got %v; want nil", err)
		}
		if err := e.s.SetMulti(e.ctx, []cache.Item{}); err != nil {
			e.t.Errorf("SetMulti(empty): got %v; want nil", err)
		}
	})
}

// testGetMulti covers GetMulti.
func (s *suite) testGetMulti(t *testing.T) {
	s.run(t, "Aligned", func(e *env) {
		a, b, empty, missing := e.key("a"), e.key("b"), e.key("empty"), e.key("missing")
		e.mustSet(a, []byte("va"), 0)
		e.mustSet(b, []byte("vb"), e.longTTL)
		e.mustSet(empty, []byte{}, 0)
		keys := []string{a, missing, b, empty, a, missing, empty}
		want := [][]byte{[]byte("va"), nil, []byte("vb"), {}, []byte("va"), nil, {}}
		e.wantMulti(keys, want)
	})
	s.run(t, "NoKeys", func(e *env) {
		got, err := e.s.GetMulti(e.ctx, nil)
		if err != nil || len(got) != 0 {
			e.t.Errorf("GetMulti(nil): got (%s, %v); want ([], nil)", showValues(got), err)
		}
		got, err = e.s.GetMulti(e.ctx, []string{})
		if err != nil || len(got) != 0 {
			e.t.Errorf("GetMulti([]): got (%s, %v); want ([], nil)", showValues(got), err)
		}
	})
	s.run(t, "AllMissing", func(e *env) {
		keys := []string{e.key("m1"), e.key("m2"), e.key("m3")}
		e.wantMulti(keys, [][]byte{nil, nil, nil})
	})
	s.run(t, "ManyKeys", func(e *env) {
		const n = 300
		keys := make([]string, n)
		want := make([][]byte, n)
		var items []cache.Item
		for i := range n {
			keys[i] = e.key(fmt.Sprintf("k%03d", i))
			if i%3 == 1 {
				continue // a miss
			}
			want[i] = []byte(fmt.Sprintf("value %d", i))
			items = append(items, cache.Item{Key: keys[i], Value: want[i]})
		}
		if err := e.s.SetMulti(e.ctx, items); err != nil {
			e.t.Fatalf("SetMulti(%d items): %v", len(items), err)
		}
		e.wantMulti(keys, want)
	})
}

// wantMulti checks that GetMulti(keys) returns want: equal values, nil
// exactly where want is nil, a non-nil empty slice for an empty value.
func (e *env) wantMulti(keys []string, want [][]byte) {
	e.t.Helper()
	got, err := e.s.GetMulti(e.ctx, keys)
	if err != nil {
		e.t.Fatalf("GetMulti(%d keys): %v", len(keys), err)
	}
	if len(got) != len(keys) {
		e.t.Fatalf("GetMulti(%d keys): got %d values; want %d", len(keys), len(got), len(keys))
	}
	for i := range keys {
		if (got[i] == nil) != (want[i] == nil) || string(got[i]) != string(want[i]) {
			e.t.Errorf("GetMulti: value %d (key %s): got %s; want %s", i, showKey(keys[i]), showValue(got[i]), showValue(want[i]))
		}
	}
}

// testAdd covers Add (its expiry is in testExpiry).
func (s *suite) testAdd(t *testing.T) {
	s.run(t, "Absent", func(e *env) {
		k := e.key("k")
		e.mustAdd(k, []byte("v"), 0)
		e.wantValue(k, []byte("v"))
		e.wantNoExpiry(k)
	})
	s.run(t, "Present", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("v1"), 0)
		if err := e.s.Add(e.ctx, k, []byte("v2"), 0); !errors.Is(err, cache.ErrExists) {
			e.t.Errorf("Add(present key): got %v; want ErrExists", err)
		}
		e.wantValue(k, []byte("v1"))
	})
	s.run(t, "PresentKeepsTTL", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte("v1"), e.longTTL)
		if err := e.s.Add(e.ctx, k, []byte("v2"), 0); !errors.Is(err, cache.ErrExists) {
			e.t.Errorf("Add(present key): got %v; want ErrExists", err)
		}
		e.wantValue(k, []byte("v1"))
		e.wantLongTTL(k)
	})
	s.run(t, "Twice", func(e *env) {
		k := e.key("k")
		e.mustAdd(k, []byte("v1"), 0)
		if err := e.s.Add(e.ctx, k, []byte("v2"), 0); !errors.Is(err, cache.ErrExists) {
			e.t.Errorf("second Add: got %v; want ErrExists", err)
		}
		e.wantValue(k, []byte("v1"))
	})
	s.run(t, "PresentEmptyValue", func(e *env) {
		k := e.key("k")
		e.mustSet(k, []byte{}, 0)
		if err := e.s.Add(e.ctx, k, []byte("v2"), 0); !errors.Is(err, cache.ErrExists) {
			e.t.Errorf("Add over an empty value (a hit, not a miss): got %v; want ErrExists", err)
		}
		e.wantValue(k, []byte{})
	})
	s.run(t, "WithTTL", func(e *env) {
		k := e.key("k")
		e.mustAdd(k, []byte("v"), e.longTTL)
		e.wantValue(k, []byte("v"))
		e.wantLongTTL(k)
	})
	s.run(t, "AfterDelete", func(e *env) {
		k := e.key("k")
		e.mustAdd(k, []byte("v1"), 0)
		e.mustDelete(k)
		e.mustAdd(k, []byte("v2"), 0)
		e.wantValue(k, []byte("v2"))
	})
}
