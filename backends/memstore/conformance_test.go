package memstore_test

import (
	"testing"
	"time"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/cache/cachetest"
)

func TestConformance(t *testing.T) {
	cachetest.RunConformanceTests(t, cachetest.Harness{
		NewStore: func(t *testing.T) cache.Store {
			s, err := memstore.New(nil)
			if err != nil {
				t.Fatalf("memstore.New: %v", err)
			}
			return s // the suite closes it
		},
		Exclusive:     true,
		TTLResolution: time.Millisecond,
	})
}
