package cachetest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/typedcache/typedcache/cache"
)

// The linearizability check: workers run Get, Set, Add, Delete, Gets then
// CompareAndSwap, and DeleteIfEqual at random on two keys, from one or two
// clients of the backend, and record when each call started and returned.
// github.com/anishathalye/porcupine then searches for an order of the calls,
// each taking effect at one instant between its start and its return, in
// which every result is what a single register per key would give. A stale
// read, a lost write or a compare-and-swap that is not atomic has no such
// order.
//
// Every write stores a value no other write stores, so "unchanged since the
// token was read" and "still holds the value read" are the same thing, for
// stores that compare versions and for those that compare values alike.

// linOp is the kind of one call.
type linOp uint8

const (
	linGet linOp = iota
	linSet
	linAdd
	linDelete
	linCAS
	linDeleteIfEqual
)

// linInput is a call: its key (the partition), kind and arguments.
type linInput struct {
	key   int
	op    linOp
	value string // Set, Add and CompareAndSwap: what it writes; DeleteIfEqual: what it compares
	// CompareAndSwap: what the Gets before it read.
	expectPresent bool
	expect        string
}

// linOutput is a call's result.
type linOutput struct {
	// unknown marks a write that failed with cache.ErrUncertain: it may
	// or may not have taken effect. It is recorded as returning at the end
	// of the history and taking effect as if it had succeeded: placed
	// last, it changes nothing any other call saw, which is the same as
	// not having happened; placed earlier, it happened.
	unknown bool

	present bool   // Get: the key held a value
	value   string // Get: the value
	ok      bool   // Add, CompareAndSwap, DeleteIfEqual: it took effect
	n       int    // Delete: how many keys existed
}

// linState is the register's state: a value, or none.
type linState struct {
	present bool
	value   string
}

var linModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		var parts [2][]porcupine.Operation
		for _, op := range history {
			k := op.Input.(linInput).key
			parts[k] = append(parts[k], op)
		}
		return parts[:]
	},
	Init: func() any { return linState{} },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(linState), input.(linInput), output.(linOutput)
		if out.unknown {
			return true, applyUnknown(st, in)
		}
		switch in.op {
		case linGet:
			return out.present == st.present && out.value == st.value, st
		case linSet:
			return true, linState{true, in.value}
		case linAdd:
			if st.present {
				return !out.ok, st
			}
			return out.ok, linState{true, in.value}
		case linDelete:
			if st.present {
				return out.n == 1, linState{}
			}
			return out.n == 0, st
		case linCAS:
			if st.present == in.expectPresent && st.value == in.expect {
				return out.ok, linState{true, in.value}
			}
			return !out.ok, st
		case linDeleteIfEqual:
			if st.present && st.value == in.value {
				return out.ok, linState{}
			}
			return !out.ok, st
		}
		return false, st
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		if out.unknown {
			return describeUnknown(in)
		}
		switch in.op {
		case linGet:
			if !out.present {
				return "get() → miss"
			}
			return fmt.Sprintf("get() → %s", out.value)
		case linSet:
			return fmt.Sprintf("set(%s)", in.value)
		case linAdd:
			return fmt.Sprintf("add(%s) → %v", in.value, out.ok)
		case linDelete:
			return fmt.Sprintf("delete() → %d", out.n)
		case linCAS:
			exp := "absent"
			if in.expectPresent {
				exp = in.expect
			}
			return fmt.Sprintf("cas(%s → %s) → %v", exp, in.value, out.ok)
		default:
			return fmt.Sprintf("delete-if-equal(%s) → %v", in.value, out.ok)
		}
	},
	DescribeState: func(state any) string {
		st := state.(linState)
		if !st.present {
			return "absent"
		}
		return st.value
	},
}

// applyUnknown returns the state after a write with an unknown outcome took
// effect.
func applyUnknown(st linState, in linInput) linState {
	switch in.op {
	case linSet:
		return linState{true, in.value}
	case linAdd:
		if !st.present {
			return linState{true, in.value}
		}
	case linDelete:
		return linState{}
	case linCAS:
		if st.present == in.expectPresent && st.value == in.expect {
			return linState{true, in.value}
		}
	case linDeleteIfEqual:
		if st.present && st.value == in.value {
			return linState{}
		}
	}
	return st
}

func describeUnknown(in linInput) string {
	switch in.op {
	case linSet:
		return fmt.Sprintf("set(%s) → ?", in.value)
	case linAdd:
		return fmt.Sprintf("add(%s) → ?", in.value)
	case linDelete:
		return "delete() → ?"
	case linCAS:
		exp := "absent"
		if in.expectPresent {
			exp = in.expect
		}
		return fmt.Sprintf("cas(%s → %s) → ?", exp, in.value)
	default:
		return fmt.Sprintf("delete-if-equal(%s) → ?", in.value)
	}
}

// linForever is the return time of a call with an unknown outcome: after
// every other call of the history.
const linForever = math.MaxInt64 / 2

// linCheckTimeout bounds porcupine's search. Histories of the size the suite
// makes are checked in milliseconds.
const linCheckTimeout = time.Minute

func (s *suite) testLinearizable(e *env) { s.linearizable(e, e.clients(), false) }

// testLinearizableLostReplies is testLinearizable with the replies of
// writes lost at random (Harness.DropReplies).
func (s *suite) testLinearizableLostReplies(e *env) {
	stores := e.clients() // before the faults: it writes a probe
	stop := s.h.DropReplies(e.t)
	defer stop()
	s.linearizable(e, stores, true)
}

// linearizable runs the linearizability check on stores. With lossy, the
// replies of writes are being lost: a write that fails with
// cache.ErrUncertain is kept with an unknown outcome, a read that fails is
// left out (it changed nothing), and the check fails unless some write was
// uncertain.
func (s *suite) linearizable(e *env, stores []cache.Store, lossy bool) {
	const workers, ops = 8, 120
	var uncertain atomic.Int64
	defer func() {
		if lossy && !e.t.Failed() && uncertain.Load() == 0 {
			e.t.Errorf("no write failed with cache.ErrUncertain while replies were being lost: the check proved nothing")
		}
	}()
	e.races("linearizable history", workers, func(r int) int64 {
		keys := [2]string{e.key(fmt.Sprintf("lin0-%d", r)), e.key(fmt.Sprintf("lin1-%d", r))}
		base := time.Now()
		clock := func() int64 { return int64(time.Since(base)) } // monotonic
		var (
			mu      sync.Mutex
			history []porcupine.Operation
			failed  error
		)
		record := func(w int, in linInput, call, ret int64, out linOutput) {
			mu.Lock()
			history = append(history, porcupine.Operation{ClientId: w, Input: in, Call: call, Output: out, Return: ret})
			mu.Unlock()
		}
		fail := func(err error) {
			mu.Lock()
			if failed == nil {
				failed = err
			}
			mu.Unlock()
		}
		peak := race(workers, func(w int, call func(func())) {
			st := stores[w%len(stores)]
			rng := rand.New(rand.NewPCG(uint64(w), uint64(r)+1))
			seq := 0
			unique := func() string {
				seq++
				return "w" + strconv.Itoa(w) + "-" + strconv.Itoa(seq)
			}
			lastSeen := map[int]string{} // per key, a value this worker read
			for range ops {
				ki := rng.IntN(len(keys))
				k := keys[ki]
				in := linInput{key: ki}
				var out linOutput
				var err error
				var start, end int64
				switch rng.IntN(6) {
				case 0, 1: // reads are the most common call, and the ones a stale store gets wrong
					in.op = linGet
					call(func() {
						start = clock()
						var v []byte
						v, err = st.Get(e.ctx, k)
						end = clock()
						out.present, out.value = err == nil, string(v)
					})
					if errors.Is(err, cache.ErrNotFound) {
						err = nil
					}
					if out.present {
						lastSeen[ki] = out.value
					}
				case 2:
					if rng.IntN(2) == 0 {
						in.op, in.value = linSet, unique()
						call(func() { start = clock(); err = st.Set(e.ctx, k, []byte(in.value), 0); end = clock() })
					} else {
						in.op, in.value = linAdd, unique()
						call(func() { start = clock(); err = st.Add(e.ctx, k, []byte(in.value), 0); end = clock() })
						out.ok = err == nil
						if errors.Is(err, cache.ErrExists) {
							err = nil
						}
					}
				case 3:
					in.op = linDelete
					call(func() { start = clock(); out.n, err = st.Delete(e.ctx, k); end = clock() })
				case 4:
					// Gets is a read of its own in the history; the
					// CompareAndSwap that follows expects what it read.
					var (
						v   []byte
						tok cache.Token
					)
					get := linInput{key: ki, op: linGet}
					var got linOutput
					call(func() { start = clock(); v, tok, err = st.Gets(e.ctx, k); end = clock() })
					if err != nil && !errors.Is(err, cache.ErrNotFound) {
						if lossy {
							continue // a failed read changed nothing
						}
						fail(fmt.Errorf("worker %d: Gets: %w", w, err))
						return
					}
					got.present, got.value = err == nil, string(v)
					record(w, get, start, end, got)
					in.op, in.value = linCAS, unique()
					in.expectPresent, in.expect = got.present, got.value
					call(func() { start = clock(); err = st.CompareAndSwap(e.ctx, k, []byte(in.value), tok, 0); end = clock() })
					out.ok = err == nil
					if errors.Is(err, cache.ErrConflict) {
						err = nil
					}
				case 5:
					in.op = linDeleteIfEqual
					in.value = lastSeen[ki]
					if in.value == "" {
						in.value = "never-written"
					}
					call(func() {
						start = clock()
						out.ok, err = st.DeleteIfEqual(e.ctx, k, []byte(in.value))
						end = clock()
					})
				}
				if err != nil && lossy {
					switch {
					case in.op == linGet:
						continue // a failed read changed nothing
					case errors.Is(err, cache.ErrUncertain):
						uncertain.Add(1)
						record(w, in, start, linForever, linOutput{unknown: true})
						continue
					}
				}
				if err != nil {
					fail(fmt.Errorf("worker %d: %s: %w", w, linModel.DescribeOperation(in, out), err))
					return
				}
				record(w, in, start, end, out)
			}
		})
		if failed != nil {
			e.t.Fatal(failed)
		}
		res, info := porcupine.CheckOperationsVerbose(linModel, history, linCheckTimeout)
		switch res {
		case porcupine.Ok:
		case porcupine.Illegal:
			e.t.Errorf("the history of %d calls on %d keys is not linearizable: no order of the calls, each at one instant between its start and its return, gives their results (a stale read, a lost write or a compare-and-swap that is not atomic)%s",
				len(history), len(keys), visualize(info))
		default:
			e.t.Errorf("porcupine could not decide within %v whether the history of %d calls is linearizable", linCheckTimeout, len(history))
		}
		return peak
	})
}

// visualize writes porcupine's picture of a history that failed the check
// to a file the test run leaves behind, and returns a sentence naming it.
func visualize(info porcupine.LinearizationInfo) string {
	f, err := os.CreateTemp("", "cachetest-linearizability-*.html")
	if err != nil {
		return ""
	}
	defer f.Close()
	if err := porcupine.Visualize(linModel, info, f); err != nil {
		return ""
	}
	return "; the history is drawn in " + f.Name()
}
