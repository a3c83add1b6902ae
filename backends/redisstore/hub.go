package redisstore

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/cache"
)

// hub holds the store's subscribers, each created on first use and
// stopped by Close:
//
//   - one for the classic channels: Watch's release channels, and the
//     Bus's channels except on a Cluster;
//   - on a Ring, one per shard instead, as a Ring publishes on the shard
//     of the key (of the channel name, for the Bus);
//   - on a Cluster, one per hash slot of the Bus's channels, subscribed
//     with SSUBSCRIBE: go-redis connects such a subscriber to the node
//     that serves the slot of its channels (of the first one, so the
//     channels of one subscriber must share a slot).
type hub struct {
	s      *Store
	health time.Duration

	mu     sync.Mutex
	closed bool
	subs   map[hubKey]*subscriber
}

// hubKey names a subscriber.
type hubKey struct {
	shard *redis.Client // the Ring shard; nil otherwise
	slot  int           // the hash slot of a sharded subscriber; -1 for a classic one
}

func (h *hub) init(s *Store, health time.Duration) {
	h.s = s
	h.health = health
	h.subs = make(map[hubKey]*subscriber)
}

// forKey returns the classic subscriber that sees the messages published
// on the shard of key: the one subscriber, or on a Ring that of the
// key's shard.
func (h *hub) forKey(key string) (*subscriber, error) {
	if r, ok := h.s.client.(*redis.Ring); ok {
		c, err := r.GetShardClientForKey(key)
		if err != nil {
			return nil, err
		}
		return h.get(hubKey{shard: c, slot: -1}, func() *subscriber {
			return newSubscriber(c.Subscribe(context.Background()), false, h.health)
		})
	}
	return h.get(hubKey{slot: -1}, func() *subscriber {
		return newSubscriber(h.s.client.Subscribe(context.Background()), false, h.health)
	})
}

// forBus returns the subscriber of the Bus's channel ch: on a Cluster the
// sharded subscriber of its slot, otherwise as forKey does for ch.
func (h *hub) forBus(ch string) (*subscriber, error) {
	if c, ok := h.s.client.(*redis.ClusterClient); ok {
		return h.get(hubKey{slot: keySlot(ch)}, func() *subscriber {
			sub := newSubscriber(c.SSubscribe(context.Background()), true, h.health)
			sub.reload = func() { c.ReloadState(context.Background()) }
			return sub
		})
	}
	return h.forKey(ch)
}

// get returns the subscriber named k, creating it with create, whose
// PubSub is given no channel (go-redis then does no I/O).
func (h *hub) get(k hubKey, create func() *subscriber) (*subscriber, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, cache.ErrClosed
	}
	if sub := h.subs[k]; sub != nil {
		return sub, nil
	}
	sub := create()
	h.subs[k] = sub
	return sub, nil
}

// close stops every subscriber and waits for their goroutines.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	subs := make([]*subscriber, 0, len(h.subs))
	for _, sub := range h.subs {
		subs = append(subs, sub)
	}
	h.mu.Unlock()
	for _, sub := range subs {
		sub.close()
	}
}
