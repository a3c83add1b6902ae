package lock_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/lock"
)

func ExampleNewRedLock() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	// A lock on a bare name needs no value type: one Cache for the locks of
	// the service, with their namespace and the bound of each store call.
	locks := cache.New[string, struct{}](store, &cache.Options[string, struct{}]{
		Namespace: "reports",
		Timeout:   time.Second,
	})

	l, err := lock.NewRedLock(locks, "daily", 30*time.Second, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := l.Acquire(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("held: %q\n", l.Key())
	// ... build the report; Extend the lease if it takes longer ...
	if err := l.Release(ctx); err != nil {
		fmt.Println("lease lost:", err)
	}
	// Output: held: "reports:daily\x00lock"
}

func ExampleRedLock_Acquire() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, nil)

	holder, err := lock.NewRedLock(c, "job", time.Minute, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := holder.Acquire(ctx); err != nil {
		log.Fatal(err)
	}
	defer holder.Release(ctx)

	// Acquire waits as long as its context lets it.
	ctx2, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	waiter, err := lock.NewRedLock(c, "job", time.Minute, nil)
	if err != nil {
		log.Fatal(err)
	}
	err = waiter.Acquire(ctx2)
	fmt.Println(errors.Is(err, lock.ErrNotObtained), errors.Is(err, context.DeadlineExceeded))
	// Output: true true
}

func ExampleRedLock_TryAcquire() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, nil)

	// One RedLock per would-be holder.
	a, err := lock.NewRedLock(c, "job", time.Minute, nil)
	if err != nil {
		log.Fatal(err)
	}
	b, err := lock.NewRedLock(c, "job", time.Minute, nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range []*lock.RedLock{a, b} {
		ok, err := l.TryAcquire(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ok)
	}
	if err := a.Release(ctx); err != nil {
		log.Fatal(err)
	}
	ok, err := b.TryAcquire(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ok)
	// Output:
	// true
	// false
	// true
}

func ExampleRedLock_Release() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, nil)

	l, err := lock.NewRedLock(c, "job", time.Minute, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := l.Acquire(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(l.Release(ctx))
	// A lock released already (or whose lease ran out) is not held.
	err = l.Release(ctx)
	fmt.Println(errors.Is(err, lock.ErrNotHeld))
	// Output:
	// <nil>
	// true
}

func ExampleRedLock_Extend() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, nil)

	l, err := lock.NewRedLock(c, "import", 10*time.Second, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := l.Acquire(ctx); err != nil {
		log.Fatal(err)
	}
	defer l.Release(ctx)

	// The work takes longer than planned: ask for another minute.
	if err := l.Extend(ctx, time.Minute); err != nil {
		log.Fatal(err) // ErrNotHeld: the lease ran out, stop working
	}
	fmt.Println(l.Lease(), l.Remaining().Round(time.Second))
	// Output: 10s 1m0s
}

func ExampleRedLock_Held() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, nil)

	l, err := lock.NewRedLock(c, "job", time.Minute, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(l.Held())
	if err := l.Acquire(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(l.Held())
	if err := l.Release(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(l.Held())
	// Output:
	// false
	// true
	// false
}

func ExampleRedLock_Do() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, nil)

	l, err := lock.NewRedLock(c, "job", time.Minute, nil)
	if err != nil {
		log.Fatal(err)
	}
	err = l.Do(ctx, func(ctx context.Context) error {
		fmt.Println("only one holder runs this at a time")
		return nil
	})
	fmt.Println(err)
	// Output:
	// only one holder runs this at a time
	// <nil>
}

func ExampleRedLock_AcquireOrWait() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, nil)

	// The read-through pattern: the holder computes, the others wait for
	// it (at most the lease) and read what it stored.
	l, err := lock.NewRedLock(c, "k", 5*time.Second, nil)
	if err != nil {
		log.Fatal(err)
	}
	held, err := l.AcquireOrWait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if held {
		defer l.Release(ctx)
		if err := c.Set(ctx, "k", "computed"); err != nil {
			log.Fatal(err)
		}
	}
	v, found, err := c.Get(ctx, "k")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(held, v, found)
	// Output: true computed true
}

func ExampleRedLock_Fence() {
	ctx := context.Background()
	// Fencing is opt-in (Options.Fencing) and needs a store that hands
	// tokens out (cache.Fencer): Redis or memory, not Memcached.
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, string](store, nil)

	l, err := lock.NewRedLock(c, "ledger", 10*time.Second, &lock.Options{Fencing: true})
	if err != nil {
		log.Fatal(err)
	}
	var last int64
	for range 2 {
		if err := l.Acquire(ctx); err != nil {
			log.Fatal(err)
		}
		// Send the fence with every write; the resource rejects a fence
		// smaller than the largest it has seen. Fences are not
		// consecutive: they follow the clock in microseconds.
		if fence, ok := l.Fence(); ok {
			fmt.Println("fence greater than the last:", fence > last)
			last = fence
		}
		if err := l.Release(ctx); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// fence greater than the last: true
	// fence greater than the last: true
}

func ExampleNewOptimisticLock() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, int](store, nil)
	if err := c.Set(ctx, "stock", 10); err != nil {
		log.Fatal(err)
	}

	ol, err := lock.NewOptimisticLock(ctx, c, "stock")
	if err != nil {
		log.Fatal(err)
	}
	n, found := ol.Value()
	fmt.Println(n, found)
	if err := c.Set(ctx, "stock", 7); err != nil { // another writer gets there first
		log.Fatal(err)
	}
	err = ol.CAS(ctx, n-1)
	fmt.Println(errors.Is(err, lock.ErrConflict))
	// Output:
	// 10 true
	// true
}

func ExampleOptimisticLock_CAS() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c := cache.New[string, []string](store, nil)

	// Create the key only if nobody else has meanwhile.
	ol, err := lock.NewOptimisticLock(ctx, c, "admins")
	if err != nil {
		log.Fatal(err)
	}
	admins, found := ol.Value()
	fmt.Println(admins, found)
	if err := ol.CAS(ctx, append(admins, "ada")); err != nil {
		log.Fatal(err) // ErrConflict: read again and retry, or give up
	}
	// The token is spent: read again before the next write.
	err = ol.CAS(ctx, []string{"bob"})
	fmt.Println(errors.Is(err, lock.ErrConflict))

	admins, _, err = c.Get(ctx, "admins")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(admins)
	// Output:
	// [] false
	// true
	// [ada]
}

func ExampleUpdate() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	type cart struct{ Items []string }
	c := cache.New[string, cart](store, nil)

	// fn may run several times, so it has no side effects.
	v, err := lock.Update(ctx, c, "cart:1", func(old cart, found bool) (cart, error) {
		old.Items = append(old.Items, "book")
		return old, nil
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v.Items)
	// Output: [book]
}

func ExampleRedLock_Hold() {
	ctx := context.Background()
	store, err := memstore.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	locks := cache.New[string, struct{}](store, &cache.Options[string, struct{}]{Namespace: "locks"})

	// A job longer than the lease: Hold extends the lease while it runs,
	// and ends ctx if the lock is lost.
	l, err := lock.NewRedLock(locks, "nightly-import", 300*time.Millisecond, nil)
	if err != nil {
		log.Fatal(err)
	}
	err = l.Hold(ctx, func(ctx context.Context) error {
		for step := range 3 {
			select {
			case <-ctx.Done():
				return context.Cause(ctx) // lock.ErrLost: stop writing
			case <-time.After(200 * time.Millisecond):
				fmt.Println("step", step)
			}
		}
		return nil
	})
	fmt.Println(err)
	// Output:
	// step 0
	// step 1
	// step 2
	// <nil>
}
