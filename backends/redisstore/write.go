package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/cache"
)

// Writes and lost replies.
//
// go-redis sends a command again when the connection fails before its
// reply came (MaxRetries, 3 by default; a Cluster client also retries on
// another node). For a write whose reply was lost after the server applied
// it, that applies it twice: an Increment adds twice, a SET NX reports that
// the key exists (it holds the value just added), a compare-and-swap reports
// a conflict with its own write, and a SET lands again after a later write
// of another client.
//
// So every write of the store is sent as a transaction, MULTI ... EXEC,
// which go-redis never sends again once it was written: it re-sends one only
// when writing it failed, and a transaction whose EXEC did not reach the
// server is discarded with the connection. A write whose reply is lost
// returns an error matching cache.ErrUncertain (the store cannot tell
// whether the server applied it), and the caller decides; lock and memo
// read the key back. Reads are plain commands: sending them again is
// harmless.

// tx sends the commands queue adds (it returns nil) as one MULTI ... EXEC
// transaction and
// returns the error of the first command that failed, classified by
// writeFail.
func (s *Store) tx(ctx context.Context, queue func(p redis.Pipeliner) error) error {
	_, err := s.client.TxPipelined(ctx, queue)
	if err != nil {
		return writeFail(ctx, err)
	}
	return nil
}

// writeFail returns the error of a write: a reply of the server (a Redis
// error: nothing was applied) or a failure to send (no connection could be
// made or taken from the pool, the client is closed) as it is; any other
// failure, after the transaction may have been written, wrapped with
// cache.ErrUncertain.
func writeFail(ctx context.Context, err error) error {
	var rerr redis.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &rerr),
		errors.As(err, &oe) && oe.Op == "dial",
		errors.Is(err, redis.ErrPoolTimeout),
		errors.Is(err, redis.ErrPoolExhausted),
		errors.Is(err, redis.ErrClosed):
		return fail(ctx, err)
	}
	return fail(ctx, fmt.Errorf("%w: %w", cache.ErrUncertain, err))
}

// eval runs script as a write, in a transaction: EVALSHA, then EVAL in a
// second transaction when the server does not know the script (NOSCRIPT:
// nothing ran).
func (s *Store) eval(ctx context.Context, script *redis.Script, keys []string, args ...any) (*redis.Cmd, error) {
	var cmd *redis.Cmd
	err := s.tx(ctx, func(p redis.Pipeliner) error { cmd = script.EvalSha(ctx, p, keys, args...); return nil })
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		err = s.tx(ctx, func(p redis.Pipeliner) error { cmd = script.Eval(ctx, p, keys, args...); return nil })
	}
	if err != nil {
		return nil, err
	}
	return cmd, nil
}

// batchOp is one single-key write of a multi-key operation.
type batchOp struct {
	op    string // "set" or "unlink", as scripts/batch.lua reads them
	key   string
	value []byte
	ttl   time.Duration
}

// queue adds the write to p and returns a function that reads its reply
// once p was sent: 1 for a set, the count of an unlink, 0 if it failed.
func (o *batchOp) queue(ctx context.Context, p redis.Pipeliner) func() int64 {
	if o.op == "set" {
		cmd := p.Set(ctx, o.key, o.value, roundTTL(o.ttl))
		return func() int64 {
			if cmd.Err() != nil {
				return 0
			}
			return 1
		}
	}
	cmd := p.Unlink(ctx, o.key)
	return cmd.Val
}

// batch sends single-key writes so that none is sent twice, in one round
// trip per node where it can, and returns each write's reply (1 for a set,
// the count of an unlink): on a single server one transaction of them all;
// on a Ring one per shard (go-redis splits a Ring's transaction); on a
// Cluster one transaction per master running scripts/batch.lua over the
// master's keys (Redis 7; a write whose slot moved is sent again alone);
// on an unknown client, and on a Cluster whose servers cannot run the
// script, one transaction per hash slot. All concurrently. It returns the
// errors of the transactions that failed, joined; the replies of the
// writes that failed are 0.
func (s *Store) batch(ctx context.Context, ops []batchOp) ([]int64, error) {
	out := make([]int64, len(ops))
	switch {
	case s.topo == single || s.topo == ring:
		return out, s.txOps(ctx, ops, nil, out)
	case s.topo == cluster && !s.noBatchScript.Load():
		return out, s.clusterBatch(ctx, ops, out)
	}
	return out, s.bySlot(ctx, ops, allOf(len(ops)), out)
}

// txOps sends the writes idx of ops (all of them when idx is nil) in one
// transaction and stores their replies in out.
func (s *Store) txOps(ctx context.Context, ops []batchOp, idx []int, out []int64) error {
	if idx == nil {
		idx = allOf(len(ops))
	}
	replies := make([]func() int64, len(idx))
	err := s.tx(ctx, func(p redis.Pipeliner) error {
		for j, i := range idx {
			replies[j] = ops[i].queue(ctx, p)
		}
		return nil
	})
	for j, i := range idx {
		if replies[j] != nil {
			out[i] = replies[j]()
		}
	}
	return err
}

func allOf(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// concurrently runs f(0), ..., f(n-1) at once and joins their errors.
func concurrently(n int, f func(j int) error) error {
	if n == 1 {
		return f(0)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for j := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(j); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// bySlot sends the writes idx of ops in one transaction per hash slot.
func (s *Store) bySlot(ctx context.Context, ops []batchOp, idx []int, out []int64) error {
	slots := make(map[int][]int)
	for _, i := range idx {
		sl := keySlot(ops[i].key)
		slots[sl] = append(slots[sl], i)
	}
	groups := make([][]int, 0, len(slots))
	for _, g := range slots {
		groups = append(groups, g)
	}
	return concurrently(len(groups), func(j int) error { return s.txOps(ctx, ops, groups[j], out) })
}

// clusterBatch sends the writes of ops in one transaction per master, each
// running scripts/batch.lua on the master's node client.
func (s *Store) clusterBatch(ctx context.Context, ops []batchOp, out []int64) error {
	cc := s.client.(*redis.ClusterClient)
	masters := make(map[*redis.Client][]int)
	for i := range ops {
		m, err := cc.MasterForKey(ctx, ops[i].key)
		if err != nil {
			return fail(ctx, err)
		}
		masters[m] = append(masters[m], i)
	}
	var (
		mu    sync.Mutex
		again []int // writes whose slot moved, or whose master could not run the script
	)
	groups := make([][]int, 0, len(masters))
	nodes := make([]*redis.Client, 0, len(masters))
	for m, g := range masters {
		groups = append(groups, g)
		nodes = append(nodes, m)
	}
	err := concurrently(len(groups), func(j int) error {
		g, node := groups[j], nodes[j]
		args := make([]any, 0, 4*len(g))
		for _, i := range g {
			o := &ops[i]
			args = append(args, o.op, o.key, o.value, ttlMillis(o.ttl))
		}
		var cmd *redis.Cmd
		run := func(eval func(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd) error {
			_, err := node.TxPipelined(ctx, func(p redis.Pipeliner) error {
				cmd = eval(ctx, p, []string{ops[g[0]].key}, args...)
				return nil
			})
			return err
		}
		err := run(batchScript.EvalSha)
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			err = run(batchScript.Eval)
		}
		if err != nil {
			var rerr redis.Error
			if errors.As(err, &rerr) {
				// The server refused the script (before Redis 7, it
				// cannot read the flag; or every slot moved): nothing ran.
				if !redis.HasErrorPrefix(err, "MOVED") && !redis.HasErrorPrefix(err, "ASK") &&
					!redis.HasErrorPrefix(err, "CROSSSLOT") && !redis.HasErrorPrefix(err, "TRYAGAIN") {
					s.noBatchScript.Store(true)
				}
				mu.Lock()
				again = append(again, g...)
				mu.Unlock()
				return nil
			}
			return writeFail(ctx, err)
		}
		replies, _ := cmd.Int64Slice()
		for j, i := range g {
			if j >= len(replies) || replies[j] < 0 {
				mu.Lock()
				again = append(again, i)
				mu.Unlock()
				continue
			}
			out[i] = replies[j]
		}
		return nil
	})
	if len(again) > 0 {
		cc.ReloadState(ctx)
		err = errors.Join(err, s.bySlot(ctx, ops, again, out))
	}
	return err
}
