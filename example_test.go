package typedcache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/memo"
)

// The README's quick start is this function's body, verbatim:
// TestReadmeQuickStart keeps the two in step.
func Example() {
	ctx := context.Background()

	store, err := memstore.New(nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()

	type User struct {
		ID   int
		Name string
	}
	users := cache.New[int, User](store, &cache.Options[int, User]{
		Namespace: "users",
		TTL:       10 * time.Minute,
	})

	// Typed reads and writes: a miss is found == false, not an error.
	if err := users.Set(ctx, 1, User{ID: 1, Name: "Ada"}); err != nil {
		panic(err)
	}
	u, found, err := users.Get(ctx, 1)
	fmt.Println(u.Name, found, err)

	// Read-through: one computation per key, across goroutines and processes.
	u, err = memo.GetOrCompute(ctx, users, 2, func(ctx context.Context) (User, error) {
		return User{ID: 2, Name: "Grace"}, nil // e.g. a database query
	}, nil)
	fmt.Println(u.Name, err)
	// Output:
	// Ada true <nil>
	// Grace <nil>
}
