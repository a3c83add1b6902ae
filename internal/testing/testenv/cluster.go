package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clusterTimeout bounds how long StartRedisCluster waits for redis-cli to
// create the cluster, and then for every node to report cluster_state:ok;
// and how long StartRedisSentinel waits for the Sentinel to see its master.
const clusterTimeout = 30 * time.Second

// Cluster is a private Redis Cluster of three masters (no replicas) owned
// by one test. Its nodes are killed when the test ends.
type Cluster struct {
	// Nodes are the masters. Each may be stopped and restarted; it keeps
	// its cluster configuration (nodes.conf in its own directory).
	Nodes []*Server
}

// Addrs returns the addresses of the cluster's nodes, "127.0.0.1:PORT".
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// StartRedisCluster starts a private Redis Cluster of three masters on free
// 127.0.0.1 ports (redis-server --cluster-enabled yes, joined with
// redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes) and
// waits until every node reports cluster_state:ok and knows all three nodes
// and all 16384 slots. It skips the test when redis-server or redis-cli is
// missing (fails it under CI=true). The nodes are killed when the test ends.
//
// Unlike the shared cluster (RedisClusterAddrs), nothing else uses it: a
// test may empty it.
func StartRedisCluster(t testing.TB) *Cluster {
	t.Helper()
	server := RequireBinary(t, "redis-server")
	cli := RequireBinary(t, "redis-cli")
	c := &Cluster{}
	for range 3 {
		c.Nodes = append(c.Nodes, startServerOn(t, "redis", server, freeClusterPort,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
		))
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testenv: %s %s: %v\n%s", cli, strings.Join(args, " "), err, out)
	}
	deadline := time.Now().Add(clusterTimeout)
	for {
		err := c.ready()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: the cluster %v is not ready %v after its creation: %v", c.Addrs(), clusterTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready returns nil when every node reports cluster_state:ok and knows the
// three nodes and every slot.
func (c *Cluster) ready() error {
	want := map[string]string{
		"cluster_state":       "ok",
		"cluster_slots_ok":    "16384",
		"cluster_known_nodes": strconv.Itoa(len(c.Nodes)),
	}
	for _, n := range c.Nodes {
		reply, err := redisDo(n.Addr(), "CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", n.Addr(), err)
		}
		info, _ := reply.(string)
		fields := make(map[string]string)
		for _, l := range strings.Split(info, "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
				fields[k] = v
			}
		}
		for k, v := range want {
			if fields[k] != v {
				return fmt.Errorf("%s: CLUSTER INFO: %s:%s; want %s", n.Addr(), k, fields[k], v)
			}
		}
	}
	return nil
}

// freeClusterPort returns a loopback port that was free a moment ago, as was
// the port 10000 above it, which a cluster node uses for its cluster bus.
func freeClusterPort() (int, error) {
	for range 100 {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		if port+10000 > 65535 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, errors.New("no free port whose cluster bus port is free too")
}

// SentinelMasterName is the name under which StartRedisSentinel's Sentinel
// monitors its master: the MasterName of a redis.FailoverOptions.
const SentinelMasterName = "mymaster"

// Sentinel is a private redis-server master and one Sentinel monitoring it,
// owned by one test. Both are killed when the test ends.
type Sentinel struct {
	// Master is the monitored redis-server.
	Master *Server
	// Sentinel is the redis-server running in Sentinel mode.
	Sentinel *Server
}

// MasterName returns the name of the monitored master, SentinelMasterName.
func (s *Sentinel) MasterName() string { return SentinelMasterName }

// Addrs returns the address of the Sentinel, as a list: the SentinelAddrs of
// a redis.FailoverOptions.
func (s *Sentinel) Addrs() []string { return []string{s.Sentinel.Addr()} }

// StartRedisSentinel starts a private redis-server master and one
// `redis-server <conf> --sentinel` monitoring it under SentinelMasterName
// (quorum 1, down-after 2 s), both on free 127.0.0.1 ports, and waits until
// the Sentinel has reached the master. It skips the test when redis-server
// is missing (fails it under CI=true). Both are killed when the test ends.
func StartRedisSentinel(t testing.TB) *Sentinel {
	t.Helper()
	master := StartRedis(t)
	_, mport, _ := net.SplitHostPort(master.Addr())
	s := &Sentinel{
		Master: master,
		Sentinel: startServer(t, "sentinel", RequireBinary(t, "redis-server"),
			"sentinel monitor "+SentinelMasterName+" 127.0.0.1 "+mport+" 1",
			"sentinel down-after-milliseconds "+SentinelMasterName+" 2000",
			"sentinel failover-timeout "+SentinelMasterName+" 10000",
		),
	}
	deadline := time.Now().Add(clusterTimeout)
	for {
		err := s.ready()
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: the sentinel %s has not reached its master %s within %v: %v",
				s.Sentinel.Addr(), master.Addr(), clusterTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready returns nil when the Sentinel names the master's address and has
// seen it answer as a master.
func (s *Sentinel) ready() error {
	reply, err := redisDo(s.Sentinel.Addr(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMasterName)
	if err != nil {
		return err
	}
	if hp, ok := reply.([]any); !ok || len(hp) != 2 || fmt.Sprint(hp[0])+":"+fmt.Sprint(hp[1]) != s.Master.Addr() {
		return fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME: got %v; want %s", reply, s.Master.Addr())
	}
	reply, err = redisDo(s.Sentinel.Addr(), "SENTINEL", "MASTER", SentinelMasterName)
	if err != nil {
		return err
	}
	fields, _ := reply.([]any)
	m := make(map[string]string)
	for i := 0; i+1 < len(fields); i += 2 {
		m[fmt.Sprint(fields[i])] = fmt.Sprint(fields[i+1])
	}
	if m["flags"] != "master" || m["role-reported"] != "master" {
		return fmt.Errorf("SENTINEL MASTER: flags %q, role-reported %q; want master", m["flags"], m["role-reported"])
	}
	return nil
}

// sentinelConf returns the path of the Sentinel's configuration file.
func (s *Server) sentinelConf() string { return filepath.Join(s.dir, "sentinel.conf") }

// writeSentinelConf writes the Sentinel's configuration file, unless it
// exists already (the Sentinel rewrites it with what it learnt).
func (s *Server) writeSentinelConf() error {
	if _, err := os.Stat(s.sentinelConf()); err == nil {
		return nil
	}
	lines := append([]string{
		"port " + strconv.Itoa(s.port),
		"bind 127.0.0.1",
		"daemonize no",
		`logfile ""`,
		"dir " + s.dir,
	}, s.extra...)
	return os.WriteFile(s.sentinelConf(), []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}

// redisDo sends one command to the Redis server at addr on a new connection
// and returns its reply: a string (simple or bulk), an int64, nil, a []any,
// or an error for an error reply.
func redisDo(addr string, args ...string) (any, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	return readReply(bufio.NewReader(c))
}

// readReply reads one RESP2 reply.
func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, errors.New(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readReply(r); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}
