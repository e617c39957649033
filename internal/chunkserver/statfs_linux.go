package chunkserver

import "syscall"

// diskSpace returns the capacity and the space available to unprivileged
// users of the file system holding dir (0, 0 when unknown).
func diskSpace(dir string) (capacity, free int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize
}
