package memcachestore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/typedcache/typedcache/cache"
)

var _ cache.Checker = (*Store)(nil)

// Check reads the settings of every server in Options.Servers (memcached's
// "stats settings", over a connection of its own) and reports those under
// which the store cannot keep a guarantee, one *cache.SettingError each,
// joined:
//
//   - evictions on (memcached's default): when its memory is full,
//     memcached evicts items before they expire, so a held lock or lease
//     can vanish and a second holder get in. Start memcached with -M, under
//     which a write that finds memory full fails instead (a set that fails
//     so also drops the key's old value: give memcached memory enough).
//   - item_size_max below Options.MaxItemSize: the store lets items through
//     that the server refuses, and a refused set also drops the key's old
//     value.
//   - cas_enabled no (memcached's -C): every operation built on cas (Gets,
//     CompareAndSwap, Increment, Expire, DeleteIfEqual, ExtendIfEqual) fails
//     with cache.ErrUnsupported, so locks can be neither released nor
//     extended.
//
// It reports no client setting: the client's Timeout and MaxIdleConns
// change latency and how many connections are dialled (see "Batches and
// connections" in the package documentation), not what the store
// guarantees.
//
// Each connection is dialled with the client's DialContext, if set, and
// bounded by ctx and by the client's Timeout, for the dial and again for
// the exchange, as gomemcache bounds its own calls. The servers are asked
// at once. A server that cannot be reached or read makes Check return that
// error, and no findings; without Options.Servers it returns an error
// matching cache.ErrUnsupported. Check changes nothing.
func (s *Store) Check(ctx context.Context) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	if len(s.servers) == 0 {
		return fmt.Errorf("memcachestore: check: %w without Options.Servers (gomemcache does not tell a client's servers)", cache.ErrUnsupported)
	}
	findings := make([][]error, len(s.servers))
	errs := make([]error, len(s.servers))
	var wg sync.WaitGroup
	for i, addr := range s.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			settings, err := s.serverSettings(ctx, addr)
			if err != nil {
				errs[i] = fmt.Errorf("memcachestore: check %s: %w", addr, err)
				return
			}
			findings[i] = s.judge(addr, settings)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var all []error
	for _, f := range findings {
		all = append(all, f...)
	}
	return errors.Join(all...)
}

// judge returns the findings of the settings of the server at addr.
func (s *Store) judge(addr string, settings map[string]string) []error {
	var out []error
	if v := settings["evictions"]; v == "on" {
		out = append(out, &cache.SettingError{Setting: "evictions", Value: v, Risk: fmt.Sprintf(
			"memcached at %s evicts items before they expire when its memory is full, "+
				"so a held lock or lease can vanish and a second holder get in; "+
				"start it with -M, under which a write that finds memory full fails instead", addr)})
	}
	if v, ok := settings["item_size_max"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n < s.maxItem {
			out = append(out, &cache.SettingError{Setting: "item_size_max", Value: v, Risk: fmt.Sprintf(
				"memcached at %s refuses items over %d bytes, but Options.MaxItemSize lets items of up to %d through, "+
					"and a set it refuses drops the key's old value; "+
					"set Options.MaxItemSize to %d, or start memcached with -I %d or more", addr, n, s.maxItem, n, s.maxItem)})
		}
	}
	if v := settings["cas_enabled"]; v == "no" {
		out = append(out, &cache.SettingError{Setting: "cas_enabled", Value: v, Risk: fmt.Sprintf(
			"memcached at %s runs with -C and hands out no CAS uniques: Gets, CompareAndSwap, Increment, Expire, "+
				"DeleteIfEqual and ExtendIfEqual fail, so locks can be neither released nor extended; "+
				"start it without -C", addr)})
	}
	return out
}

// serverSettings returns the "stats settings" of the server at addr, read
// over a connection of its own.
func (s *Store) serverSettings(ctx context.Context, addr string) (map[string]string, error) {
	timeout := s.client.Timeout
	if timeout <= 0 {
		timeout = memcache.DefaultTimeout
	}
	dial := s.client.DialContext
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	network := "tcp"
	if strings.Contains(addr, "/") {
		network = "unix" // as gomemcache's ServerList reads an address
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dial(dctx, network, addr)
	if err != nil {
		return nil, settle(ctx, err)
	}
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	// A ctx cancelled without a deadline ends the exchange too.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	settings, err := readSettings(conn)
	return settings, settle(ctx, err)
}

// settle returns err as ctxErr does, once ctx has ended if its deadline has
// passed: a connection deadline set to ctx's can fire before ctx's own
// timer does.
func settle(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		<-ctx.Done()
	}
	return ctxErr(ctx, err)
}

// readSettings sends "stats settings" on conn and reads the reply.
func readSettings(conn net.Conn) (map[string]string, error) {
	if _, err := conn.Write([]byte("stats settings\r\n")); err != nil {
		return nil, err
	}
	r := bufio.NewReader(conn)
	settings := map[string]string{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		line = strings.TrimSuffix(line, "\r\n")
		if line == "END" {
			return settings, nil
		}
		rest, ok := strings.CutPrefix(line, "STAT ")
		if !ok {
			return nil, fmt.Errorf("stats settings: unexpected reply %q", line)
		}
		name, value, _ := strings.Cut(rest, " ")
		settings[name] = value
	}
}
