package redisstore_test

// Fencing tokens where the counter is lost: evicted, lost in a restart, or
// behind on a replica that is promoted. AddFenced must still return a
// number greater than every earlier one (see the package documentation for
// the conditions).

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/internal/testing/faultproxy"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// fenceLock is the lock key of these tests. It has a hash tag, so its
// counter is fenceLock + ":fence" (see the package documentation).
const (
	fenceLock    = "{fence-test}"
	fenceCounter = fenceLock + ":fence"
)

// timeoutClient returns a client of addr with ContextTimeoutEnabled,
// closed when t ends.
func timeoutClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	return newClient(t, func() redis.UniversalClient {
		return redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	}).(*redis.Client)
}

// takeFences acquires and releases fenceLock n times through store and
// returns the fences, checking that each is greater than the one before.
func takeFences(t *testing.T, store *redisstore.Store, n int) []int64 {
	t.Helper()
	ctx := t.Context()
	var fences []int64
	for i := range n {
		f, err := store.AddFenced(ctx, fenceLock, []byte("holder"), time.Minute)
		if err != nil {
			t.Fatalf("AddFenced %d: %v", i+1, err)
		}
		if i > 0 && f <= fences[i-1] {
			t.Fatalf("AddFenced %d: got %d; want > %d (the fence before)", i+1, f, fences[i-1])
		}
		fences = append(fences, f)
		if ok, err := store.DeleteIfEqual(ctx, fenceLock, []byte("holder")); !ok || err != nil {
			t.Fatalf("release %d: got %v, %v; want true, nil", i+1, ok, err)
		}
	}
	return fences
}

// wantCounter checks whether the counter exists on the server of client.
func wantCounter(t *testing.T, client *redis.Client, want bool, when string) {
	t.Helper()
	n, err := client.Exists(t.Context(), fenceCounter).Result()
	if err != nil {
		t.Fatalf("EXISTS %s %s: %v", fenceCounter, when, err)
	}
	if got := n == 1; got != want {
		t.Fatalf("counter %s exists %s: got %v; want %v", fenceCounter, when, got, want)
	}
}

// wantGreater checks that the fence taken after the loss is greater than
// every fence taken before it.
func wantGreater(t *testing.T, store *redisstore.Store, before []int64, after string) {
	t.Helper()
	f, err := store.AddFenced(t.Context(), fenceLock, []byte("holder"), time.Minute)
	if err != nil {
		t.Fatalf("AddFenced %s: %v", after, err)
	}
	if last := before[len(before)-1]; f <= last {
		t.Errorf("AddFenced %s: got %d; want > %d (fences before: %v)", after, f, last, before)
	}
}

// TestFenceAfterEviction fills a server that evicts any key
// (allkeys-lru) until the fencing counter is gone.
func TestFenceAfterEviction(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t, "--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru")
	client := timeoutClient(t, srv.Addr())
	store := newStore(t, client)
	ctx := t.Context()

	before := takeFences(t, store, 3)
	wantCounter(t, client, true, "after 3 fences")
	filler := strings.Repeat("x", 16<<10)
	evicted := false
	for i := 0; i < 4096 && !evicted; i++ {
		if err := client.Set(ctx, "filler:"+strconv.Itoa(i), filler, 0).Err(); err != nil {
			t.Fatalf("SET filler %d: %v", i, err)
		}
		if i%16 == 15 {
			n, err := client.Exists(ctx, fenceCounter).Result() // EXISTS does not touch the key's LRU clock
			if err != nil {
				t.Fatal(err)
			}
			evicted = n == 0
		}
	}
	if !evicted {
		t.Fatalf("counter %s still there after 64 MiB of writes to a 4 MiB allkeys-lru server", fenceCounter)
	}
	wantGreater(t, store, before, "after the counter was evicted")
}

// TestFenceAfterRestart restarts a server without persistence, which loses
// the counter with everything else.
func TestFenceAfterRestart(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t) // no RDB, no AOF
	before := takeFences(t, newStore(t, timeoutClient(t, srv.Addr())), 3)
	srv.Stop()
	srv.Start()
	client := timeoutClient(t, srv.Addr()) // a fresh pool: the old one holds dead connections
	wantCounter(t, client, false, "after the restart")
	wantGreater(t, newStore(t, client), before, "after a restart without persistence")
}

// TestFenceAfterFailover takes fences on a master whose replica has stopped
// receiving them (its link goes through a proxy turned into a blackhole),
// then promotes the replica, which holds an older counter.
func TestFenceAfterFailover(t *testing.T) {
	t.Parallel()
	// No delay before the replica's first sync (the default waits 5s for more replicas).
	master, replica := testenv.StartRedis(t, "--repl-diskless-sync-delay", "0"), testenv.StartRedis(t)
	link := faultproxy.Start(t, master.Addr())
	mc, rc := timeoutClient(t, master.Addr()), timeoutClient(t, replica.Addr())
	ctx := t.Context()
	host, port, err := net.SplitHostPort(link.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
		t.Fatalf("REPLICAOF: %v", err)
	}
	ms := newStore(t, mc)

	replicated := takeFences(t, ms, 1)
	waitReplicated(t, mc, rc, replicated[0])
	link.SetBlackhole(true) // the replica now lags: it sees nothing more
	lost := takeFences(t, ms, 2)
	// The replica still has the first counter: the later fences are lost.
	if got, err := rc.Get(ctx, fenceCounter).Int64(); err != nil || got != replicated[0] {
		t.Fatalf("replica's counter after the link was cut: got %d, %v; want %d", got, err, replicated[0])
	}
	if err := rc.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatalf("REPLICAOF NO ONE: %v", err)
	}
	wantGreater(t, newStore(t, rc), append(replicated, lost...), "on the promoted replica")
}

// waitReplicated waits until the replica has applied every write the
// master made: the counter and the release both. Waiting for the counter
// alone is not enough: the release that follows it may still be in flight
// when the link is cut, and the promoted replica then holds the lock.
func waitReplicated(t *testing.T, master, replica *redis.Client, want int64) {
	t.Helper()
	n, err := master.Do(t.Context(), "WAIT", 1, 10000).Int64()
	if err != nil || n < 1 {
		t.Fatalf("WAIT 1 10000: got %d replicas, %v; want 1", n, err)
	}
	if got, err := replica.Get(t.Context(), fenceCounter).Int64(); err != nil || got != want {
		t.Fatalf("replica's counter: got %d, %v; want %d", got, err, want)
	}
	if n, err := replica.Exists(t.Context(), fenceLock).Result(); err != nil || n != 0 {
		t.Fatalf("replica's lock key after the release: exists %d, %v; want 0", n, err)
	}
}
