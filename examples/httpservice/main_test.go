package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/internal/testing/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// logRecorder keeps the messages of the records logged through it.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}

func (l *logRecorder) logged(msg string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if m == msg {
			return true
		}
	}
	return false
}

// testService starts the service on redisAddr ("" for memory) under a
// namespace prefix of its own, and an HTTP server in front of it, both
// stopped when the test ends.
func testService(t *testing.T, redisAddr, prefix string, db *database) (*service, *httptest.Server, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	svc, err := newService(context.Background(), config{RedisAddr: redisAddr, Prefix: prefix, Logger: slog.New(rec)}, db)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.handler())
	t.Cleanup(func() {
		srv.Close()
		ctx := context.Background()
		if err := errors.Join(svc.products.Clear(ctx), svc.carts.Clear(ctx)); err != nil {
			t.Errorf("clear: %v", err)
		}
		if err := svc.close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return svc, srv, rec
}

func uniquePrefix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	return "httpservice-test-" + hex.EncodeToString(b)
}

// call sends a request and decodes the JSON answer into out (when not
// nil), failing the test unless the status is want. From the test's
// goroutine only: others use do.
func call(t *testing.T, method, url, body string, want int, out any) {
	t.Helper()
	if err := do(method, url, body, want, out); err != nil {
		t.Fatal(err)
	}
}

// do is call's request, with its failure as an error.
func do(method, url, body string, want int, out any) error {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d (%s); want %d", method, url, resp.StatusCode, bytes.TrimSpace(data), want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: %v in %s", method, url, err, data)
		}
	}
	return nil
}

func TestService(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		testEndpoints(t, "", "memory")
	})
	t.Run("redis", func(t *testing.T) {
		testEndpoints(t, testenv.RedisAddr(t), "redis")
	})
	t.Run("redis unreachable", func(t *testing.T) {
		// Nothing listens on port 1: the service starts on memory.
		testEndpoints(t, "127.0.0.1:1", "memory")
	})
}

// testEndpoints exercises every endpoint of one instance.
func testEndpoints(t *testing.T, redisAddr, backend string) {
	db := newDatabase(time.Millisecond)
	svc, srv, logs := testService(t, redisAddr, uniquePrefix(t), db)
	if svc.backend != backend {
		t.Fatalf("backend %q; want %q", svc.backend, backend)
	}
	if !logs.logged("cache check") {
		t.Error("Cache.Check was not logged at start")
	}

	var health map[string]string
	call(t, "GET", srv.URL+"/healthz", "", http.StatusOK, &health)
	if health["backend"] != backend {
		t.Errorf("healthz: %v; want backend %q", health, backend)
	}

	// Several products: one query for the cold ones, the unknown one
	// reported missing.
	var list productList
	call(t, "GET", srv.URL+"/products?ids=1,2,3,99", "", http.StatusOK, &list)
	if len(list.Products) != 3 || list.Products[1].Name != "pear" || !reflect.DeepEqual(list.Missing, []int{99}) {
		t.Errorf("GET /products?ids=1,2,3,99 = %+v; want 3 products and 99 missing", list)
	}
	if got := db.calls(); !reflect.DeepEqual(got, [][]int{{1, 2, 3, 99}}) {
		t.Errorf("database queries %v; want one, for [1 2 3 99]", got)
	}

	// One product, from the cache; an unknown one, remembered as unknown.
	var p Product
	call(t, "GET", srv.URL+"/products/2", "", http.StatusOK, &p)
	if p.Name != "pear" {
		t.Errorf("GET /products/2 = %+v; want pear", p)
	}
	call(t, "GET", srv.URL+"/products/99", "", http.StatusNotFound, nil)
	call(t, "GET", srv.URL+"/products/x", "", http.StatusBadRequest, nil)
	if n := len(db.calls()); n != 1 {
		t.Errorf("database queries %d after reads of cached products; want 1", n)
	}

	// A write, then a read that sees it.
	call(t, "GET", srv.URL+"/products/1", "", http.StatusOK, &p)
	call(t, "PUT", srv.URL+"/products/1", `{"name":"green apple","price":130}`, http.StatusOK, &p)
	call(t, "GET", srv.URL+"/products/1", "", http.StatusOK, &p)
	if p.Name != "green apple" || p.Price != 130 {
		t.Errorf("GET /products/1 after PUT = %+v; want the green apple at 130", p)
	}
	call(t, "PUT", srv.URL+"/products/1", `{}`, http.StatusBadRequest, nil)

	// Carts: concurrent additions all count.
	const adds = 20
	var wg sync.WaitGroup
	for i := range adds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"product_id":%d,"qty":1}`, 1+i%2)
			if err := do("POST", srv.URL+"/carts/c1/items", body, http.StatusOK, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	var cart Cart
	call(t, "GET", srv.URL+"/carts/c1", "", http.StatusOK, &cart)
	total := 0
	for _, it := range cart.Items {
		total += it.Qty
	}
	if len(cart.Items) != 2 || total != adds {
		t.Errorf("cart %+v; want 2 lines, %d items", cart, adds)
	}
	call(t, "POST", srv.URL+"/carts/c1/items", `{"product_id":99,"qty":1}`, http.StatusNotFound, nil)
	call(t, "POST", srv.URL+"/carts/c1/items", `{"product_id":1,"qty":0}`, http.StatusBadRequest, nil)
	call(t, "GET", srv.URL+"/carts/none", "", http.StatusNotFound, nil)

	// Stats: what the reads, the memo and the local tier did.
	var st statsReply
	call(t, "GET", srv.URL+"/stats", "", http.StatusOK, &st)
	if st.Backend != backend || st.Products.Hits == 0 || st.Products.Misses == 0 || st.Products.Computations == 0 ||
		st.Products.NegativeHits == 0 || st.Products.Deletes == 0 || st.Carts.Sets == 0 {
		t.Errorf("stats %+v; want hits, misses, computations, a negative hit and a delete of products, sets of carts", st)
	}
}

// Two instances over one Redis: a write through one is seen by the other,
// whose local tier held the old value.
func TestInstancesShareRedis(t *testing.T) {
	addr := testenv.RedisAddr(t)
	db := newDatabase(time.Millisecond) // one database, two instances
	prefix := uniquePrefix(t)
	a, srvA, _ := testService(t, addr, prefix, db)
	b, srvB, _ := testService(t, addr, prefix, db)
	if a.backend != "redis" || b.backend != "redis" {
		t.Fatalf("backends %q, %q; want redis", a.backend, b.backend)
	}

	var p Product
	call(t, "GET", srvA.URL+"/products/3", "", http.StatusOK, &p)
	// b reads what a computed, until its local tier serves it.
	deadline := time.Now().Add(10 * time.Second)
	for b.products.Stats().LocalHits == 0 {
		if time.Now().After(deadline) {
			t.Fatal("b's local tier never served product 3")
		}
		call(t, "GET", srvB.URL+"/products/3", "", http.StatusOK, &p)
		time.Sleep(time.Millisecond)
	}
	if n := len(db.calls()); n != 1 {
		t.Errorf("database queries %d; want 1 for two instances", n)
	}

	call(t, "PUT", srvA.URL+"/products/3", `{"name":"damson","price":250}`, http.StatusOK, nil)
	for {
		call(t, "GET", srvB.URL+"/products/3", "", http.StatusOK, &p)
		if p.Name == "damson" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b still serves %+v after the write through a", p)
		}
		time.Sleep(time.Millisecond)
	}
}

// serve shuts down in order: requests in flight finish, then the store is
// closed.
func TestServeShutdown(t *testing.T) {
	svc, err := newService(context.Background(), config{Logger: slog.New(&logRecorder{})}, newDatabase(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, svc) }()
	url := "http://" + ln.Addr().String()

	// A request in flight (the database takes 200ms) when shutdown starts.
	slow := make(chan error, 1)
	var p Product
	go func() { slow <- do("GET", url+"/products/1", "", http.StatusOK, &p) }()
	for svc.products.Stats().Misses == 0 { // it has reached the cache
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-slow; err != nil || p.Name != "apple" {
		t.Errorf("the request in flight: %+v, %v; want the apple", p, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Error("the server still accepts connections after serve returned")
	}
	if _, _, err := svc.carts.Get(context.Background(), "c1"); !errors.Is(err, cache.ErrClosed) {
		t.Errorf("a read after serve returned: %v; want cache.ErrClosed", err)
	}
}
