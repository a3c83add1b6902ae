package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// echo starts a line echo server that counts the lines it answered.
func echo(t *testing.T) (addr string, lines chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	lines = make(chan string, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					lines <- l
					if _, err := c.Write([]byte(l)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), lines
}

func roundTrip(c net.Conn, line string) (string, error) {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(line)); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestForward(t *testing.T) {
	addr, _ := echo(t)
	p := Start(t, addr)
	c := dial(t, p)
	got, err := roundTrip(c, "hello\n")
	if err != nil || got != "hello\n" {
		t.Fatalf("got %q, %v; want hello", got, err)
	}
}

func TestDropNextReply(t *testing.T) {
	addr, lines := echo(t)
	p := Start(t, addr)
	c := dial(t, p)
	p.DropNextReplies(1, Contains("SET"))
	if got, err := roundTrip(c, "GET\n"); err != nil || got != "GET\n" {
		t.Fatalf("GET: got %q, %v", got, err)
	}
	<-lines
	_, err := roundTrip(c, "SET x\n")
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
		t.Fatalf("SET: got error %v; want a reset", err)
	}
	// The server applied the request before its reply was dropped.
	select {
	case l := <-lines:
		if l != "SET x\n" {
			t.Fatalf("server saw %q", l)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the server never saw the request whose reply was dropped")
	}
	if s := p.Stats(); s.Dropped != 1 || s.Resets != 1 {
		t.Fatalf("stats %+v; want 1 drop, 1 reset", s)
	}
	// New connections work.
	if got, err := roundTrip(dial(t, p), "SET y\n"); err != nil || got != "SET y\n" {
		t.Fatalf("after the drop: got %q, %v", got, err)
	}
}

func TestBlackhole(t *testing.T) {
	addr, lines := echo(t)
	p := Start(t, addr)
	p.SetBlackhole(true)
	c := dial(t, p)
	c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	c.Write([]byte("lost\n"))
	buf := make([]byte, 10)
	if _, err := c.Read(buf); err == nil {
		t.Fatal("a blackholed connection answered")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("got %v; want a timeout", err)
	}
	select {
	case l := <-lines:
		t.Fatalf("the server saw %q through the blackhole", l)
	default:
	}
	p.SetBlackhole(false)
	if got, err := roundTrip(dial(t, p), "back\n"); err != nil || got != "back\n" {
		t.Fatalf("after the blackhole: got %q, %v", got, err)
	}
}

func TestReset(t *testing.T) {
	addr, _ := echo(t)
	p := Start(t, addr)
	c := dial(t, p)
	if _, err := roundTrip(c, "a\n"); err != nil {
		t.Fatal(err)
	}
	p.Reset()
	_, err := roundTrip(c, "b\n")
	if err == nil {
		t.Fatal("a reset connection still answered")
	}
}

func TestLatency(t *testing.T) {
	addr, _ := echo(t)
	p := Start(t, addr)
	p.SetLatency(50 * time.Millisecond)
	c := dial(t, p)
	start := time.Now()
	if _, err := roundTrip(c, "slow\n"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("round trip took %v; want at least 2×50ms", d)
	}
}
