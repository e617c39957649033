package cluster

import (
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/catena-io/catena/internal/chunkstore"
)

// diskFaults are the toggles of one chunkserver's disk, read by the
// chunkstore.ErrorFS wrapped around its file system. They outlive restarts
// of the server, as a real disk's faults would.
type diskFaults struct {
	delay atomic.Int64 // nanoseconds added to every data write and sync
	full  atomic.Bool  // writes, allocations and truncations fail with ENOSPC
	// dead: the power is off; nothing more reaches the disk (EIO).
	dead atomic.Bool
	// mem is the in-memory disk of a Config.MemDisks cluster (nil: the
	// OS's); PowerCut replaces it by its crash clone.
	mem atomic.Pointer[chunkstore.MemFS]
}

// base is the file system under the toggles.
func (d *diskFaults) base() chunkstore.FS {
	if m := d.mem.Load(); m != nil {
		return m
	}
	return chunkstore.OSFS
}

// fs returns the chunkserver's file system: its disk behind the toggles.
func (d *diskFaults) fs() chunkstore.FS {
	return &chunkstore.ErrorFS{FS: d.base(), Inject: d.inject}
}

func (d *diskFaults) inject(op chunkstore.Op, name string, _ int64) error {
	if d.dead.Load() && op != chunkstore.OpRead && op != chunkstore.OpReadDir && op != chunkstore.OpStat {
		return &os.PathError{Op: "power cut", Path: name, Err: syscall.EIO}
	}
	switch op {
	case chunkstore.OpWrite, chunkstore.OpSync, chunkstore.OpAllocate:
		if dl := time.Duration(d.delay.Load()); dl > 0 {
			// The fault itself: a slow device, not a wait for an event.
			time.Sleep(dl)
		}
	}
	if !d.full.Load() {
		return nil
	}
	switch op {
	case chunkstore.OpWrite, chunkstore.OpAllocate, chunkstore.OpTruncate:
		return &os.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
	}
	return nil
}
