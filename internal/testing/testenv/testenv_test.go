package testenv

import (
	"bufio"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// rawPing sends cmd to addr and returns the first reply line.
func rawPing(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return "", err
	}
	if _, err := c.Write([]byte(cmd)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

func mustAnswer(t *testing.T, addr, cmd, wantPrefix string) {
	t.Helper()
	got, err := rawPing(addr, cmd)
	if err != nil {
		t.Fatalf("%s: %q: %v", addr, cmd, err)
	}
	if !strings.HasPrefix(got, wantPrefix) {
		t.Fatalf("%s: %q: got %q, want prefix %q", addr, cmd, got, wantPrefix)
	}
}

func mustRefuse(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", addr)
	}
}

func testStopStart(t *testing.T, s *Server, cmd, want string) {
	addr := s.Addr()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("Addr() = %q, want 127.0.0.1:PORT", addr)
	}
	mustAnswer(t, addr, cmd, want)

	// A client connection open across the restart must not keep the port busy.
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	s.Stop()
	mustRefuse(t, addr)
	s.Stop() // no-op

	s.Start()
	if s.Addr() != addr {
		t.Fatalf("Addr() changed across restart: %q -> %q", addr, s.Addr())
	}
	mustAnswer(t, addr, cmd, want)
	s.Start() // no-op
	mustAnswer(t, addr, cmd, want)
}

func TestStartRedis(t *testing.T) {
	testStopStart(t, StartRedis(t), "PING\r\n", "+PONG")
}

func TestStartMemcached(t *testing.T) {
	testStopStart(t, StartMemcached(t), "version\r\n", "VERSION")
}

// TestSharedServers pings the servers named by the environment, as started by
// ./scripts/test.sh.
func TestSharedServers(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		mustAnswer(t, RedisAddr(t), "PING\r\n", "+PONG")
	})
	t.Run("cluster", func(t *testing.T) {
		addrs := RedisClusterAddrs(t)
		for _, a := range addrs {
			mustAnswer(t, a, "PING\r\n", "+PONG")
		}
		c, err := net.DialTimeout("tcp", addrs[0], time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("CLUSTER INFO\r\n")); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		if _, err := r.ReadString('\n'); err != nil { // bulk length
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(line); got != "cluster_state:ok" {
			t.Fatalf("CLUSTER INFO: got %q, want cluster_state:ok", got)
		}
	})
	t.Run("memcached", func(t *testing.T) {
		for _, a := range MemcachedAddrs(t) {
			mustAnswer(t, a, "version\r\n", "VERSION")
		}
	})
}

// fakeTB records whether a helper skipped or failed the test.
type fakeTB struct {
	testing.TB // nil: calling anything not overridden panics
	skipped    bool
	failed     bool
	msg        string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped, f.msg = true, strings.TrimSpace(strings.Join(strs(args), " "))
	runtime.Goexit()
}
func (f *fakeTB) Fatal(args ...any) {
	f.failed, f.msg = true, strings.TrimSpace(strings.Join(strs(args), " "))
	runtime.Goexit()
}

func strs(args []any) []string {
	var out []string
	for _, a := range args {
		if s, ok := a.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// run calls fn with a fakeTB on its own goroutine (Skip/Fatal exit it).
func run(fn func(testing.TB)) *fakeTB {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

func TestMissingEnv(t *testing.T) {
	helpers := map[string]func(testing.TB){
		EnvRedisAddr:         func(tb testing.TB) { RedisAddr(tb) },
		EnvRedisClusterAddrs: func(tb testing.TB) { RedisClusterAddrs(tb) },
		EnvMemcachedAddrs:    func(tb testing.TB) { MemcachedAddrs(tb) },
	}
	for env, fn := range helpers {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, "")

			t.Setenv("CI", "")
			f := run(fn)
			if !f.skipped || f.failed {
				t.Fatalf("without CI: skipped=%v failed=%v, want a skip", f.skipped, f.failed)
			}
			if want := "set " + env + " or run ./scripts/test.sh"; !strings.Contains(f.msg, want) {
				t.Fatalf("message %q does not contain %q", f.msg, want)
			}

			t.Setenv("CI", "true")
			f = run(fn)
			if f.skipped || !f.failed {
				t.Fatalf("with CI=true: skipped=%v failed=%v, want a failure", f.skipped, f.failed)
			}
		})
	}

	t.Run("binary", func(t *testing.T) {
		fn := func(tb testing.TB) { RequireBinary(tb, "typedcache-no-such-binary") }
		t.Setenv("CI", "")
		if f := run(fn); !f.skipped {
			t.Fatalf("without CI: want a skip, got failed=%v", f.failed)
		}
		t.Setenv("CI", "true")
		if f := run(fn); !f.failed {
			t.Fatalf("with CI=true: want a failure, got skipped=%v", f.skipped)
		}
	})
}

func TestEnvParsing(t *testing.T) {
	t.Setenv(EnvRedisAddr, " 127.0.0.1:1 ")
	t.Setenv(EnvRedisClusterAddrs, "127.0.0.1:2, 127.0.0.1:3,,127.0.0.1:4")
	t.Setenv(EnvMemcachedAddrs, "127.0.0.1:5")
	if got := RedisAddr(t); got != "127.0.0.1:1" {
		t.Errorf("RedisAddr = %q", got)
	}
	if got := strings.Join(RedisClusterAddrs(t), " "); got != "127.0.0.1:2 127.0.0.1:3 127.0.0.1:4" {
		t.Errorf("RedisClusterAddrs = %q", got)
	}
	if got := strings.Join(MemcachedAddrs(t), " "); got != "127.0.0.1:5" {
		t.Errorf("MemcachedAddrs = %q", got)
	}
}

func TestStartRedisExtraFlags(t *testing.T) {
	s := StartRedis(t, "--maxmemory", "12345678")
	reply, err := redisDo(s.Addr(), "CONFIG", "GET", "maxmemory")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := reply.([]any); len(got) != 2 || got[1] != "12345678" {
		t.Fatalf("CONFIG GET maxmemory: got %v; want [maxmemory 12345678]", reply)
	}
}

func TestStartRedisCluster(t *testing.T) {
	c := StartRedisCluster(t)
	if len(c.Addrs()) != 3 {
		t.Fatalf("Addrs: got %v; want three nodes", c.Addrs())
	}
	for _, a := range c.Addrs() {
		mustAnswer(t, a, "CLUSTER INFO\r\n", "$")
	}
	if err := c.ready(); err != nil {
		t.Fatal(err)
	}
	// Every node owns slots: a key is answered by its node or redirected.
	reply, err := redisDo(c.Addrs()[0], "CLUSTER", "SLOTS")
	if err != nil {
		t.Fatal(err)
	}
	if ranges, _ := reply.([]any); len(ranges) != 3 {
		t.Fatalf("CLUSTER SLOTS: got %d ranges; want 3 (one per master)", len(ranges))
	}
}

func TestStartRedisSentinel(t *testing.T) {
	s := StartRedisSentinel(t)
	mustAnswer(t, s.Master.Addr(), "PING\r\n", "+PONG")
	reply, err := redisDo(s.Addrs()[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.MasterName())
	if err != nil {
		t.Fatal(err)
	}
	if hp, _ := reply.([]any); len(hp) != 2 || hp[0].(string)+":"+hp[1].(string) != s.Master.Addr() {
		t.Fatalf("SENTINEL GET-MASTER-ADDR-BY-NAME: got %v; want %s", reply, s.Master.Addr())
	}
	// The Sentinel restarts from the configuration it rewrote.
	s.Sentinel.Stop()
	s.Sentinel.Start()
	if err := s.ready(); err != nil {
		// It may take a moment to reach the master again.
		deadline := time.Now().Add(clusterTimeout)
		for err != nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			err = s.ready()
		}
		if err != nil {
			t.Fatalf("after a restart: %v", err)
		}
	}
}

func TestUnresponsive(t *testing.T) {
	u := StartUnresponsive(t)
	c, err := net.DialTimeout("tcp", u.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var buf [1]byte
	if n, err := c.Read(buf[:]); n != 0 || !isTimeout(err) {
		t.Fatalf("Read: got %d bytes, %v; want a timeout", n, err)
	}
	for u.Accepted() != 1 {
		time.Sleep(time.Millisecond) // Accept may lag behind the dial
	}
	// Close ends the connection: a reader sees EOF at once.
	u.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf[:]); err == nil || isTimeout(err) {
		t.Fatalf("Read after Close: got %v; want the connection closed", err)
	}
	u.Close() // no-op
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// A server whose port was taken between picking and binding is started
// again on another port.
func TestStartRetriesTakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	picks := 0
	pick := func() (int, error) {
		picks++
		if picks == 1 {
			return taken.Addr().(*net.TCPAddr).Port, nil // taken: memcached exits
		}
		return freePort()
	}
	s := startServerOn(t, "memcached", RequireBinary(t, "memcached"), pick)
	if picks < 2 || s.Addr() == taken.Addr().String() {
		t.Fatalf("started on %s after %d picks; want another port than the taken %s", s.Addr(), picks, taken.Addr())
	}
	if _, err := s.ping(); err != nil {
		t.Fatalf("the server on the second port does not answer: %v", err)
	}
}
