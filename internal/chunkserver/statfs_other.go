//go:build !linux

package chunkserver

// diskSpace is unknown off Linux.
func diskSpace(string) (capacity, free int64) { return 0, 0 }
