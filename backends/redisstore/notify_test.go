package redisstore

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// bound is how long a wake-up may take before the test fails: generous, to
// tell a hang from a slow machine.
const bound = 10 * time.Second

func newTestStore(t *testing.T, addr string, protocol int) *Store {
	t.Helper()
	return newTestStoreOpts(t, addr, protocol, nil)
}

func newTestStoreOpts(t *testing.T, addr string, protocol int, opts *Options) *Store {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: protocol})
	t.Cleanup(func() { _ = c.Close() })
	s := New(c, opts)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// classic returns the store's classic subscriber (not on a Ring).
func (s *Store) classic() *subscriber {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.hub.subs[hubKey{slot: -1}]
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

// TestWatchProtocols checks Watch and the Bus with both RESP versions,
// whose PING replies and pushed messages differ, on a real server and on
// miniredis.
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

				msgs := make(chan string, 1)
				stopBus, err := watcher.Subscribe(t.Context(), "bus", func(m []byte) { msgs <- string(m) }, nil)
				if err != nil {
					t.Fatalf("Subscribe: %v", err)
				}
				defer stopBus()
				if err := releaser.Publish(t.Context(), "bus", []byte("m\r\n\x00")); err != nil {
					t.Fatalf("Publish: %v", err)
				}
				select {
				case m := <-msgs:
					if m != "m\r\n\x00" {
						t.Errorf("got the message %q; want %q", m, "m\r\n\x00")
					}
				case <-time.After(bound):
					t.Fatalf("no message within %v", bound)
				}
			})
		}
	}
}

// TestWatchHealthCheck makes the subscriber's connection silent (the proxy
// stops passing the server's replies, as a dead network would): after two
// silent intervals go-redis replaces the connection (the health check's
// read deadline ends), the watchers are woken, and releases reach them
// again.
func TestWatchHealthCheck(t *testing.T) {
	srv := testenv.StartRedis(t)
	p := startProxy(t, srv.Addr())
	store := newTestStoreOpts(t, p.addr(), 0, &Options{HealthCheckInterval: 100 * time.Millisecond})
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
	wantWake(t, ch, "the failure of a silent connection")
	for deadline := time.Now().Add(bound); p.conns() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("proxy saw %d connections %v after the failure; want a new one", p.conns(), bound)
		}
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

// TestStopDuringSlowUnsubscribe stops a watch while the UNSUBSCRIBE of
// another watch's stop is stuck dialing (the server hangs on the new
// connection's handshake): the other stop, and dispatch, do not wait for it.
func TestStopDuringSlowUnsubscribe(t *testing.T) {
	srv := testenv.StartRedis(t)
	hole := testenv.StartUnresponsive(t)
	var toHole atomic.Bool
	client := redis.NewClient(&redis.Options{
		Addr: srv.Addr(),
		// Once toHole is set, new connections go to a server that never
		// answers: their handshake hangs until hole is closed (the read
		// timeout is longer than the test's bound).
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if toHole.Load() {
				addr = hole.Addr()
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		ReadTimeout: 3 * bound,
	})
	t.Cleanup(func() { _ = client.Close() })
	store := New(client, nil)
	t.Cleanup(func() { _ = store.Close() })
	releaser := newTestStore(t, srv.Addr(), 0)
	ctx := t.Context()

	_, stopA, err := store.Watch(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	chB1, stopB1, err := store.Watch(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	chB2, stopB2, err := store.Watch(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	defer stopB2()

	// Break the pub/sub connection: its reconnection hangs in the hole.
	toHole.Store(true)
	if n, err := releaser.client.ClientKillByFilter(ctx, "TYPE", "pubsub").Result(); err != nil || n != 1 {
		t.Fatalf("CLIENT KILL TYPE pubsub: got %d, %v; want 1", n, err)
	}
	for hole.Accepted() == 0 {
		time.Sleep(5 * time.Millisecond)
	}

	// The last watch of "a" stops: its UNSUBSCRIBE waits for the stuck
	// connection.
	aDone := make(chan struct{})
	go func() {
		defer close(aDone)
		stopA()
	}()
	time.Sleep(200 * time.Millisecond) // let stopA reach its UNSUBSCRIBE
	// A watch of "b" stops (not the last: no command to send) and a release
	// is dispatched meanwhile: neither waits for the UNSUBSCRIBE.
	b1Done := make(chan struct{})
	go func() {
		defer close(b1Done)
		stopB1()
		store.classic().dispatch(&redis.Message{Channel: store.Channel("b")})
	}()
	select {
	case <-b1Done:
	case <-aDone:
		t.Errorf("the stop of a watch of \"b\" waited for the UNSUBSCRIBE of \"a\"")
	case <-time.After(bound):
		t.Errorf("the stop of a watch of \"b\" did not return within %v while the UNSUBSCRIBE of \"a\" was stuck", bound)
	}
	select {
	case <-aDone:
		t.Fatal("the UNSUBSCRIBE of \"a\" returned while the server hung; the test proves nothing")
	default:
	}
	wantWake(t, chB2, "dispatch while an UNSUBSCRIBE is stuck")

	// The server answers again: everything completes, "b" is still
	// watched and "a" is not.
	toHole.Store(false)
	hole.Close()
	<-aDone
	<-b1Done
	select {
	case <-chB1:
	default:
	}
	wantNumSub(t, releaser, store.Channel("a"), 0)
	wantNumSub(t, releaser, store.Channel("b"), 1)
	_, stopC, err := store.Watch(ctx, "c") // a barrier: the reconnection's wake-ups are in
	if err != nil {
		t.Fatal(err)
	}
	defer stopC()
	select {
	case <-chB2:
	default:
	}
	release(t, releaser, "b")
	wantWake(t, chB2, "release after the recovery")
}

// TestWatchStopConcurrent starts and stops watches of a few keys from many
// goroutines at once: the subscriptions end matching the watches, and a
// channel is never left unsubscribed under an active watch.
func TestWatchStopConcurrent(t *testing.T) {
	srv := testenv.StartRedis(t)
	store := newTestStore(t, srv.Addr(), 0)
	releaser := newTestStore(t, srv.Addr(), 0)
	ctx := t.Context()
	keys := []string{"k0", "k1", "k2"}

	// Each goroutine runs at least rounds watches, and more while no
	// overlap has happened yet (stops that send nothing are quick), up to
	// a time bound.
	const goroutines, rounds = 8, 40
	deadline := time.Now().Add(bound / 2)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		held  = make(map[string][]<-chan struct{}) // the last watch of each goroutine
		stops []func()
		// overlaps counts the times a Watch started while another stop of
		// its key was running: the race this test is about.
		overlaps atomic.Int64
		stopping [3]atomic.Int64
	)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; ; r++ {
				i := (g + r) % len(keys)
				if stopping[i].Load() > 0 {
					overlaps.Add(1)
				}
				ch, stop, err := store.Watch(ctx, keys[i])
				if err != nil {
					t.Errorf("Watch(%q): %v", keys[i], err)
					return
				}
				if r >= rounds-1 && (overlaps.Load() > 0 || time.Now().After(deadline)) {
					mu.Lock()
					held[keys[i]] = append(held[keys[i]], ch)
					stops = append(stops, stop)
					mu.Unlock()
					return
				}
				stopping[i].Add(1)
				stop()
				stopping[i].Add(-1)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if overlaps.Load() == 0 {
		t.Fatal("no Watch ran during a stop of the same key: the test proves nothing")
	}
	t.Logf("%d watches started during a stop of their key", overlaps.Load())
	for _, k := range keys {
		want := int64(0)
		if len(held[k]) > 0 {
			want = 1
		}
		wantNumSub(t, releaser, store.Channel(k), want)
		if len(held[k]) == 0 {
			continue
		}
		release(t, releaser, k)
		for _, ch := range held[k] {
			wantWake(t, ch, "release of "+k)
		}
	}
	for _, stop := range stops {
		stop()
	}
	for _, k := range keys {
		wantNumSub(t, releaser, store.Channel(k), 0)
	}
}

// wantNumSub waits until PUBSUB NUMSUB reports want subscribers of ch (an
// UNSUBSCRIBE is not acknowledged: the server may see it a moment after
// the stop that sent it), and fails the test if it does not within bound.
func wantNumSub(t *testing.T, s *Store, ch string, want int64) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		n, err := s.client.PubSubNumSub(t.Context(), ch).Result()
		if err == nil && n[ch] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("PUBSUB NUMSUB %s: got %v, %v; want %d within %v", ch, n, err, want, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
