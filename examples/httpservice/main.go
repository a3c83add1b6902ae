// Command httpservice is a small JSON service over typedcache, the library
// used the way a service uses it:
//
//   - a catalog of products read through a typed cache over Redis (or an
//     in-process store when Redis is not there at start), with
//     memo.FuncBatch over a batch query of a fake database: each product
//     computed once across every instance, one query for all the products
//     a request misses, and a local tier in each instance kept coherent by
//     the store's bus;
//   - a cache-aside write (PUT) that invalidates every instance's copy,
//     with no stale set;
//   - shopping carts changed with lock.Update (compare-and-swap);
//   - the caches' Stats on /stats, Cache.Check logged at start, and a
//     shutdown that releases everything in order.
//
// Run it:
//
//	go run ./examples/httpservice -redis 127.0.0.1:6379
//	curl localhost:8080/products/1
//	curl 'localhost:8080/products?ids=1,2,3,4'
//	curl -X PUT -d '{"name":"green apple","price":130}' localhost:8080/products/1
//	curl -d '{"product_id":1,"qty":2}' localhost:8080/carts/c1/items
//	curl localhost:8080/carts/c1
//	curl localhost:8080/stats
//
// The Redis address defaults to $REDIS_ADDR; without one, the service runs
// on an in-process store.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	redisAddr := flag.String("redis", os.Getenv("REDIS_ADDR"), "Redis address (default $REDIS_ADDR); empty: an in-process store")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := config{RedisAddr: *redisAddr, DBLatency: 20 * time.Millisecond, Logger: log}
	if err := run(ctx, *addr, cfg); err != nil {
		log.Error("httpservice", "err", err)
		os.Exit(1)
	}
}

// run serves on addr until ctx ends (SIGINT, SIGTERM).
func run(ctx context.Context, addr string, cfg config) error {
	svc, err := newService(ctx, cfg, newDatabase(cfg.DBLatency))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return errors.Join(err, svc.close())
	}
	svc.log.Info("listening", "addr", ln.Addr().String(), "backend", svc.backend)
	return serve(ctx, ln, svc)
}

// serve serves svc on ln until ctx ends or the server fails, then shuts
// down in order, each step after what depends on it:
//
//  1. stop accepting work: /healthz answers 503, so that a load balancer
//     sends no new requests (a deployment waits here for it to notice);
//  2. http.Server.Shutdown closes the listener and waits for the requests
//     in flight, which still use the caches;
//  3. Memo.Close stops the catalog's goroutines (computations, refreshes)
//     and waits for them;
//  4. Cache.Close stops the local tier's subscription and closes the store;
//  5. the Redis client, last: a store never closes a client it was given.
func serve(ctx context.Context, ln net.Listener, svc *service) error {
	srv := &http.Server{Handler: svc.handler(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-served: // the listener failed
		served = nil
	}

	svc.draining.Store(true) // 1
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil { // 2
		err = errors.Join(err, serr)
	}
	if served != nil {
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}
	return errors.Join(err, svc.close()) // 3, 4, 5
}
