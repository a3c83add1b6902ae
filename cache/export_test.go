package cache

// Hooks for the tests of package cache_test.

// LocalOn reports whether c's local tier serves values (it has subscribed
// to its bus, and the bus is not down past MaxStaleness).
func LocalOn[K comparable, V any](c *Cache[K, V]) bool { return c.local != nil && !c.local.off.Load() }

// CloseLocal stops c's local tier, leaving the store open.
func CloseLocal[K comparable, V any](c *Cache[K, V]) {
	if c.local != nil {
		c.local.close()
	}
}

// LocalSubscribed returns a channel closed once c's local tier has
// subscribed to its bus (and decided whether to serve values).
func LocalSubscribed[K comparable, V any](c *Cache[K, V]) <-chan struct{} { return c.local.exited }
