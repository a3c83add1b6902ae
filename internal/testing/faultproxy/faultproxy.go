// Package faultproxy is a TCP proxy for the project's fault-injection tests:
// put it between a client and a real server (Redis, memcached) and make
// the network misbehave on command — latency, a blackhole that accepts and
// never answers, connection resets, and replies dropped after the server
// applied the command (the case a retrying client turns into a double
// write).
//
//	p := faultproxy.Start(t, testenv.RedisAddr(t))
//	rdb := redis.NewClient(&redis.Options{Addr: p.Addr()})
//	p.DropReplies(0.1, faultproxy.Contains("EVALSHA"))
//
// It knows nothing of the protocols: it forwards byte chunks as they are
// read. A "reply" is the next chunk the server sends on a connection after a
// chunk from the client that matched; clients that wait for each reply
// before the next request (go-redis outside pipelines, gomemcache) see one
// reply per chunk.
package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards the connections it accepts to one upstream address,
// injecting the faults it is told to. Its methods are safe for concurrent
// use.
type Proxy struct {
	ln       net.Listener
	upstream string

	latency   atomic.Int64 // time.Duration added before each forwarded chunk
	blackhole atomic.Bool

	dropMu    sync.Mutex
	dropRate  float64
	dropMatch func(request []byte) bool
	dropNext  int // replies still to drop whatever the rate

	mu     sync.Mutex
	closed bool
	pairs  map[*pair]struct{}
	wg     sync.WaitGroup

	accepted, dropped, resets atomic.Int64
}

// Stats counts what the proxy did.
type Stats struct {
	Accepted int64 // client connections accepted
	Dropped  int64 // replies dropped (each followed by a reset)
	Resets   int64 // client connections reset (by Reset, drops and the blackhole's end)
}

// Start starts a proxy to upstream on a free loopback port and closes it
// when the test ends.
func Start(t testing.TB, upstream string) *Proxy {
	t.Helper()
	p, err := New(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// New starts a proxy to upstream on a free loopback port. Close stops it.
func New(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, upstream: upstream, pairs: make(map[*pair]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the address clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{Accepted: p.accepted.Load(), Dropped: p.dropped.Load(), Resets: p.resets.Load()}
}

// SetLatency delays every chunk, in both directions, by d (0: none).
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// SetBlackhole turns the blackhole on or off. While it is on, the proxy
// accepts connections and reads what clients send, but forwards nothing in
// either direction: a server that accepts and never answers. Turning it
// off resets the connections that lost bytes to it (their streams are out
// of step); connections made afterwards work again.
func (p *Proxy) SetBlackhole(on bool) {
	if p.blackhole.Swap(on) && !on {
		p.each(func(c *pair) {
			if c.holed.Load() {
				p.reset(c)
			}
		})
	}
}

// Reset resets every open connection now: the client sees a connection
// reset (RST), and the upstream connection is closed.
func (p *Proxy) Reset() { p.each(p.reset) }

// DropReplies drops replies at random from now on: after each chunk a
// client sends that match accepts (nil matches every chunk), the next
// chunk the server sends on that connection is dropped with probability
// rate, and the connection is reset. The server has applied the command by
// then: only its reply is lost. A rate of 0 stops dropping.
func (p *Proxy) DropReplies(rate float64, match func(request []byte) bool) {
	p.dropMu.Lock()
	defer p.dropMu.Unlock()
	p.dropRate, p.dropMatch = rate, match
}

// DropNextReplies drops the replies to the next n requests that match
// accepts (nil matches every chunk), as DropReplies does, whatever the rate.
func (p *Proxy) DropNextReplies(n int, match func(request []byte) bool) {
	p.dropMu.Lock()
	defer p.dropMu.Unlock()
	p.dropNext, p.dropMatch = n, match
}

// Contains returns a request matcher for DropReplies that accepts chunks
// containing any of the words (as bytes, case-sensitive): "EVALSHA",
// "SET", "cas ".
func Contains(words ...string) func([]byte) bool {
	bs := make([][]byte, len(words))
	for i, w := range words {
		bs[i] = []byte(w)
	}
	return func(req []byte) bool {
		for _, b := range bs {
			if bytes.Contains(req, b) {
				return true
			}
		}
		return false
	}
}

// shouldDrop reports whether the reply to req is to be dropped.
func (p *Proxy) shouldDrop(req []byte) bool {
	p.dropMu.Lock()
	defer p.dropMu.Unlock()
	if p.dropNext == 0 && p.dropRate <= 0 {
		return false
	}
	if p.dropMatch != nil && !p.dropMatch(req) {
		return false
	}
	if p.dropNext > 0 {
		p.dropNext--
		return true
	}
	return rand.Float64() < p.dropRate
}

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.each(func(c *pair) { c.close() })
	p.wg.Wait()
	return err
}

// pair is one proxied connection: the client's and the upstream one.
type pair struct {
	client *net.TCPConn
	holed  atomic.Bool
	drop   atomic.Bool // drop the next reply

	mu       sync.Mutex
	closed   bool
	upstream net.Conn // nil until dialled (never, for a blackholed one)
}

func (c *pair) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.client.Close()
	if c.upstream != nil {
		c.upstream.Close()
	}
}

// setUpstream records up, or closes it and reports false if the pair was
// closed meanwhile.
func (c *pair) setUpstream(up net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		up.Close()
		return false
	}
	c.upstream = up
	return true
}

func (p *Proxy) each(f func(*pair)) {
	p.mu.Lock()
	pairs := make([]*pair, 0, len(p.pairs))
	for c := range p.pairs {
		pairs = append(pairs, c)
	}
	p.mu.Unlock()
	for _, c := range pairs {
		f(c)
	}
}

// reset closes the client connection with an RST and the upstream one.
func (p *Proxy) reset(c *pair) {
	c.client.SetLinger(0) // Close sends RST
	p.resets.Add(1)
	c.close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		c := &pair{client: conn.(*net.TCPConn)}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			conn.Close()
			return
		}
		p.pairs[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(c)
	}
}

func (p *Proxy) serve(c *pair) {
	defer p.wg.Done()
	defer func() {
		c.close()
		p.mu.Lock()
		delete(p.pairs, c)
		p.mu.Unlock()
	}()
	if p.blackhole.Load() {
		c.holed.Store(true)
		io.Copy(io.Discard, c.client) // until the client or a reset ends it
		return
	}
	up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
	if err != nil {
		p.reset(c)
		return
	}
	if !c.setUpstream(up) {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.forward(c, up, c.client, false)
		c.close()
	}()
	p.forward(c, c.client, up, true)
	c.close()
	<-done
}

// forward copies chunks from src to dst, applying the faults. toServer is
// the direction client to server.
func (p *Proxy) forward(c *pair, src, dst net.Conn, toServer bool) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if d := time.Duration(p.latency.Load()); d > 0 {
				time.Sleep(d)
			}
			if p.blackhole.Load() {
				c.holed.Store(true)
				continue
			}
			if toServer {
				if p.shouldDrop(chunk) {
					c.drop.Store(true)
				}
			} else if c.drop.Swap(false) {
				p.dropped.Add(1)
				p.reset(c)
				return
			}
			if _, werr := dst.Write(chunk); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			// Half-close: pass the EOF on.
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}
