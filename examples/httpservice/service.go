package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/backends/memstore"
	"github.com/typedcache/typedcache/backends/redisstore"
	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/lock"
	"github.com/typedcache/typedcache/memo"
)

// config is what the service is started with.
type config struct {
	// RedisAddr is the Redis server the instances share. When it is empty,
	// or Redis does not answer at start, the service runs on an in-process
	// store, shared with no other instance.
	RedisAddr string
	// Prefix, when set, prefixes the namespaces ("shop" → "shop-products"),
	// so that several services (or test runs) share one Redis.
	Prefix string
	// DBLatency is how long the fake database takes to answer.
	DBLatency time.Duration
	Logger    *slog.Logger
}

// Cart is a shopping cart, changed with lock.Update (compare-and-swap, no
// lost update when two requests add to one cart at once).
type Cart struct {
	Items []CartItem `json:"items"`
}

// CartItem is a line of a cart.
type CartItem struct {
	ProductID int `json:"product_id"`
	Qty       int `json:"qty"`
}

// service holds what the handlers use.
type service struct {
	log      *slog.Logger
	db       *database
	backend  string        // "redis" or "memory"
	rdb      *redis.Client // nil on memory
	products *cache.Cache[int, Product]
	carts    *cache.Cache[string, Cart]
	catalog  *memo.Memo[int, Product]
	draining atomic.Bool // set when shutting down: /healthz fails
}

// newService opens the store and builds the caches. Its resources are
// released by close.
func newService(ctx context.Context, cfg config, db *database) (*service, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &service{log: log, db: db, backend: "memory"}
	store, err := s.openStore(ctx, cfg.RedisAddr)
	if err != nil {
		return nil, err
	}
	ns := func(name string) string {
		if cfg.Prefix == "" {
			return name
		}
		return cfg.Prefix + "-" + name
	}

	s.products = cache.New[int, Product](store, &cache.Options[int, Product]{
		Namespace: ns("products"),
		TTL:       10 * time.Minute,
		Timeout:   500 * time.Millisecond, // bounds each store call
		// A local tier: hot products are served from this process's memory.
		// A write or an invalidation in any instance drops every instance's
		// copy, through the store's bus (Redis pub/sub).
		Local: &cache.LocalOptions{MaxEntries: 10_000, TTL: time.Minute},
		// Failures no caller waits for (a refresh, an invalidation that could
		// not be sent) are logged, once per cause a minute.
		Logger: log,
		// Metrics and traces: set Observer to an OpenTelemetry observer,
		// typedotel.NewObserver from the module
		// github.com/typedcache/typedcache/otel (docs/observability.md).
		// Stats, served on /stats, count the same events without it.
	})
	s.carts = cache.New[string, Cart](store, &cache.Options[string, Cart]{
		Namespace: ns("carts"),
		TTL:       24 * time.Hour,
		Timeout:   500 * time.Millisecond,
		Logger:    log,
	})

	// Once, at start: the settings under which the store cannot keep its
	// guarantees (docs/operations.md). Logged, not fatal.
	if err := s.products.Check(ctx); err != nil {
		log.Warn("cache check", "backend", s.backend, "unsafe", errors.Is(err, cache.ErrUnsafeConfig), "err", err)
	} else {
		log.Info("cache check", "backend", s.backend, "findings", 0)
	}

	// The catalog: one query for all the products a request misses, each
	// product computed once across every instance, and an unknown id
	// remembered for a minute so that it does not reach the database again.
	s.catalog = memo.FuncBatch(s.products, db.productsByID, &memo.Options{
		Lease:       5 * time.Second,
		NegativeTTL: time.Minute,
		FailSafeMax: time.Hour, // the database down: serve the last value, up to an hour past its TTL
	})
	return s, nil
}

// openStore returns a store over Redis at addr or, when addr is empty or
// Redis does not answer, an in-process store.
func (s *service) openStore(ctx context.Context, addr string) (cache.Store, error) {
	if addr != "" {
		rdb := redis.NewClient(&redis.Options{
			Addr:                  addr,
			ContextTimeoutEnabled: true, // so that the Cache's Timeout bounds each call
		})
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := rdb.Ping(pctx).Err()
		cancel()
		if err == nil {
			s.backend, s.rdb = "redis", rdb
			return redisstore.New(rdb, nil), nil
		}
		s.log.Warn("redis does not answer: running on an in-process store", "addr", addr, "err", err)
		rdb.Close()
	}
	return memstore.New(nil)
}

// close releases what the service holds, each after what uses it: the
// catalog's goroutines (computations, refreshes) first, then the caches
// (the local tier's subscription, and the store: Cache.Close closes it),
// then the Redis client, which no store closes.
func (s *service) close() error {
	s.catalog.Close()
	err := errors.Join(s.products.Close(), s.carts.Close())
	if s.rdb != nil {
		err = errors.Join(err, s.rdb.Close())
	}
	return err
}

// handler returns the service's routes.
func (s *service) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products/{id}", s.getProduct)
	mux.HandleFunc("GET /products", s.getProducts)
	mux.HandleFunc("PUT /products/{id}", s.putProduct)
	mux.HandleFunc("GET /carts/{id}", s.getCart)
	mux.HandleFunc("POST /carts/{id}/items", s.addToCart)
	mux.HandleFunc("GET /stats", s.stats)
	mux.HandleFunc("GET /healthz", s.healthz)
	return mux
}

// GET /products/{id}: a product, through the catalog.
func (s *service) getProduct(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "id: not a number")
		return
	}
	p, err := s.catalog.Get(r.Context(), id)
	switch {
	case errors.Is(err, memo.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such product")
	case err != nil:
		s.fail(w, r, err)
	default:
		writeJSON(w, http.StatusOK, p)
	}
}

// productList is the answer of GET /products.
type productList struct {
	Products []Product `json:"products"`
	Missing  []int     `json:"missing"`
}

// GET /products?ids=1,2,3: several products, one database query for the
// ones the cache misses.
func (s *service) getProducts(w http.ResponseWriter, r *http.Request) {
	var ids []int
	for _, f := range strings.Split(r.URL.Query().Get("ids"), ",") {
		id, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			writeError(w, http.StatusBadRequest, "ids: a comma-separated list of numbers")
			return
		}
		ids = append(ids, id)
	}
	got, err := s.catalog.GetMulti(r.Context(), ids)
	out := productList{Products: []Product{}, Missing: []int{}}
	var failed memo.KeyErrors[int]
	if err != nil && !errors.As(err, &failed) {
		s.fail(w, r, err)
		return
	}
	for _, id := range ids {
		if p, ok := got[id]; ok {
			out.Products = append(out.Products, p)
			continue
		}
		if !errors.Is(failed[id], memo.ErrNotFound) {
			s.fail(w, r, failed[id])
			return
		}
		out.Missing = append(out.Missing, id)
	}
	writeJSON(w, http.StatusOK, out)
}

// PUT /products/{id}: the cache-aside write. The database first, then the
// invalidation: every instance drops its copy, and a computation that read
// the database before the write cannot store its old value after it (no
// stale sets: its lease was revoked).
func (s *service) putProduct(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "id: not a number")
		return
	}
	var p Product
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.Name == "" {
		writeError(w, http.StatusBadRequest, `body: {"name": "...", "price": cents}`)
		return
	}
	p.ID = id
	if err := s.db.putProduct(r.Context(), p); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.catalog.Invalidate(r.Context(), id); err != nil {
		// Written, but the old value may be served until its TTL.
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// GET /carts/{id}.
func (s *service) getCart(w http.ResponseWriter, r *http.Request) {
	c, found, err := s.carts.Get(r.Context(), r.PathValue("id"))
	switch {
	case err != nil:
		s.fail(w, r, err)
	case !found:
		writeError(w, http.StatusNotFound, "no such cart")
	default:
		writeJSON(w, http.StatusOK, c)
	}
}

// POST /carts/{id}/items {"product_id": 1, "qty": 2}: adds to a cart with
// compare-and-swap, retried on conflict, so that concurrent requests all
// count.
func (s *service) addToCart(w http.ResponseWriter, r *http.Request) {
	var item CartItem
	if err := json.NewDecoder(r.Body).Decode(&item); err != nil || item.Qty <= 0 {
		writeError(w, http.StatusBadRequest, `body: {"product_id": id, "qty": n > 0}`)
		return
	}
	if _, err := s.catalog.Get(r.Context(), item.ProductID); errors.Is(err, memo.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such product")
		return
	} else if err != nil {
		s.fail(w, r, err)
		return
	}
	cart, err := lock.Update(r.Context(), s.carts, r.PathValue("id"), func(old Cart, found bool) (Cart, error) {
		// It may run more than once: no side effects, and a new slice.
		items := slices.Clone(old.Items)
		i := slices.IndexFunc(items, func(it CartItem) bool { return it.ProductID == item.ProductID })
		if i < 0 {
			items = append(items, item)
		} else {
			items[i].Qty += item.Qty
		}
		return Cart{Items: items}, nil
	}, nil)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cart)
}

// statsReply is the answer of GET /stats.
type statsReply struct {
	Backend  string      `json:"backend"`
	Products cache.Stats `json:"products"`
	Carts    cache.Stats `json:"carts"`
}

// GET /stats: the caches' counters, memo's and the local tier's included.
// A service that exports metrics uses the otel module's Observer instead
// (docs/observability.md); these are for a quick look.
func (s *service) stats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, statsReply{Backend: s.backend, Products: s.products.Stats(), Carts: s.carts.Stats()})
}

// GET /healthz: 503 once the service is shutting down, so that a load
// balancer stops sending it requests.
func (s *service) healthz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "backend": s.backend})
}

// fail logs err and answers 500 (503 when the store timed out).
func (s *service) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	if errors.Is(err, context.DeadlineExceeded) {
		writeError(w, http.StatusServiceUnavailable, "timed out")
		return
	}
	writeError(w, http.StatusInternalServerError, "internal error")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
