package redisstore

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/internal/testenv"
)

// bound is how long a wake-up may take before the test fails: generous, to
// tell a hang from a slow machine.
const bound = 10 * time.Second

func newTestStore(t *testing.T, addr string, protocol int) *Store {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: protocol})
	t.Cleanup(func() { _ = c.Close() })
	s := New(c, nil)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func wantWake(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(bound):
		t.Fatalf("%s: no wake-up within %v", what, bound)
	}
}

func release(t *testing.T, s *Store, key string) {
	t.Helper()
	ctx := t.Context()
	if err := s.Set(ctx, key, []byte("tok"), 0); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.DeleteIfEqual(ctx, key, []byte("tok")); err != nil || !ok {
		t.Fatalf("DeleteIfEqual(%q): got %v, %v; want true", key, ok, err)
	}
}

// TestWatchProtocols checks Watch with both RESP versions, whose PING
// replies differ in subscribed mode, on a real server and on miniredis.
func TestWatchProtocols(t *testing.T) {
	servers := map[string]func(t *testing.T) string{
		"redis":     func(t *testing.T) string { return testenv.StartRedis(t).Addr() },
		"miniredis": func(t *testing.T) string { return miniredis.RunT(t).Addr() },
	}
	for name, start := range servers {
		for _, protocol := range []int{2, 3} {
			t.Run(name+"/RESP"+string(rune('0'+protocol)), func(t *testing.T) {
				addr := start(t)
				watcher, releaser := newTestStore(t, addr, protocol), newTestStore(t, addr, protocol)
				ch, stop, err := watcher.Watch(t.Context(), "k")
				if err != nil {
					t.Fatalf("Watch: %v", err)
				}
				defer stop()
				release(t, releaser, "k")
				wantWake(t, ch, "release")
			})
		}
	}
}

// TestWatchHealthCheck makes the subscriber's connection silent (the proxy
// stops passing the server's replies, as a dead network would): after two
// silent intervals the subscriber replaces the connection, wakes its
// watchers, and releases reach them again.
func TestWatchHealthCheck(t *testing.T) {
	srv := testenv.StartRedis(t)
	p := startProxy(t, srv.Addr())
	store := newTestStore(t, p.addr(), 0)
	store.notify.health = 100 * time.Millisecond
	releaser := newTestStore(t, srv.Addr(), 0)
	ctx := t.Context()

	ch, stop, err := store.Watch(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// Healthy: several intervals pass with pings answered, and a release
	// still arrives.
	time.Sleep(500 * time.Millisecond)
	release(t, releaser, "k")
	wantWake(t, ch, "release over a healthy connection")

	p.freeze()
	wantWake(t, ch, "replacement of a silent connection")
	if p.conns() < 2 {
		t.Errorf("proxy saw %d connections; want a new one after the replacement", p.conns())
	}
	// A Watch on the new connection returns once it is confirmed, and the
	// resubscription of "k" was sent before it.
	_, stop2, err := store.Watch(ctx, "k2")
	if err != nil {
		t.Fatalf("Watch after the replacement: %v", err)
	}
	defer stop2()
	select { // drop extra wake-ups of the replacement
	case <-ch:
	default:
	}
	release(t, releaser, "k")
	wantWake(t, ch, "release after the replacement")
}

// proxy is a TCP proxy to a server that can freeze its connections: a
// frozen connection still passes what the client sends, but drops what the
// server answers.
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	pairs []*proxyPair
	n     int
}

type proxyPair struct {
	client, server net.Conn
	frozen         atomic.Bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		pair := &proxyPair{client: c, server: s}
		p.mu.Lock()
		p.pairs = append(p.pairs, pair)
		p.n++
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(s, c)
			s.Close()
		}()
		go func() {
			defer p.wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 && !pair.frozen.Load() {
					if _, werr := c.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			c.Close()
		}()
	}
}

// freeze freezes the connections open now.
func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pair := range p.pairs {
		pair.frozen.Store(true)
	}
}

func (p *proxy) conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, pair := range p.pairs {
		pair.client.Close()
		pair.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
