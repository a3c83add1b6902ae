package redisstore_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// TestHotPathAllocs checks that Get and Set allocate no more than the raw
// go-redis calls they wrap: a count of allocations, not a timing. Set is
// compared with a raw transaction of one SET, which is how the store sends
// every write (see Writes in the package documentation); a plain SET, which
// go-redis would send again after a lost reply, allocates less, and the
// difference is logged.
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
	plainSet := measure(func() { err = client.Set(ctx, "k", value, time.Minute).Err() })
	rawSet := measure(func() {
		_, err = client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "k", value, time.Minute)
			return nil
		})
	})
	storeSet := measure(func() { err = store.Set(ctx, "k", value, time.Minute) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("allocs per call: Get raw %.1f store %.1f; Set plain %.1f, raw transaction %.1f, store %.1f", rawGet, storeGet, plainSet, rawSet, storeSet)
	if storeGet > rawGet {
		t.Errorf("Store.Get: %.1f allocations per call; want at most raw go-redis's %.1f", storeGet, rawGet)
	}
	if storeSet > rawSet {
		t.Errorf("Store.Set: %.1f allocations per call; want at most a raw go-redis transaction's %.1f", storeSet, rawSet)
	}
}
