package memcachestore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/typedcache/typedcache/backends/memcachestore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
	"github.com/typedcache/typedcache/internal/testing/teststores"
)

// checkStore returns a store over a client of addrs, which Check knows.
func checkStore(t *testing.T, addrs []string, opts *memcachestore.Options) (*memcachestore.Store, *memcache.Client) {
	t.Helper()
	client := memcache.New(addrs...)
	client.Timeout = 2 * time.Second
	t.Cleanup(func() { _ = client.Close() })
	if opts == nil {
		opts = &memcachestore.Options{}
	}
	opts.Servers = addrs
	return memcachestore.New(client, opts), client
}

// findings returns the settings that the findings in err name, in order,
// as "setting=value", and fails the test if err holds anything but
// findings.
func findings(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	if !errors.Is(err, cache.ErrUnsafeConfig) {
		t.Fatalf("Check = %v; want findings matching ErrUnsafeConfig", err)
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var out []string
	for _, e := range errs {
		var se *cache.SettingError
		if !errors.As(e, &se) {
			t.Fatalf("Check: %v is not a *cache.SettingError", e)
		}
		if se.Risk == "" {
			t.Errorf("finding %s=%s says no risk", se.Setting, se.Value)
		}
		out = append(out, se.Setting+"="+se.Value)
	}
	return out
}

// TestCheckShared checks the shared servers, started with memcached's
// defaults: each evicts.
func TestCheckShared(t *testing.T) {
	addrs := testenv.MemcachedAddrs(t)
	s, _ := checkStore(t, addrs, nil)
	got := findings(t, s.Check(t.Context()))
	want := slices.Repeat([]string{"evictions=on"}, len(addrs))
	if !slices.Equal(got, want) {
		t.Errorf("Check of %d stock servers: got findings %q; want %q", len(addrs), got, want)
	}
}

// TestCheckSettings checks private servers started with the flags that
// change what Check finds.
func TestCheckSettings(t *testing.T) {
	tests := []struct {
		name  string
		flags []string
		opts  *memcachestore.Options
		want  []string
	}{
		{"defaults", nil, nil, []string{"evictions=on"}},
		{"-M", []string{"-M"}, nil, nil},
		{"-I 512k", []string{"-M", "-I", "512k"}, nil, []string{"item_size_max=524288"}},
		{"-I 512k, evicting", []string{"-I", "512k"}, nil, []string{"evictions=on", "item_size_max=524288"}},
		{"-I 512k, option 512k", []string{"-M", "-I", "512k"}, &memcachestore.Options{MaxItemSize: 512 << 10}, nil},
		{"-I 2m", []string{"-M", "-I", "2m"}, nil, nil},
		{"-C", []string{"-M", "-C"}, nil, []string{"cas_enabled=no"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := testenv.StartMemcached(t, tt.flags...)
			s, _ := checkStore(t, []string{srv.Addr()}, tt.opts)
			err := s.Check(t.Context())
			if got := findings(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("Check of memcached %s: got findings %q; want %q", strings.Join(tt.flags, " "), got, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), srv.Addr()) {
				t.Errorf("Check = %v; want the findings to name the server %s", err, srv.Addr())
			}
		})
	}
}

// TestCheckThroughCache: Cache.Check reaches the store's Check.
func TestCheckThroughCache(t *testing.T) {
	srv := testenv.StartMemcached(t, "-I", "512k")
	s, _ := checkStore(t, []string{srv.Addr()}, nil)
	c := cache.New[string, string](s, nil)
	defer c.Close()
	got := findings(t, c.Check(t.Context()))
	if want := []string{"evictions=on", "item_size_max=524288"}; !slices.Equal(got, want) {
		t.Errorf("Cache.Check: got findings %q; want %q", got, want)
	}
}

// TestCheckErrors: a server Check cannot read is an error, not a finding,
// and ends with ctx or the client's Timeout.
func TestCheckErrors(t *testing.T) {
	t.Run("NoServers", func(t *testing.T) {
		client := memcache.New(testenv.MemcachedAddrs(t)...)
		defer client.Close()
		err := memcachestore.New(client, nil).Check(t.Context())
		if !errors.Is(err, cache.ErrUnsupported) || errors.Is(err, cache.ErrUnsafeConfig) {
			t.Errorf("Check without Options.Servers = %v; want ErrUnsupported, no finding", err)
		}
	})
	t.Run("Unreachable", func(t *testing.T) {
		dead := teststores.DeadAddr(t)
		s, _ := checkStore(t, []string{testenv.MemcachedAddrs(t)[0], dead}, nil)
		err := s.Check(t.Context())
		if err == nil || errors.Is(err, cache.ErrUnsafeConfig) || !strings.Contains(err.Error(), dead) {
			t.Errorf("Check with a server down = %v; want its error, naming %s, and no finding", err, dead)
		}
	})
	t.Run("Deadline", func(t *testing.T) {
		u := testenv.StartUnresponsive(t)
		s, _ := checkStore(t, []string{u.Addr()}, nil) // client Timeout 2s
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := s.Check(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
			t.Errorf("Check of a server that never answers, 100ms deadline = %v after %v; want DeadlineExceeded at the deadline", err, time.Since(start))
		}
	})
	t.Run("ClientTimeout", func(t *testing.T) {
		u := testenv.StartUnresponsive(t)
		s, client := checkStore(t, []string{u.Addr()}, nil)
		client.Timeout = 100 * time.Millisecond
		start := time.Now()
		err := s.Check(t.Context())
		var ne interface{ Timeout() bool }
		if !errors.As(err, &ne) || !ne.Timeout() || time.Since(start) > time.Second {
			t.Errorf("Check of a server that never answers, client Timeout 100ms = %v after %v; want a timeout at the client's Timeout", err, time.Since(start))
		}
	})
	t.Run("Canceled", func(t *testing.T) {
		u := testenv.StartUnresponsive(t)
		s, _ := checkStore(t, []string{u.Addr()}, nil)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		err := s.Check(ctx)
		if !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
			t.Errorf("Check cancelled after 100ms = %v after %v; want Canceled", err, time.Since(start))
		}
	})
}
