package memcachestore

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// A call that runs on in the background after its context ended never
// reads the caller's slice again: the caller may reuse it at once.
func TestBackgroundCallOwnsItsValue(t *testing.T) {
	s := slowDialStore(t, 150*time.Millisecond)

	buf := []byte("original")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Set(ctx, "k", buf, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Set past its deadline: %v; want DeadlineExceeded", err)
	}
	copy(buf, "EVIL!!!!") // the caller reuses its buffer
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := s.Get(context.Background(), "k")
		if err == nil {
			if string(v) != "original" {
				t.Fatalf("stored %q; want the value as it was when Set was called", v)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background Set never landed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// slowDialStore returns a store over a private memcached whose client takes
// delay to dial, so that a call with a short deadline outlives its context
// and finishes in the background.
func slowDialStore(t *testing.T, delay time.Duration) *Store {
	t.Helper()
	srv := testenv.StartMemcached(t)
	client := memcache.New(srv.Addr())
	client.Timeout = 2 * time.Second
	client.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		time.Sleep(delay)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	s := New(client, nil)
	t.Cleanup(func() { s.Close(); client.Close() })
	return s
}

// On memcached without CAS (-C), the compare-and-swap operations say so
// instead of spinning.
func TestCASDisabled(t *testing.T) {
	srv := testenv.StartMemcached(t, "-C")
	client := memcache.New(srv.Addr())
	s := New(client, nil)
	t.Cleanup(func() { s.Close(); client.Close() })
	ctx := context.Background()
	if err := s.Set(ctx, "k", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{}
	_, checks["Increment"] = s.Increment(ctx, "k", 1)
	_, checks["DeleteIfEqual"] = s.DeleteIfEqual(ctx, "k", []byte("1"))
	_, checks["ExtendIfEqual"] = s.ExtendIfEqual(ctx, "k", []byte("1"), time.Minute)
	_, checks["Expire"] = s.Expire(ctx, "k", time.Minute)
	_, _, checks["Gets"] = s.Gets(ctx, "k")
	for name, err := range checks {
		if !errors.Is(err, cache.ErrUnsupported) {
			t.Errorf("%s without CAS: %v; want ErrUnsupported", name, err)
		}
	}
	// Plain reads need no CAS unique and work as usual.
	if v, err := s.Get(ctx, "k"); err != nil || string(v) != "1" {
		t.Errorf("Get without CAS = %q, %v; want 1, nil", v, err)
	}
	if ok, err := s.Exists(ctx, "k"); err != nil || !ok {
		t.Errorf("Exists without CAS = %v, %v; want true, nil", ok, err)
	}
	if vs, err := s.GetMulti(ctx, []string{"k", "none"}); err != nil || string(vs[0]) != "1" || vs[1] != nil {
		t.Errorf("GetMulti without CAS = %q, %v; want [1 <nil>], nil", vs, err)
	}
}

// A GetMulti that runs in the background (its context has a deadline)
// does not read the caller's keys after it returns: the caller may reuse
// them at once. The race detector is what fails this test.
func TestBackgroundGetMultiOwnsItsKeys(t *testing.T) {
	s := slowDialStore(t, 100*time.Millisecond)

	keys := []string{"a", "b", "c"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := s.GetMulti(ctx, keys); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetMulti past its deadline: %v; want DeadlineExceeded", err)
	}
	for i := range keys {
		keys[i] = "reused" // the caller reuses its slice
	}
	// Let the background call finish before goleak looks.
	time.Sleep(300 * time.Millisecond)
}

// Flags written by another client are neither read as an expiry stamp nor
// overwritten.
func TestForeignFlags(t *testing.T) {
	s, client, key := testStore(t)
	ctx := context.Background()
	k := key("foreign")
	for _, flags := range []uint32{1 << 31, 0xA0000001, 7} {
		if err := client.Set(&memcache.Item{Key: k, Value: []byte("5"), Flags: flags}); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Increment(ctx, k, 1); err != nil || n != 6 {
			t.Fatalf("Increment = %d, %v", n, err)
		}
		if ok, err := s.Expire(ctx, k, time.Hour); !ok || err != nil {
			t.Fatalf("Expire = %v, %v", ok, err)
		}
		it, err := client.Get(k)
		if err != nil {
			t.Fatalf("flags %#x: the key is gone after Increment and Expire: %v", flags, err)
		}
		if it.Flags != flags {
			t.Fatalf("flags %#x became %#x", flags, it.Flags)
		}
	}
}

// GetMulti of a repeated key returns slices that do not share memory.
func TestGetMultiRepeatedKey(t *testing.T) {
	s, _, key := testStore(t)
	ctx := context.Background()
	k := key("dup")
	s.Set(ctx, k, []byte("abc"), 0)
	vals, err := s.GetMulti(ctx, []string{k, k})
	if err != nil {
		t.Fatal(err)
	}
	vals[0][0] = 'X'
	if !bytes.Equal(vals[1], []byte("abc")) {
		t.Fatalf("second slice changed to %q with the first", vals[1])
	}
}

// SetMulti with two items for one key stores the last.
func TestSetMultiRepeatedKey(t *testing.T) {
	s, _, key := testStore(t)
	ctx := context.Background()
	k := key("dupset")
	for range 5 {
		items := []cache.Item{{Key: k, Value: []byte("first")}, {Key: key("other"), Value: []byte("o")}, {Key: k, Value: []byte("last")}}
		if err := s.SetMulti(ctx, items); err != nil {
			t.Fatal(err)
		}
		if v, _ := s.Get(ctx, k); string(v) != "last" {
			t.Fatalf("SetMulti stored %q; want the last item's value", v)
		}
	}
}

// Another client's flags never read as an expiry stamp: a rewrite keeps
// them and sets no expiry, instead of expiring the key at a date decoded
// from them.
func TestKeptExpiryForeignFlags(t *testing.T) {
	now := time.Now()
	for _, flags := range []uint32{1 << 31, 0xA0000001, 0xBFFFFFFF & 0xA0000000, 7} {
		if exp, f, gone := keptExpiry(flags, now); exp != 0 || f != flags || gone {
			t.Errorf("keptExpiry(%#x) = %d, %#x, %v; want 0, the flags unchanged, false", flags, exp, f, gone)
		}
	}
	_, own := expiry(time.Hour, now)
	if !isStamp(own, now) {
		t.Fatalf("the store's own stamp %#x is not recognised", own)
	}
	if exp, f, _ := keptExpiry(own, now); exp < 3590 || exp > 3602 || f != own {
		t.Fatalf("keptExpiry(own stamp) = %d, %#x; want about 3600 s, the stamp", exp, f)
	}
}
