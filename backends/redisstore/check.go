package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/cache"
)

var _ cache.Checker = (*Store)(nil)

// Check reports the settings of the servers and of the client under which
// the store cannot keep its guarantees: one *cache.SettingError (matching
// cache.ErrUnsafeConfig) per finding, joined with errors.Join; nil when it
// finds none. It changes nothing. Run it once when a service starts
// (through cache.Cache.Check) and log what it returns.
//
// Findings:
//
//   - maxmemory-policy of a server that has a memory limit (maxmemory not
//     0) and may evict: allkeys-* policies evict any key, volatile-*
//     policies any key with a ttl, which every lock and lease has. A held
//     lock or lease evicted lets a second holder in. Only noeviction is
//     safe (when memory is full, writes fail instead). A server without a
//     memory limit evicts nothing whatever its policy, and is not
//     reported. Each finding names its server.
//   - ContextTimeoutEnabled false on the client: go-redis then does not
//     apply context deadlines to the socket, so the Cache's Timeout does
//     not bound a call to a server that stops answering (see Timeouts in
//     the package documentation).
//   - ReadOnly on a *redis.ClusterClient (also set by RouteByLatency and
//     RouteRandomly): reads go to replicas, which lag behind their master,
//     so a read right after a write can return the value before it.
//
// The servers checked are the one server of a *redis.Client (a failover
// client: the current master), every master of a *redis.ClusterClient and
// every shard of a *redis.Ring that the Ring sees as up; with a client of
// another type, the server that CONFIG GET reaches through it.
//
// A server that does not answer, or refuses CONFIG GET (managed services
// rename or disable CONFIG; an ACL user may lack the permission), gives an
// error that says which server and setting Check could not read, wrapping
// the server's error. It is no finding (it does not match
// cache.ErrUnsafeConfig): check that setting by other means (the service's
// console). Check still reports the client's findings with it, joined.
func (s *Store) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	errs := s.checkClient()
	var (
		mu     sync.Mutex
		byAddr = map[string][]error{}
	)
	check := func(ctx context.Context, addr string, c redis.Cmdable) error {
		found := checkServer(ctx, addr, c)
		mu.Lock()
		byAddr[addr] = append(byAddr[addr], found...)
		mu.Unlock()
		return nil
	}
	var err error
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return check(ctx, node.Options().Addr, node)
		})
	case *redis.Ring:
		err = c.ForEachShard(ctx, func(ctx context.Context, shard *redis.Client) error {
			return check(ctx, shard.Options().Addr, shard)
		})
	case *redis.Client:
		addr := c.Options().Addr
		if addr == "FailoverClient" { // redis.NewFailoverClient's placeholder
			addr = "(the master of a failover client)"
		}
		err = check(ctx, addr, c)
	default:
		err = check(ctx, fmt.Sprintf("(a %T)", c), c)
	}
	if err != nil { // the Cluster's state could not be loaded
		errs = append(errs, fmt.Errorf("redisstore: check: %w", withCtx(ctx, err)))
	}
	// Servers in a stable order: ForEachMaster and ForEachShard run
	// concurrently.
	addrs := make([]string, 0, len(byAddr))
	for a := range byAddr {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	for _, a := range addrs {
		errs = append(errs, byAddr[a]...)
	}
	return errors.Join(errs...)
}

// withCtx returns err joined with ctx.Err() when the context ended, so that
// errors.Is(err, context.DeadlineExceeded) holds even when go-redis reports
// the deadline as a network timeout.
func withCtx(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return errors.Join(err, cerr)
	}
	return err
}

// checkClient returns the findings about the client's own options.
func (s *Store) checkClient() []error {
	var (
		ctxTimeout bool
		readOnly   bool
	)
	switch c := s.client.(type) {
	case *redis.Client:
		ctxTimeout = c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		o := c.Options()
		ctxTimeout, readOnly = o.ContextTimeoutEnabled, o.ReadOnly
	case *redis.Ring:
		ctxTimeout = c.Options().ContextTimeoutEnabled
	default:
		return nil // its options cannot be read
	}
	var errs []error
	if !ctxTimeout {
		errs = append(errs, &cache.SettingError{
			Setting: "ContextTimeoutEnabled",
			Value:   "false",
			Risk: "go-redis does not apply context deadlines to the connection, so the Cache's Timeout " +
				"and the deadlines of callers' contexts do not bound a call to a server that stops answering: " +
				"it lasts until the client's ReadTimeout or WriteTimeout (seconds by default, never with -1), " +
				"and a lock's or a memo's lease can run out meanwhile; create the client with ContextTimeoutEnabled: true",
		})
	}
	if readOnly {
		errs = append(errs, &cache.SettingError{
			Setting: "ReadOnly",
			Value:   "true",
			Risk: "the cluster client sends reads to replicas (ReadOnly, also set by RouteByLatency and RouteRandomly), " +
				"which lag behind their master: a Get, Gets, Exists or TTL right after a write or a lock release " +
				"can see the key as it was before; leave ReadOnly, RouteByLatency and RouteRandomly off",
		})
	}
	return errs
}

// checkServer reads the eviction settings of the server at addr and
// returns its findings, or an error saying what it could not read.
func checkServer(ctx context.Context, addr string, c redis.Cmdable) []error {
	// One CONFIG GET with a pattern: multiple parameters need Redis 7.
	cfg, err := c.ConfigGet(ctx, "maxmemory*").Result()
	if err == nil && cfg["maxmemory-policy"] == "" {
		err = errors.New("the server did not report it")
	}
	if err != nil {
		return []error{fmt.Errorf("redisstore: check %s: could not read maxmemory-policy (CONFIG GET): %w", addr, withCtx(ctx, err))}
	}
	policy, limit := cfg["maxmemory-policy"], cfg["maxmemory"]
	if policy == "noeviction" || limit == "0" {
		return nil
	}
	if _, err := strconv.ParseUint(limit, 10, 64); err != nil {
		limit = strconv.Quote(limit) // not a number: report it as it is
	}
	var risk string
	switch {
	case strings.HasPrefix(policy, "allkeys-"):
		risk = "evicts any key when its memory reaches maxmemory (" + limit + " bytes): a held lock or lease " +
			"can be evicted and a second holder gets in (and fencing counters too, whose tokens then rest on the server's clock)"
	case strings.HasPrefix(policy, "volatile-"):
		risk = "evicts keys with a ttl when its memory reaches maxmemory (" + limit + " bytes): every lock and lease " +
			"has a ttl, so a held one can be evicted and a second holder gets in"
	default:
		risk = "has an eviction policy this check does not know, with maxmemory " + limit + " bytes: it may evict " +
			"a held lock or lease and let a second holder in"
	}
	return []error{&cache.SettingError{
		Setting: "maxmemory-policy",
		Value:   policy,
		Risk:    "server " + addr + " " + risk + "; set maxmemory-policy noeviction (writes then fail when memory is full)",
	}}
}
