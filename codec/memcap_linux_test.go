package codec_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// capAddressSpace limits the address space of this process to what it
// uses now plus headroom bytes, so that a larger allocation fails (the Go
// runtime then stops with "fatal error: out of memory") instead of taking
// the machine's memory.
func capAddressSpace(headroom uint64) error {
	used, err := addressSpace()
	if err != nil {
		return err
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &lim); err != nil {
		return err
	}
	lim.Cur = min(used+headroom, lim.Max)
	return syscall.Setrlimit(syscall.RLIMIT_AS, &lim)
}

// addressSpace returns the size of this process's address space (VmSize).
func addressSpace() (uint64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	s := bufio.NewScanner(bytes.NewReader(status))
	for s.Scan() {
		rest, ok := bytes.CutPrefix(s.Bytes(), []byte("VmSize:"))
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte("kB")))), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmSize: %w", err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmSize in /proc/self/status")
}
