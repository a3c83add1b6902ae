package redisstore

import (
	"context"
)

// Watch returns a channel that receives a value after a successful
// DeleteIfEqual (or SwapIfEqual) of key by any client of the same Redis
// deployment, and a stop function that ends the watch and must be called.
//
// DeleteIfEqual publishes on the key's channel (Channel: the channel prefix
// followed by the key) in the same script that deletes the key. Watch
// subscribes to that channel on the store's one pub/sub connection, which
// it shares with every other watch and with the Bus's subscriptions (on a
// Ring, one per shard, as a Ring publishes on the shard of the key; see
// the package documentation). A channel is subscribed while at least one
// watch of its key is active: the stop function of the last one sends an
// UNSUBSCRIBE on the connection go-redis has, without dialing one for it (a
// new connection does not subscribe the channel), but it may wait while
// go-redis re-establishes the connection. The other stops send nothing and
// never wait for the network.
//
// Watch returns once the server has confirmed the subscription (its reply
// to the SUBSCRIBE, or an earlier one for a channel already subscribed),
// so a release published after Watch returns is never missed while the
// connection lasts. When the connection fails, every watcher is woken,
// since releases may be lost; go-redis reconnects and resubscribes, and
// the watchers are woken again once the server has confirmed the
// resubscription, for the releases published while they were not
// subscribed. Wake-ups may therefore be spurious. Expiries are not
// reported.
//
// Watch returns when ctx ends, with an error matching ctx.Err(), if the
// client was created with ContextTimeoutEnabled (see the package
// documentation). It may wait past ctx while go-redis re-establishes the
// shared connection (for that attempt, which the client's DialTimeout and
// ReadTimeout bound), and behind another watch's SUBSCRIBE, which are sent
// one at a time.
//
// On a Cluster, the classic PUBLISH of the script is propagated to every
// node, so the connection may be to any node.
func (s *Store) Watch(ctx context.Context, key string) (<-chan struct{}, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	sub, err := s.hub.forKey(key)
	if err != nil {
		return nil, nil, fail(ctx, err)
	}
	c := make(chan struct{}, 1)
	stop, err := sub.listen(ctx, s.Channel(key), &listener{wake: c})
	if err != nil {
		return nil, nil, err
	}
	return c, stop, nil
}
