//go:build !race

package codec_test

// raceEnabled reports whether the race detector is on: it reserves more
// address space than any address-space cap allows.
const raceEnabled = false
