package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Publish sends msg on channel (cache.Bus): PUBLISH, or on a Cluster
// SPUBLISH, which the Cluster delivers within the shard that serves the
// channel's hash slot. On a Ring it goes to the shard of the channel name,
// taken as a key, where Subscribe listens. It is a plain command: go-redis
// may send it again when a reply is lost, so a message may be delivered
// twice. The channel name is used as it is (Options.ChannelPrefix is the
// prefix of Watch's channels only).
func (s *Store) Publish(ctx context.Context, channel string, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	if c, ok := s.client.(*redis.ClusterClient); ok {
		err = c.SPublish(ctx, channel, msg).Err()
	} else {
		err = s.client.Publish(ctx, channel, msg).Err()
	}
	if err != nil {
		return fail(ctx, err)
	}
	return nil
}

// Subscribe delivers the messages published on channel to handle
// (cache.Bus), until the returned stop function is called.
//
// The subscription shares the store's pub/sub connection with Watch (on a
// Ring, the connection to the shard of the channel name); on a Cluster it
// is a sharded subscription (SSUBSCRIBE, Redis 7) on a connection of its
// own to the node that serves the channel's hash slot, shared by the
// store's channels of that slot. Subscribe returns once the server has
// confirmed the subscription: every message published after it returns is
// delivered while the connection lasts. handle may be called before
// Subscribe returns, for a message published just before.
//
// handle and state are called from the goroutine that reads the
// connection, one call at a time, so they must return quickly and must
// not call stop or Subscribe. handle gets a slice of its own. When the
// connection fails, or the health check finds it silent, or the server
// ends the subscription (a Cluster moved the channel's slot), state(false)
// is called: messages published from then on are lost, until state(true)
// says that go-redis has reconnected and resubscribed, before any message
// published since is delivered. Close calls state(false) for the
// subscriptions still in place, and no call is made after Close returns.
// state may be nil; Subscribe panics if handle is nil. The stop function
// of the last subscription of a channel sends an UNSUBSCRIBE, as Watch's
// does.
//
// Subscribe returns when ctx ends, with an error matching ctx.Err(), as
// Watch does.
func (s *Store) Subscribe(ctx context.Context, channel string, handle func(msg []byte), state func(connected bool)) (stop func(), err error) {
	if handle == nil {
		panic("redisstore: Subscribe with a nil handle")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sub, err := s.hub.forBus(channel)
	if err != nil {
		return nil, fail(ctx, err)
	}
	return sub.listen(ctx, channel, &listener{bus: &busListener{handle: handle, state: state}})
}
