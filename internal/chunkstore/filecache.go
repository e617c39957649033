package chunkstore

import (
	"container/list"
	"errors"
	"os"
	"sync"
)

// DefaultMaxOpenFiles is the open replica file limit of a fileStore when
// Config.MaxOpenFiles is 0.
const DefaultMaxOpenFiles = 1024

// fileState is a replica's open file as the cache sees it; guarded by
// fileCache.mu.
type fileState struct {
	f       File          // nil while closed
	opening chan struct{} // non-nil while one goroutine opens f; closed when done
	pins    int           // operations using f; a pinned file is never closed
	// writes counts completed writes to the file, synced those covered by
	// the last successful fdatasync: the file is clean (may be closed)
	// when they are equal.
	writes, synced uint64
	idle           *list.Element // in fileCache.idle: open, unpinned and clean
	allocated      int64         // f.Allocated() when f was last closed
	gone           bool          // replica closed: never reopen
}

// fileCache bounds the open replica files of a fileStore. Only idle files
// (open, unpinned, clean) are closed to make room, least recently used
// first; when none is idle the limit is exceeded until some become so.
// Closing a file with unsynced writes is avoided because the next Sync,
// on a new descriptor, might not learn of a writeback error of the old
// one.
type fileCache struct {
	fs    FS
	limit int

	mu   sync.Mutex
	open int       // open files plus slots reserved for files being opened
	idle list.List // of *fileReplica, most recently used at the front
}

// pinLocked marks st in use, taking it out of the idle list.
func (c *fileCache) pinLocked(st *fileState) {
	st.pins++
	if st.idle != nil {
		c.idle.Remove(st.idle)
		st.idle = nil
	}
}

// reserveLocked counts a file about to be opened and picks idle files to
// close so that the count stays within the limit. The caller closes the
// returned files before opening its own, so the process never holds more
// than the limit while every file is clean.
func (c *fileCache) reserveLocked() []File {
	c.open++
	return c.evictLocked()
}

func (c *fileCache) evictLocked() []File {
	var victims []File
	for c.open > c.limit && c.idle.Len() > 0 {
		r := c.idle.Remove(c.idle.Back()).(*fileReplica)
		st := &r.file
		st.idle = nil
		st.allocated = st.f.Allocated()
		victims = append(victims, st.f)
		st.f = nil
		c.open--
	}
	return victims
}

func closeFiles(files []File) {
	for _, f := range files {
		f.Close() // clean and read again only through a new descriptor
	}
}

// reserve makes room for a file that Create or Open is about to open and
// hand to adopt; unreserve undoes it when that fails.
func (c *fileCache) reserve() {
	c.mu.Lock()
	victims := c.reserveLocked()
	c.mu.Unlock()
	closeFiles(victims)
}

func (c *fileCache) unreserve() {
	c.mu.Lock()
	c.open--
	c.mu.Unlock()
}

// adopt gives the cache r's freshly opened, clean file, for which reserve
// was called.
func (c *fileCache) adopt(r *fileReplica, f File) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.file.f = f
	r.file.idle = c.idle.PushFront(r)
}

// acquire returns r's file, opening it if needed, pinned until release.
// The caller holds r.mu or r.syncMu, which close needs both of, so r is
// not closed meanwhile.
func (c *fileCache) acquire(r *fileReplica) (File, error) {
	st := &r.file
	for {
		c.mu.Lock()
		switch {
		case st.gone:
			c.mu.Unlock()
			return nil, ErrClosed
		case st.f != nil:
			c.pinLocked(st)
			f := st.f
			c.mu.Unlock()
			return f, nil
		case st.opening != nil:
			ch := st.opening
			c.mu.Unlock()
			<-ch
			continue
		}
		done := make(chan struct{})
		st.opening = done
		victims := c.reserveLocked()
		c.mu.Unlock()

		closeFiles(victims)
		f, err := c.fs.OpenFile(r.s.path(r.h), os.O_RDWR, 0)

		c.mu.Lock()
		st.opening = nil
		close(done)
		if err != nil {
			c.open--
			c.mu.Unlock()
			return nil, ioErr("reopen", r.h, err)
		}
		st.f = f
		c.pinLocked(st)
		c.mu.Unlock()
		return f, nil
	}
}

// release unpins r's file; wrote says the operation changed the file.
func (c *fileCache) release(r *fileReplica, wrote bool) {
	c.mu.Lock()
	if wrote {
		r.file.writes++
	}
	victims := c.unpinLocked(r)
	c.mu.Unlock()
	closeFiles(victims)
}

// writes returns the count of completed writes to r's file; a Sync that
// starts its fdatasync afterwards covers them.
func (c *fileCache) writes(r *fileReplica) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return r.file.writes
}

// releaseSync unpins r's file after a Sync that read writes() as w before
// writing and fdatasyncing. On success those writes are durable; on
// failure the Sync's own writes are not, unless the replica failed for
// good (then nothing will ever be synced and holding the file open is
// pointless).
func (c *fileCache) releaseSync(r *fileReplica, w uint64, err error) {
	c.mu.Lock()
	st := &r.file
	switch {
	case err == nil:
		st.synced = max(st.synced, w)
	case errors.Is(err, ErrFailed):
		st.synced = st.writes
	default:
		st.writes++
	}
	victims := c.unpinLocked(r)
	c.mu.Unlock()
	closeFiles(victims)
}

func (c *fileCache) unpinLocked(r *fileReplica) []File {
	st := &r.file
	st.pins--
	if st.pins == 0 && st.f != nil && st.writes == st.synced {
		st.idle = c.idle.PushFront(r)
	}
	return c.evictLocked()
}

// allocated returns the bytes r's file occupies on disk, without opening
// it: a closed file did not change since it was closed.
func (c *fileCache) allocated(r *fileReplica) int64 {
	c.mu.Lock()
	st := &r.file
	if st.gone {
		c.mu.Unlock()
		return 0
	}
	if st.f == nil {
		n := st.allocated
		c.mu.Unlock()
		return n
	}
	c.pinLocked(st)
	f := st.f
	c.mu.Unlock()
	n := f.Allocated()
	c.release(r, false)
	return n
}

// remove forgets r for good and returns its open file, if any, to close.
// The caller holds r.mu and r.syncMu, so no operation has it pinned.
func (c *fileCache) remove(r *fileReplica) File {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := &r.file
	st.gone = true
	if st.idle != nil {
		c.idle.Remove(st.idle)
		st.idle = nil
	}
	f := st.f
	if f != nil {
		st.f = nil
		c.open--
	}
	return f
}

// openFiles returns the number of replica files open (for tests).
func (c *fileCache) openFiles() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}
