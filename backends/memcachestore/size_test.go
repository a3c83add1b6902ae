package memcachestore

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// TestItemSizeLimit checks both edges of the size check against private
// servers started with memcached's default limit and with -I 2m: the
// largest value the store lets through is stored, one byte more is refused
// with ErrTooLarge before it is sent (the old value stays), and the server
// itself accepts at most a few bytes more than the store.
func TestItemSizeLimit(t *testing.T) {
	tests := []struct {
		name  string
		flags []string
		limit int // Options.MaxItemSize; 0 = the default
	}{
		{"default", nil, 0},
		{"-I 2m", []string{"-I", "2m"}, 2 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := testenv.StartMemcached(t, tt.flags...)
			client := memcache.New(srv.Addr())
			client.Timeout = 2 * time.Second
			t.Cleanup(func() { _ = client.Close() })
			s := New(client, &Options{MaxItemSize: tt.limit})
			limit := tt.limit
			if limit == 0 {
				limit = DefaultMaxItemSize
			}
			ctx := t.Context()
			for _, key := range []string{"k", strings.Repeat("k", 250), "a key that is encoded"} {
				mkey := encodeKey(key)
				largest := limit - ItemOverhead - len(mkey)
				big := bytes.Repeat([]byte{'v'}, largest+1)
				for _, ttl := range []time.Duration{0, time.Hour} {
					mustSet(t, s, key, []byte("old"), 0)
					if err := s.Set(ctx, key, big, ttl); !errors.Is(err, cache.ErrTooLarge) {
						t.Fatalf("Set(%d-byte key, %d bytes, ttl %v) = %v; want ErrTooLarge", len(mkey), len(big), ttl, err)
					}
					wantValue(t, s, key, []byte("old"))
					mustSet(t, s, key, big[:largest], ttl)
					wantValue(t, s, key, big[:largest])
				}
				// memcached accepts at most ItemOverhead's slack more: flags
				// 0 take 4 bytes less than a stamp, and this build's flags
				// 4 bytes less than a build with large client flags.
				serverMax := largestStored(t, client, mkey, largest, largest+64)
				if margin := serverMax - largest; margin < 0 || margin > 8 {
					t.Errorf("%d-byte key: memcached stores values up to %d bytes, the store up to %d; want the store at most 8 bytes short", len(mkey), serverMax, largest)
				} else {
					t.Logf("%d-byte key: the store lets values up to %d bytes through, memcached takes %d", len(mkey), largest, serverMax)
				}
			}
		})
	}
}

// largestStored returns the largest value, between lo and hi, that
// memcached stores under mkey with flags 0, by bisection with the raw
// client.
func largestStored(t *testing.T, client *memcache.Client, mkey string, lo, hi int) int {
	t.Helper()
	buf := make([]byte, hi)
	if err := client.Set(&memcache.Item{Key: mkey, Value: buf[:lo]}); err != nil {
		t.Fatalf("raw set of %d bytes: %v; want it stored", lo, err)
	}
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if err := client.Set(&memcache.Item{Key: mkey, Value: buf[:mid]}); err == nil {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// TestTooLargeEveryWrite checks that every write refuses an item over
// Options.MaxItemSize before sending it, leaving the key as it was.
func TestTooLargeEveryWrite(t *testing.T) {
	s, client, k := testStore(t)
	ctx := t.Context()
	big := make([]byte, DefaultMaxItemSize)
	old := []byte("old")

	key := k("set")
	mustSet(t, s, key, old, 0)
	if err := s.Set(ctx, key, big, 0); !errors.Is(err, cache.ErrTooLarge) {
		t.Errorf("Set = %v; want ErrTooLarge", err)
	}
	wantValue(t, s, key, old)

	key = k("add")
	if err := s.Add(ctx, key, big, 0); !errors.Is(err, cache.ErrTooLarge) {
		t.Errorf("Add = %v; want ErrTooLarge", err)
	}
	wantMissing(t, s, key)

	key = k("cas")
	mustSet(t, s, key, old, 0)
	_, tok, err := s.Gets(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CompareAndSwap(ctx, key, big, tok, 0); !errors.Is(err, cache.ErrTooLarge) {
		t.Errorf("CompareAndSwap = %v; want ErrTooLarge", err)
	}
	wantValue(t, s, key, old)
	if err := s.CompareAndSwap(ctx, key, []byte("new"), tok, 0); err != nil {
		t.Errorf("CompareAndSwap after the refused one = %v; want nil (nothing was written)", err)
	}
	key = k("cas-absent")
	if err := s.CompareAndSwap(ctx, key, big, cache.AbsentToken(), 0); !errors.Is(err, cache.ErrTooLarge) {
		t.Errorf("CompareAndSwap(absent token) = %v; want ErrTooLarge", err)
	}
	wantMissing(t, s, key)

	// SetMulti checks every item first and writes none.
	a, b := k("multi-a"), k("multi-b")
	mustSet(t, s, a, old, 0)
	mustSet(t, s, b, old, 0)
	items := []cache.Item{{Key: a, Value: []byte("new")}, {Key: b, Value: big}, {Key: k("multi-c"), Value: []byte("new")}}
	if err := s.SetMulti(ctx, items); !errors.Is(err, cache.ErrTooLarge) || !strings.Contains(err.Error(), b) {
		t.Errorf("SetMulti = %v; want ErrTooLarge naming %q", err, b)
	}
	wantValue(t, s, a, old)
	wantValue(t, s, b, old)
	wantMissing(t, s, k("multi-c"))

	// The rewrites refuse an item that another client stored over the
	// store's limit (this server's is larger than the option).
	small := New(client, &Options{MaxItemSize: 4096})
	key = k("rewrite")
	v := make([]byte, 5000)
	mustSet(t, s, key, v, 0)
	if _, err := small.Expire(ctx, key, time.Hour); !errors.Is(err, cache.ErrTooLarge) {
		t.Errorf("Expire of a value over the limit = %v; want ErrTooLarge", err)
	}
	if _, err := small.ExtendIfEqual(ctx, key, v, time.Hour); !errors.Is(err, cache.ErrTooLarge) {
		t.Errorf("ExtendIfEqual of a value over the limit = %v; want ErrTooLarge", err)
	}
	if ok, err := small.DeleteIfEqual(ctx, key, v); !ok || err != nil {
		t.Errorf("DeleteIfEqual of a value over the limit = %v, %v; want true, nil (it writes an empty item)", ok, err)
	}
}

// TestServerRefusesTooLarge: a store whose MaxItemSize is above the
// server's limit gets memcached's own refusal, as ErrTooLarge. memcached
// drops the old value of a refused set (the reason for the check before
// sending, and for Check's finding) but keeps that of a refused cas or add.
func TestServerRefusesTooLarge(t *testing.T) {
	srv := testenv.StartMemcached(t, "-I", "512k")
	client := memcache.New(srv.Addr())
	client.Timeout = 2 * time.Second
	t.Cleanup(func() { _ = client.Close() })
	s := New(client, nil) // MaxItemSize 1 MiB, over the server's 512 KiB
	ctx := t.Context()
	big := make([]byte, 600<<10)
	old := []byte("old")

	mustSet(t, s, "cas", old, 0)
	_, tok, err := s.Gets(ctx, "cas")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CompareAndSwap(ctx, "cas", big, tok, 0); !errors.Is(err, cache.ErrTooLarge) {
		t.Errorf("CompareAndSwap over the server's limit = %v; want ErrTooLarge", err)
	}
	wantValue(t, s, "cas", old)

	mustSet(t, s, "add", old, 0)
	if err := s.Add(ctx, "add", big, 0); !errors.Is(err, cache.ErrTooLarge) {
		t.Errorf("Add over the server's limit = %v; want ErrTooLarge", err)
	}
	wantValue(t, s, "add", old)

	mustSet(t, s, "set", old, 0)
	if err := s.Set(ctx, "set", big, 0); !errors.Is(err, cache.ErrTooLarge) {
		t.Errorf("Set over the server's limit = %v; want ErrTooLarge", err)
	}
	wantMissing(t, s, "set") // memcached unlinked the old value

	if err := s.SetMulti(ctx, []cache.Item{{Key: "m1", Value: big}, {Key: "m2", Value: old}}); !errors.Is(err, cache.ErrTooLarge) {
		t.Errorf("SetMulti over the server's limit = %v; want ErrTooLarge", err)
	}
}
