package main

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Product is what the catalog serves: a row of the products table, and the
// value the cache holds (MessagePack, the default codec for structs).
type Product struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	Price int    `json:"price"` // in cents
}

// database stands for the service's database: a products table behind a
// slow query, counting the queries so that the test sees what the cache
// saves.
type database struct {
	latency time.Duration

	mu       sync.Mutex
	products map[int]Product
	queries  [][]int // the ids of each call of productsByID
}

func newDatabase(latency time.Duration) *database {
	return &database{
		latency: latency,
		products: map[int]Product{
			1: {ID: 1, Name: "apple", Price: 120},
			2: {ID: 2, Name: "pear", Price: 90},
			3: {ID: 3, Name: "plum", Price: 200},
		},
	}
}

// productsByID is SELECT ... WHERE id IN (ids): the products found. An id
// it does not return does not exist. It is the catalog's batch loader.
func (db *database) productsByID(ctx context.Context, ids []int) (map[int]Product, error) {
	db.mu.Lock()
	db.queries = append(db.queries, slices.Clone(ids))
	db.mu.Unlock()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(db.latency):
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	found := make(map[int]Product, len(ids))
	for _, id := range ids {
		if p, ok := db.products[id]; ok {
			found[id] = p
		}
	}
	return found, nil
}

// putProduct is an UPDATE (or INSERT) of a product.
func (db *database) putProduct(ctx context.Context, p Product) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	db.products[p.ID] = p
	return nil
}

// calls returns the ids of each query so far.
func (db *database) calls() [][]int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return slices.Clone(db.queries)
}
