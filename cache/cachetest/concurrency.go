package cachetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
)

// clients returns the stores the racing goroutines share: the test's store,
// and a second one when the two share a backend, so that the race runs
// across clients too.
func (e *env) clients() []cache.Store {
	e.t.Helper()
	if other, ok := e.shared(); ok {
		return []cache.Store{e.s, other}
	}
	return []cache.Store{e.s}
}

// races runs round(r) for r = 0, 1, ... at least twice, and until some
// round reports that its calls overlapped, for at most raceTime; it fails
// the test if no round overlapped, since such a race proves nothing.
func (e *env) races(what string, n int, round func(r int) (peak int64)) {
	e.t.Helper()
	const minRounds = 2
	var best int64
	deadline := time.Now().Add(raceTime)
	r := 0
	for ; r < minRounds || time.Now().Before(deadline); r++ {
		best = max(best, round(r))
		if e.t.Failed() {
			return
		}
		if r+1 >= minRounds && best > 1 {
			if r+1 > minRounds {
				e.t.Logf("%s: calls overlapped only after %d rounds", what, r+1)
			}
			return
		}
	}
	e.t.Fatalf("%s: no two calls of %d goroutines were in flight at once in %d rounds (%v; peak %d, GOMAXPROCS %d); want contention, or the race proves nothing",
		what, n, r, raceTime, best, runtime.GOMAXPROCS(0))
}

// roundKeys returns the keys of round r of a race.
func (e *env) roundKeys(name string, r int) []string {
	keys := make([]string, raceKeys)
	for j := range keys {
		keys[j] = e.key(fmt.Sprintf("%s-%d-%d", name, r, j))
	}
	return keys
}

// column returns the j-th result of every goroutine.
func column(errs [][]error, j int) []error {
	col := make([]error, len(errs))
	for i := range errs {
		col[i] = errs[i][j]
	}
	return col
}

func errGrid(n int) [][]error {
	g := make([][]error, n)
	for i := range g {
		g[i] = make([]error, raceKeys)
	}
	return g
}

// testConcurrency races goroutines, released together, on the same keys:
// each goroutine goes through the keys of a round in the same order, so
// that all of them contend for each key.
func (s *suite) testConcurrency(t *testing.T) {
	const n = 100
	s.run(t, "Add", func(e *env) {
		stores := e.clients()
		e.races("Add", n, func(r int) int64 {
			keys := e.roundKeys("add", r)
			errs := errGrid(n)
			peak := race(n, func(i int, call func(func())) {
				st := stores[i%len(stores)]
				for j, k := range keys {
					call(func() { errs[i][j] = st.Add(e.ctx, k, []byte(strconv.Itoa(i)), 0) })
				}
			})
			for j, k := range keys {
				winner := e.oneWinner("Add", column(errs, j), cache.ErrExists)
				e.wantValue(k, []byte(strconv.Itoa(winner)))
			}
			return peak
		})
	})
	s.run(t, "CompareAndSwap", func(e *env) {
		stores := e.clients()
		e.races("CompareAndSwap", n, func(r int) int64 {
			keys := e.roundKeys("cas", r)
			toks := make([]cache.Token, len(keys))
			for j, k := range keys {
				e.mustSet(k, []byte("initial"), 0)
				_, toks[j] = e.mustGets(k)
			}
			errs := errGrid(n)
			peak := race(n, func(i int, call func(func())) {
				st := stores[i%len(stores)]
				for j, k := range keys {
					call(func() { errs[i][j] = st.CompareAndSwap(e.ctx, k, []byte(strconv.Itoa(i)), toks[j], 0) })
				}
			})
			for j, k := range keys {
				winner := e.oneWinner("CompareAndSwap", column(errs, j), cache.ErrConflict)
				e.wantValue(k, []byte(strconv.Itoa(winner)))
			}
			return peak
		})
	})
	s.run(t, "CompareAndSwapAbsent", func(e *env) {
		stores := e.clients()
		e.races("CompareAndSwap with the absent token", n, func(r int) int64 {
			keys := e.roundKeys("cas-absent", r)
			errs := errGrid(n)
			peak := race(n, func(i int, call func(func())) {
				st := stores[i%len(stores)]
				for j, k := range keys {
					call(func() { errs[i][j] = st.CompareAndSwap(e.ctx, k, []byte(strconv.Itoa(i)), cache.AbsentToken(), 0) })
				}
			})
			for j, k := range keys {
				winner := e.oneWinner("CompareAndSwap with the absent token", column(errs, j), cache.ErrConflict)
				e.wantValue(k, []byte(strconv.Itoa(winner)))
			}
			return peak
		})
	})
	s.run(t, "DeleteIfEqual", func(e *env) {
		stores := e.clients()
		e.races("DeleteIfEqual", n, func(r int) int64 {
			keys := e.roundKeys("die", r)
			for _, k := range keys {
				e.mustSet(k, []byte("held"), 0)
			}
			deleted := make([][]bool, n)
			errs := errGrid(n)
			peak := race(n, func(i int, call func(func())) {
				st := stores[i%len(stores)]
				deleted[i] = make([]bool, len(keys))
				for j, k := range keys {
					call(func() { deleted[i][j], errs[i][j] = st.DeleteIfEqual(e.ctx, k, []byte("held")) })
				}
			})
			for j, k := range keys {
				wins := 0
				for i := range n {
					if errs[i][j] != nil {
						e.t.Fatalf("DeleteIfEqual: goroutine %d: %v", i, errs[i][j])
					}
					if deleted[i][j] {
						wins++
					}
				}
				if wins != 1 {
					e.t.Fatalf("%d goroutines racing DeleteIfEqual of one key: got %d deletes reported; want exactly 1", n, wins)
				}
				e.wantMiss(k)
			}
			return peak
		})
	})
	s.run(t, "Increment", func(e *env) {
		stores := e.clients()
		const per = 20
		e.races("Increment", n, func(r int) int64 {
			k := e.key(fmt.Sprintf("incr-%d", r))
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			deltas := make([][]int64, n)
			var sum int64
			for i := range deltas {
				deltas[i] = make([]int64, per)
				for j := range deltas[i] {
					d := rng.Int64N(2001) - 1000
					deltas[i][j] = d
					sum += d
				}
			}
			errs := make([]error, n)
			peak := race(n, func(i int, call func(func())) {
				st := stores[i%len(stores)]
				for _, d := range deltas[i] {
					call(func() { _, errs[i] = st.Increment(e.ctx, k, d) })
					if errs[i] != nil {
						return
					}
				}
			})
			for i, err := range errs {
				if err != nil {
					e.t.Fatalf("Increment: goroutine %d: %v", i, err)
				}
			}
			if got := e.mustIncrement(k, 0); got != sum {
				e.t.Fatalf("after %d goroutines x %d racing Increments: got %d; want the exact sum %d", n, per, got, sum)
			}
			e.wantValue(k, []byte(strconv.FormatInt(sum, 10)))
			return peak
		})
	})
	s.run(t, "Linearizable", s.testLinearizable)
	if s.h.DropReplies != nil {
		s.run(t, "LinearizableLostReplies", s.testLinearizableLostReplies)
	}
	s.run(t, "Mixed", func(e *env) {
		// Every operation at once on a few keys: nothing to count but the
		// counter, yet a store with a data race shows it under the race
		// detector, and no operation may return an error other than its
		// documented ones.
		stores := e.clients()
		const workers, ops = 8, 200
		e.races("mixed operations", workers, func(r int) int64 {
			keys := []string{e.key(fmt.Sprint("m0-", r)), e.key(fmt.Sprint("m1-", r)), e.key(fmt.Sprint("m2-", r))}
			counter := e.key(fmt.Sprint("counter-", r))
			var mu sync.Mutex
			var sum int64
			peak := race(workers, func(w int, call func(func())) {
				st := stores[w%len(stores)]
				rng := rand.New(rand.NewPCG(uint64(w), uint64(r)))
				for range ops {
					k := keys[rng.IntN(len(keys))]
					v := []byte(strconv.Itoa(rng.IntN(3)))
					var err error
					call(func() {
						switch rng.IntN(12) {
						case 0:
							err = st.Set(e.ctx, k, v, 0)
						case 1:
							_, err = st.Get(e.ctx, k)
						case 2:
							_, err = st.GetMulti(e.ctx, keys)
						case 3:
							err = st.SetMulti(e.ctx, []cache.Item{{Key: k, Value: v}, {Key: keys[0], Value: v, TTL: e.longTTL}})
						case 4:
							err = st.Add(e.ctx, k, v, 0)
						case 5:
							_, err = st.Delete(e.ctx, k)
						case 6:
							_, err = st.Exists(e.ctx, k)
						case 7:
							_, err = st.Expire(e.ctx, k, e.longTTL)
						case 8:
							var tok cache.Token
							if _, tok, err = st.Gets(e.ctx, k); err == nil || errors.Is(err, cache.ErrNotFound) {
								err = st.CompareAndSwap(e.ctx, k, v, tok, 0)
							}
						case 9:
							_, err = st.DeleteIfEqual(e.ctx, k, v)
						case 10:
							_, err = st.ExtendIfEqual(e.ctx, k, v, 0)
						case 11:
							d := rng.Int64N(21) - 10
							if _, err = st.Increment(e.ctx, counter, d); err == nil {
								mu.Lock()
								sum += d
								mu.Unlock()
							}
						}
					})
					if err != nil && !errors.Is(err, cache.ErrNotFound) && !errors.Is(err, cache.ErrExists) && !errors.Is(err, cache.ErrConflict) {
						e.t.Errorf("worker %d: unexpected error %v", w, err)
						return
					}
				}
			})
			if got, err := e.s.Increment(e.ctx, counter, 0); err != nil || got != sum {
				e.t.Errorf("counter after the mixed run: got (%d, %v); want (%d, nil)", got, err, sum)
			}
			return peak
		})
	})
}

// oneWinner checks that exactly one of errs is nil and all others match
// loser, and returns the index of the winner.
func (e *env) oneWinner(op string, errs []error, loser error) int {
	e.t.Helper()
	winner, wins := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			winner = i
		case errors.Is(err, loser):
		default:
			e.t.Fatalf("%s: goroutine %d: got %v; want nil or %v", op, i, err, loser)
		}
	}
	if wins != 1 {
		e.t.Fatalf("%d goroutines racing %s on one key: got %d successes; want exactly 1 (the others %v)", len(errs), op, wins, loser)
	}
	return winner
}
