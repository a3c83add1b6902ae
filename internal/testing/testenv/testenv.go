// Package testenv is an internal helper for the project's tests: it locates
// the Redis, Redis Cluster and memcached servers the integration tests run
// against, and starts private servers for fault-injection tests.
//
// The shared servers are described by environment variables, which
// ./scripts/test.sh sets after starting throw-away servers (or which you set
// yourself to use your own servers):
//
//	REDIS_ADDR=127.0.0.1:6379
//	REDIS_CLUSTER_ADDRS=127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002
//	MEMCACHED_ADDRS=127.0.0.1:11211,127.0.0.1:11212
//
// When a variable is unset, the tests needing it are skipped, except under
// CI=true, where they fail: tests must never silently skip in CI.
//
// StartRedis and StartMemcached launch a private redis-server / memcached on
// a free loopback port, which a test may stop and restart (on the same port)
// to simulate outages. StartRedisCluster launches a private 3-master Redis
// Cluster, StartRedisSentinel a private master watched by one Sentinel, and
// StartUnresponsive a server that accepts connections and never answers.
package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables read by this package.
const (
	EnvRedisAddr         = "REDIS_ADDR"
	EnvRedisClusterAddrs = "REDIS_CLUSTER_ADDRS"
	EnvMemcachedAddrs    = "MEMCACHED_ADDRS"
)

// InCI reports whether the tests run in CI (CI=true), where missing servers or
// binaries are test failures rather than skips.
func InCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// skipOrFatal skips the test, or fails it under CI=true.
func skipOrFatal(t testing.TB, msg string) {
	t.Helper()
	if InCI() {
		t.Fatal(msg + " (CI=true: not skipping)")
	}
	t.Skip(msg)
}

// RedisAddr returns the address of the shared standalone Redis server
// (REDIS_ADDR). It skips the test when the variable is unset (fails it under
// CI=true).
func RedisAddr(t testing.TB) string {
	t.Helper()
	addr := strings.TrimSpace(os.Getenv(EnvRedisAddr))
	if addr == "" {
		skipOrFatal(t, EnvRedisAddr+" is not set: set "+EnvRedisAddr+" or run ./scripts/test.sh")
	}
	return addr
}

// RedisClusterAddrs returns the seed addresses of the shared Redis Cluster
// (REDIS_CLUSTER_ADDRS, comma separated). It skips the test when the variable
// is unset (fails it under CI=true).
func RedisClusterAddrs(t testing.TB) []string {
	t.Helper()
	return addrList(t, EnvRedisClusterAddrs)
}

// MemcachedAddrs returns the addresses of the shared memcached servers
// (MEMCACHED_ADDRS, comma separated). It skips the test when the variable is
// unset (fails it under CI=true).
func MemcachedAddrs(t testing.TB) []string {
	t.Helper()
	return addrList(t, EnvMemcachedAddrs)
}

func addrList(t testing.TB, env string) []string {
	t.Helper()
	var addrs []string
	for _, a := range strings.Split(os.Getenv(env), ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		skipOrFatal(t, env+" is not set: set "+env+" or run ./scripts/test.sh")
	}
	return addrs
}

// RequireBinary returns the path of the executable name. It skips the test
// when name is not in PATH (fails it under CI=true).
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		skipOrFatal(t, fmt.Sprintf("%s not found in PATH (%v): install it or run ./scripts/test.sh", name, err))
	}
	return path
}

// readyTimeout bounds how long Start waits for a server to answer, and how
// long Stop waits for its port to refuse connections.
const readyTimeout = 5 * time.Second

// Server is a private redis-server or memcached process owned by one test.
// It is killed when the test ends; if the test failed, the server's output
// (of all its runs) is written to the test log.
//
// Start and Stop report failures with t.Fatal, so call them from the test's
// goroutine; they are safe to call concurrently with Addr.
type Server struct {
	t     testing.TB
	kind  string // "redis", "sentinel" or "memcached"
	bin   string
	extra []string // more server flags; for a sentinel, its configuration lines
	addr  string
	port  int
	dir   string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	out  *syncBuffer   // output of all runs
}

// StartRedis starts a private redis-server (no persistence) on a free
// 127.0.0.1 port, with the extra flags if any (such as "--maxmemory",
// "1mb"), and waits until it answers. It is killed when the test ends.
func StartRedis(t testing.TB, extra ...string) *Server {
	t.Helper()
	return startServer(t, "redis", RequireBinary(t, "redis-server"), extra...)
}

// StartMemcached starts a private memcached on a free 127.0.0.1 port, with
// memcached's defaults but for 64 MB of memory and no UDP (so the item size
// limit is the stock 1 MiB), and the extra flags if any (such as "-C", no
// CAS; "-M", no evictions; "-I", "2m", the item size limit), and waits until
// it answers. It is killed when the test ends.
func StartMemcached(t testing.TB, extra ...string) *Server {
	t.Helper()
	return startServer(t, "memcached", RequireBinary(t, "memcached"), extra...)
}

func startServer(t testing.TB, kind, bin string, extra ...string) *Server {
	t.Helper()
	return startServerOn(t, kind, bin, freePort, extra...)
}

// startServerOn starts a server on a port from pickPort. A port that was
// free when picked can be taken before the server binds it (by another
// test's server, or an outgoing connection given an ephemeral port): a
// server that exits while starting is started again on another port, up to
// three times.
func startServerOn(t testing.TB, kind, bin string, pickPort func() (int, error), extra ...string) *Server {
	t.Helper()
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var s *Server
		if s, err = newServerOn(t, kind, bin, pickPort, extra...); err == nil {
			return s
		}
		if !errors.Is(err, errExitedStarting) {
			break
		}
		t.Logf("testenv: %s: %v; trying another port", kind, err)
	}
	t.Fatalf("testenv: starting %s: %v", kind, err)
	return nil
}

// errExitedStarting is the error of a server process that exited before it
// answered, usually because its port was taken.
var errExitedStarting = errors.New("process exited while starting")

func newServerOn(t testing.TB, kind, bin string, pickPort func() (int, error), extra ...string) (*Server, error) {
	t.Helper()
	port, err := pickPort()
	if err != nil {
		return nil, fmt.Errorf("finding a free port: %w", err)
	}
	s := &Server{
		t:     t,
		kind:  kind,
		bin:   bin,
		extra: extra,
		port:  port,
		addr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		dir:   t.TempDir(), // before Cleanup below: removed after the server is gone
		out:   &syncBuffer{},
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("testenv: stopping %s %s: %v", s.kind, s.addr, err)
		}
		if t.Failed() {
			s.logOutput()
		}
	})
	if err := s.start(); err != nil {
		return nil, fmt.Errorf("on %s: %w", s.addr, err)
	}
	return s, nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr returns the server's address, "127.0.0.1:PORT". It does not change
// across Stop and Start.
func (s *Server) Addr() string { return s.addr }

// Start (re)starts the server on its port and waits until it answers. It does
// nothing when the server is running.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("testenv: starting %s on %s: %v", s.kind, s.addr, err)
	}
}

// Stop kills the server and waits until it has exited and its port refuses
// connections. It does nothing when the server is not running.
func (s *Server) Stop() {
	s.t.Helper()
	if err := s.stop(); err != nil {
		s.t.Fatalf("testenv: stopping %s on %s: %v", s.kind, s.addr, err)
	}
}

func (s *Server) args() []string {
	p := strconv.Itoa(s.port)
	switch s.kind {
	case "redis":
		return append([]string{
			"--port", p, "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no",
			"--daemonize", "no", "--dir", s.dir, "--logfile", "",
		}, s.extra...)
	case "sentinel":
		// A Sentinel rewrites its configuration file, which must exist:
		// it is written on the first start and kept across restarts.
		return []string{s.sentinelConf(), "--sentinel"}
	}
	args := []string{"-l", "127.0.0.1", "-p", p, "-U", "0", "-m", "64"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses to run as root otherwise
	}
	return append(args, s.extra...)
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	if s.kind == "sentinel" {
		if err := s.writeSentinelConf(); err != nil {
			return err
		}
	}
	cmd := exec.Command(s.bin, s.args()...)
	cmd.Dir = s.dir
	fmt.Fprintf(s.out, "--- %s %s\n", s.bin, strings.Join(cmd.Args[1:], " "))
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	cmd.WaitDelay = time.Second // don't hang on the output pipe if the server forked
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done

	pid := cmd.Process.Pid
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			return fmt.Errorf("%w: %v", errExitedStarting, cmd.ProcessState)
		default:
		}
		got, err := s.ping()
		if err == nil && got == pid {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("port answered by another process (pid %d, ours is %d)", got, pid)
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			s.cmd, s.done = nil, nil
			return fmt.Errorf("no answer within %v: %v", readyTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(readyTimeout):
		return errors.New("process did not exit after SIGKILL")
	}
	s.cmd, s.done = nil, nil
	deadline := time.Now().Add(readyTimeout)
	for {
		c, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond)
		if err != nil {
			return nil
		}
		c.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("port still accepts connections %v after the process exited", readyTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping checks that the server answers its protocol's ping and returns the pid
// it reports, so that a port taken over by another process is noticed.
func (s *Server) ping() (pid int, err error) {
	c, err := net.DialTimeout("tcp", s.addr, 500*time.Millisecond)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return 0, err
	}
	r := bufio.NewReader(c)
	if s.kind == "memcached" {
		return memcachedPing(c, r)
	}
	return redisPing(c, r)
}

func redisPing(w io.Writer, r *bufio.Reader) (int, error) {
	if _, err := io.WriteString(w, "PING\r\nINFO server\r\n"); err != nil {
		return 0, err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if line != "+PONG\r\n" {
		return 0, fmt.Errorf("PING: got %q", line)
	}
	line, err = r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(line, "$") {
		return 0, fmt.Errorf("INFO: got %q", line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("INFO: got %q", line)
	}
	body := make([]byte, n+2)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	return findPID(string(body), "process_id:")
}

func memcachedPing(w io.Writer, r *bufio.Reader) (int, error) {
	if _, err := io.WriteString(w, "version\r\nstats\r\n"); err != nil {
		return 0, err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(line, "VERSION ") {
		return 0, fmt.Errorf("version: got %q", line)
	}
	var stats strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if line == "END\r\n" {
			break
		}
		stats.WriteString(line)
	}
	return findPID(stats.String(), "STAT pid ")
}

func findPID(text, prefix string) (int, error) {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), prefix); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("no %q in reply", prefix)
}

func (s *Server) logOutput() {
	s.t.Helper()
	s.t.Logf("testenv: %s %s output:\n%s", s.kind, s.addr, s.out.String())
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
