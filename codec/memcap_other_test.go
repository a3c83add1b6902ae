//go:build !linux

package codec_test

import "errors"

// capAddressSpace is a no-op here: the heap watchdog alone caps memory.
func capAddressSpace(uint64) error {
	return errors.New("no address-space cap on this system")
}
