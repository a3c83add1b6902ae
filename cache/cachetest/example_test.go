package cachetest_test

import (
	"testing"
	"time"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/cache/cachetest"
)

// A store's conformance test describes the store in a Harness and runs the
// suite. This is backends/memstore's: TestConformance below would live in
// backends/memstore/conformance_test.go.
func ExampleRunConformanceTests() {
	harness := cachetest.Harness{
		NewStore: func(t *testing.T) cache.Store {
			s, err := memstore.New(nil)
			if err != nil {
				t.Fatalf("memstore.New: %v", err)
			}
			return s // the suite closes it
		},
		Exclusive:     true, // each store is its own backend: Clear("") may be tested
		TTLResolution: time.Millisecond,
	}

	TestConformance := func(t *testing.T) {
		cachetest.RunConformanceTests(t, harness)
	}
	_ = TestConformance
}
