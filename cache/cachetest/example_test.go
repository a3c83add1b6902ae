// This file is a whole-file example: it is the conformance test of a store,
// here backends/memstore. In a store's package the function is named
// TestConformance and lives in conformance_test.go, where go test runs it;
// the suite needs the *testing.T of a test, so this example only compiles.
package cachetest_test

import (
	"testing"
	"time"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/cache/cachetest"
)

// testConformance is backends/memstore's conformance test, which that
// package runs as TestConformance.
func testConformance(t *testing.T) {
	cachetest.RunConformanceTests(t, cachetest.Harness{
		NewStore: func(t *testing.T) cache.Store {
			s, err := memstore.New(nil)
			if err != nil {
				t.Fatalf("memstore.New: %v", err)
			}
			return s // the suite closes it
		},
		Exclusive:     true, // each store is its own backend: Clear("") may be tested
		TTLResolution: time.Millisecond,
	})
}

// ExampleRunConformanceTests only compiles: see testConformance above.
func ExampleRunConformanceTests() {
	_ = testConformance // name it TestConformance in your store's package
}
