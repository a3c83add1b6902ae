package redisstore

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/internal/testing/testenv"
)

// events records a bus subscription's calls, in order.
type events chan string

func (ev events) handle(msg []byte)    { ev <- "msg:" + string(msg) }
func (ev events) state(connected bool) { ev <- fmt.Sprint("state:", connected) }

func (ev events) want(t *testing.T, want, after string) {
	t.Helper()
	select {
	case got := <-ev:
		if got != want {
			t.Fatalf("after %s: got %q; want %q", after, got, want)
		}
	case <-time.After(bound):
		t.Fatalf("after %s: nothing within %v; want %q", after, bound, want)
	}
}

func (ev events) wantNone(t *testing.T, after string) {
	t.Helper()
	select {
	case got := <-ev:
		t.Fatalf("after %s: got %q; want nothing", after, got)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestUnsubscribeReplyWithListeners: an "unsubscribe" reply read while the
// channel has confirmed listeners puts them down (they may have been
// confirmed by the reply to a SUBSCRIBE sent before that UNSUBSCRIBE), and
// the next "subscribe" reply puts them back up; a watcher is woken by
// both. Messages in between are not delivered. The replies are handed to
// dispatch as run would.
func TestUnsubscribeReplyWithListeners(t *testing.T) {
	srv := testenv.StartRedis(t)
	store := newTestStore(t, srv.Addr(), 0)
	ev := make(events, 100)
	stop, err := store.Subscribe(t.Context(), "c", ev.handle, ev.state)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	woken, stopW, err := store.Watch(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer stopW()
	sub, wch := store.classic(), store.Channel("k")

	sub.dispatch(&redis.Subscription{Kind: "unsubscribe", Channel: "c"})
	ev.want(t, "state:false", "an unsubscribe reply")
	sub.dispatch(&redis.Message{Channel: "c", Payload: "lost"})
	sub.dispatch(&redis.Subscription{Kind: "subscribe", Channel: "c"})
	ev.want(t, "state:true", "a subscribe reply")
	sub.dispatch(&redis.Message{Channel: "c", Payload: "m"})
	ev.want(t, "msg:m", "a message")

	sub.dispatch(&redis.Subscription{Kind: "unsubscribe", Channel: wch})
	wantWake(t, woken, "an unsubscribe reply")
	sub.dispatch(&redis.Subscription{Kind: "subscribe", Channel: wch})
	wantWake(t, woken, "a subscribe reply")
	ev.wantNone(t, "replies for another channel")
}

// TestLostCommand: when a command of another goroutine fails, go-redis
// replaces the connection, and run may read the new one without seeing an
// error. lostConn makes run take it for a failure and replace the
// connection once more: state(false), then state(true) after the
// resubscription, and messages arrive again.
func TestLostCommand(t *testing.T) {
	srv := testenv.StartRedis(t)
	store := newTestStoreOpts(t, srv.Addr(), 0, &Options{HealthCheckInterval: 100 * time.Millisecond})
	other := newTestStore(t, srv.Addr(), 0)
	ev := make(events, 100)
	stop, err := store.Subscribe(t.Context(), "c", ev.handle, ev.state)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	before := pubSubClients(t, other)

	store.classic().lostConn()
	ev.want(t, "state:false", "a lost command")
	ev.want(t, "state:true", "a lost command")
	if err := other.Publish(t.Context(), "c", []byte("m")); err != nil {
		t.Fatal(err)
	}
	ev.want(t, "msg:m", "the reconnection")
	after := pubSubClients(t, other)
	if len(after) != 1 || after[0] == before[0] {
		t.Errorf("pub/sub clients before %v, after %v; want one new one", before, after)
	}
}

// pubSubClients returns the ids of the server's pub/sub clients.
func pubSubClients(t *testing.T, s *Store) []string {
	t.Helper()
	list, err := s.client.ClientList(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		var id string
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			}
			if f == "flags=P" {
				ids = append(ids, id)
			}
		}
	}
	return ids
}
