package redisstore_test

import (
	"testing"
	"time"

	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// TestHotPathAllocs checks that Get and Set allocate no more than the raw
// go-redis calls they wrap: a count of allocations, not a timing.
func TestHotPathAllocs(t *testing.T) {
	srv := testenv.StartRedis(t)
	client := newClient(t, singleClient(srv.Addr()))
	store := newStore(t, client)
	ctx := t.Context()
	value := []byte("value")
	if err := client.Set(ctx, "k", value, 0).Err(); err != nil {
		t.Fatal(err)
	}
	var err error
	measure := func(f func()) float64 {
		f() // warm up the connection
		return testing.AllocsPerRun(200, f)
	}
	rawGet := measure(func() { _, err = client.Get(ctx, "k").Bytes() })
	storeGet := measure(func() { _, err = store.Get(ctx, "k") })
	rawSet := measure(func() { err = client.Set(ctx, "k", value, time.Minute).Err() })
	storeSet := measure(func() { err = store.Set(ctx, "k", value, time.Minute) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("allocs per call: Get raw %.1f store %.1f; Set raw %.1f store %.1f", rawGet, storeGet, rawSet, storeSet)
	if storeGet > rawGet {
		t.Errorf("Store.Get: %.1f allocations per call; want at most raw go-redis's %.1f", storeGet, rawGet)
	}
	if storeSet > rawSet {
		t.Errorf("Store.Set: %.1f allocations per call; want at most raw go-redis's %.1f", storeSet, rawSet)
	}
}
