package redisstore_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// TestScriptFlush checks the EVALSHA to EVAL fallback on a single server:
// see testScriptFlush.
func TestScriptFlush(t *testing.T) {
	testScriptFlush(t, newClient(t, singleClient(testenv.StartRedis(t).Addr())))
}

// TestPrivateCluster runs on a private Cluster what would disturb the shared
// one: Clear("") on every master, and SCRIPT FLUSH.
func TestPrivateCluster(t *testing.T) {
	addrs := testenv.StartRedisCluster(t).Addrs()

	t.Run("ClearAll", func(t *testing.T) {
		client := newClient(t, clusterClient(addrs)).(*redis.ClusterClient)
		store := newStore(t, client)
		ctx := t.Context()
		// Write keys until every master holds some.
		for i := 0; ; i++ {
			if err := store.Set(ctx, "k"+string(rune('a'+i%26))+string(rune('a'+i/26)), []byte("v"), 0); err != nil {
				t.Fatal(err)
			}
			if i >= 20 && mastersHoldKeys(t, client) {
				break
			}
			if i > 600 {
				t.Fatal("600 keys and still a master without keys")
			}
		}
		if _, err := store.AddFenced(ctx, "lock", []byte("t"), 0); err != nil {
			t.Fatal(err)
		}
		if err := store.Clear(ctx, ""); err != nil {
			t.Fatalf(`Clear(""): %v`, err)
		}
		err := client.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			if n, err := node.DBSize(ctx).Result(); err != nil || n != 0 {
				t.Errorf(`master %s after Clear(""): got %d keys, %v; want 0`, node.Options().Addr, n, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ScriptFlush", func(t *testing.T) {
		testScriptFlush(t, newClient(t, clusterClient(addrs)))
	})
}

// mastersHoldKeys reports whether every master of client holds a key.
func mastersHoldKeys(t *testing.T, client *redis.ClusterClient) bool {
	t.Helper()
	all := true
	err := client.ForEachMaster(t.Context(), func(ctx context.Context, node *redis.Client) error {
		n, err := node.DBSize(ctx).Result()
		if n == 0 {
			all = false
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// scriptSHAs returns the SHA1 digests of the store's Lua scripts, by file
// name: what EVALSHA sends.
func scriptSHAs(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("scripts/*.lua")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts/*.lua: %v", err)
	}
	shas := make(map[string]string)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha1.Sum(src)
		shas[filepath.Base(f)] = hex.EncodeToString(sum[:])
	}
	return shas
}

// forEachNode calls f on every server behind client.
func forEachNode(ctx context.Context, client redis.UniversalClient, f func(ctx context.Context, node *redis.Client) error) error {
	switch c := client.(type) {
	case *redis.ClusterClient:
		return c.ForEachShard(ctx, f)
	case *redis.Ring:
		return c.ForEachShard(ctx, f)
	case *redis.Client:
		return f(ctx, c)
	}
	return errors.New("unknown client type")
}

// testScriptFlush runs each scripted operation (CompareAndSwap,
// DeleteIfEqual, ExtendIfEqual, AddFenced, Expire with 0) right after SCRIPT
// FLUSH on every node: each must still work, its EVALSHA answered NOSCRIPT
// and the script sent again with EVAL.
func testScriptFlush(t *testing.T, client redis.UniversalClient) {
	store := newStore(t, client)
	ctx := t.Context()
	shas := scriptSHAs(t)
	flush := func(script string) {
		t.Helper()
		sha := shas[script]
		if sha == "" {
			t.Fatalf("no script %s", script)
		}
		err := forEachNode(ctx, client, func(ctx context.Context, node *redis.Client) error {
			if err := node.ScriptFlush(ctx).Err(); err != nil {
				return err
			}
			if ok, err := node.ScriptExists(ctx, sha).Result(); err != nil || ok[0] {
				t.Fatalf("%s after SCRIPT FLUSH: SCRIPT EXISTS %s: got %v, %v; want false", node.Options().Addr, script, ok, err)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("SCRIPT FLUSH: %v", err)
		}
	}
	const long = time.Hour
	tests := []struct {
		name, script string
		setup        func(k string)
		run          func(k string) error
	}{
		{"CompareAndSwap", "cas.lua", func(k string) {
			mustSet(t, store, k, "old", long)
		}, func(k string) error {
			if err := store.CompareAndSwap(ctx, k, []byte("new"), cache.NewToken([]byte("old")), 0); err != nil {
				return err
			}
			return wantStored(ctx, store, k, "new")
		}},
		{"DeleteIfEqual", "delete_if_equal.lua", func(k string) {
			mustSet(t, store, k, "tok", long)
		}, func(k string) error {
			if ok, err := store.DeleteIfEqual(ctx, k, []byte("tok")); err != nil || !ok {
				return errors.Join(errors.New("did not delete"), err)
			}
			if ok, err := store.Exists(ctx, k); err != nil || ok {
				return errors.Join(errors.New("key still there"), err)
			}
			return nil
		}},
		{"ExtendIfEqual", "extend_if_equal.lua", func(k string) {
			mustSet(t, store, k, "tok", time.Minute)
		}, func(k string) error {
			if ok, err := store.ExtendIfEqual(ctx, k, []byte("tok"), long); err != nil || !ok {
				return errors.Join(errors.New("did not extend"), err)
			}
			if ttl, err := store.TTL(ctx, k); err != nil || ttl <= time.Minute {
				return errors.Join(errors.New("ttl not extended"), err)
			}
			return nil
		}},
		{"AddFenced", "add_fenced.lua", func(string) {}, func(k string) error {
			n, err := store.AddFenced(ctx, k, []byte("tok"), long)
			if err != nil {
				return err
			}
			if n <= 0 {
				return errors.New("fence number is not positive")
			}
			return wantStored(ctx, store, k, "tok")
		}},
		{"Expire0", "persist.lua", func(k string) {
			mustSet(t, store, k, "v", time.Minute)
		}, func(k string) error {
			if ok, err := store.Expire(ctx, k, 0); err != nil || !ok {
				return errors.Join(errors.New("Expire(0) did not find the key"), err)
			}
			if ttl, err := store.TTL(ctx, k); err != nil || ttl != cache.NoExpiration {
				return errors.Join(errors.New("expiry not removed"), err)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := uniquePrefix(t) + tt.name
			t.Cleanup(func() { _ = store.Clear(context.Background(), k) })
			tt.setup(k)
			flush(tt.script)
			if err := tt.run(k); err != nil {
				t.Fatalf("%s after SCRIPT FLUSH: %v", tt.name, err)
			}
		})
	}
}

func mustSet(t *testing.T, s cache.Store, k, v string, ttl time.Duration) {
	t.Helper()
	if err := s.Set(t.Context(), k, []byte(v), ttl); err != nil {
		t.Fatal(err)
	}
}

func wantStored(ctx context.Context, s cache.Store, k, want string) error {
	got, err := s.Get(ctx, k)
	if err != nil {
		return err
	}
	if string(got) != want {
		return errors.New("stored " + string(got) + "; want " + want)
	}
	return nil
}
