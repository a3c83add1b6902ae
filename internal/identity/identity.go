// Package identity names a value, such as a cache.Store, within the
// process, so that registries keyed by store (the lock's in-process
// wake-ups, memo's flights) never hash a value that cannot be hashed.
package identity

import "reflect"

// Of returns a map key that stands for v in this process, and false when v
// has none: a pointer (or map, channel, func) is named by its address; a
// value of a comparable type whose contents can be hashed is its own name;
// anything else (a struct holding a slice, say) has no name, and callers
// must do without their registry for it.
func Of(v any) (any, bool) {
	if v == nil {
		return nil, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return rv.Pointer(), true
	}
	if !rv.Type().Comparable() || !hashable(v) {
		return nil, false
	}
	return v, true
}

// hashable reports whether v can be a map key: a comparable type can still
// hold an interface whose dynamic value cannot.
func hashable(v any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_ = map[any]struct{}{v: {}}
	return true
}
