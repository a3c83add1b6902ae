package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Unresponsive is a TCP server on a loopback port that accepts every
// connection, reads whatever the client sends, and never answers: a server
// that hangs. A client's calls to it end only by their own deadlines.
type Unresponsive struct {
	ln net.Listener
	wg sync.WaitGroup

	mu       sync.Mutex
	conns    []net.Conn
	accepted int
	closed   bool
}

// StartUnresponsive starts an Unresponsive server on a free 127.0.0.1 port.
// It is closed when the test ends.
func StartUnresponsive(t testing.TB) *Unresponsive {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: listening on a loopback port: %v", err)
	}
	u := &Unresponsive{ln: ln}
	u.wg.Add(1)
	go u.accept()
	t.Cleanup(u.Close)
	return u
}

// Addr returns the server's address, "127.0.0.1:PORT".
func (u *Unresponsive) Addr() string { return u.ln.Addr().String() }

// Accepted returns how many connections the server has accepted.
func (u *Unresponsive) Accepted() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.accepted
}

// Close stops accepting and closes every accepted connection, so that
// clients waiting for an answer see the connection end. It may be called
// more than once.
func (u *Unresponsive) Close() {
	u.mu.Lock()
	u.closed = true
	conns := u.conns
	u.conns = nil
	u.mu.Unlock()
	u.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	u.wg.Wait()
}

func (u *Unresponsive) accept() {
	defer u.wg.Done()
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		if u.closed {
			u.mu.Unlock()
			c.Close()
			return
		}
		u.conns = append(u.conns, c)
		u.accepted++
		u.wg.Add(1)
		u.mu.Unlock()
		go func() {
			defer u.wg.Done()
			_, _ = io.Copy(io.Discard, c) // until the client or Close ends it
		}()
	}
}
