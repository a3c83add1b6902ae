package identity

import "testing"

type withSlice struct{ S []int }

type withInterface struct{ v any }

func TestOf(t *testing.T) {
	p1, p2 := new(int), new(int)
	k1, ok1 := Of(p1)
	k1b, _ := Of(p1)
	k2, _ := Of(p2)
	if !ok1 || k1 != k1b || k1 == k2 {
		t.Fatalf("pointers: %v %v %v (ok %v); want equal for one pointer, distinct for two", k1, k1b, k2, ok1)
	}
	if k, ok := Of(withInterface{v: 1}); !ok || k != (withInterface{v: 1}) {
		t.Fatalf("comparable value: %v, %v", k, ok)
	}
	for _, v := range []any{withSlice{}, withInterface{v: []int{1}}, nil} {
		if _, ok := Of(v); ok {
			t.Errorf("Of(%#v) has a name; want none", v)
		}
	}
}
