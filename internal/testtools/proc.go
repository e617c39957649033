package testtools

import (
	"os"
	"strconv"
	"strings"
)

// ProcStatus returns a size field of /proc/self/status (VmRSS, VmHWM, ...)
// in bytes; 0 when unknown (not Linux).
func ProcStatus(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				k, _ := strconv.ParseUint(f[0], 10, 64)
				return k << 10
			}
		}
	}
	return 0
}

// ResetPeakRSS starts the process's peak resident size (VmHWM) afresh
// from its current size, so that a measurement's peak is its own; false
// when the kernel does not allow it.
func ResetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}
