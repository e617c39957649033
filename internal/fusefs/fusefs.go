package fusefs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/catena-io/catena/client"
)

// Errors.
var (
	// ErrConfig: the Config is unusable.
	ErrConfig = errors.New("fusefs: bad config")
)

// Defaults.
const (
	DefaultWriteBuffer  = 8 << 20
	DefaultReadAhead    = 4 << 20
	DefaultEntryTimeout = time.Second
	DefaultSessionTTL   = 30 * time.Second
	maxWrite            = 1 << 20
	rootInode           = 1
	blockSize           = 64 << 10
)

// Config configures a mount.
type Config struct {
	// Client is the cluster connection; its OpTimeout bounds how long an
	// operation waits for a lost master or chunkserver.
	Client *client.Client
	// Logger; nil discards.
	Logger *slog.Logger
	// EntryTimeout is how long the kernel caches names (default 1s);
	// AttrTimeout how long it caches attributes (default 0: every stat
	// asks, which close-to-open between hosts needs). Negative lookups are
	// never cached.
	EntryTimeout, AttrTimeout time.Duration
	// WriteBuffer is the write-back buffer per open file (default 8 MiB);
	// ReadAhead the sequential read size (default 4 MiB).
	WriteBuffer, ReadAhead int
	// Replication and ChunkSize of new files (0: cluster defaults).
	Replication int
	ChunkSize   int64
	// AllowOther lets other users than the mounting one use the mount.
	AllowOther bool
	// Debug logs every FUSE request.
	Debug bool
	// Metrics receives the mount's Prometheus collectors (nil: none are
	// gathered).
	Metrics prometheus.Registerer
	// SessionTTL is how long the master keeps this mount's orphans (files
	// unlinked while open here) after the mount stops renewing its
	// session, i.e. after it died (default 30s). Renewed every third.
	SessionTTL time.Duration
}

// Server is a mounted file system.
type Server struct {
	srv   *fuse.Server
	dir   string
	fsys  *fsys
	stop  chan struct{} // ends the session renewal
	ended sync.Once
}

// Mount mounts the namespace at dir and serves it until Unmount.
func Mount(dir string, cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("%w: no Client", ErrConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.EntryTimeout == 0 {
		cfg.EntryTimeout = DefaultEntryTimeout
	}
	if cfg.WriteBuffer <= 0 {
		cfg.WriteBuffer = DefaultWriteBuffer
	}
	if cfg.ReadAhead <= 0 {
		cfg.ReadAhead = DefaultReadAhead
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	fsys := &fsys{cfg: cfg, c: cfg.Client, log: cfg.Logger, open: map[uint64]*node{}, unheld: map[uint64]bool{}}
	for fsys.session == 0 {
		fsys.session = rand.Uint64()
	}
	if err := fsys.c.RenewMount(context.Background(), fsys.session, cfg.SessionTTL); err != nil {
		return nil, fmt.Errorf("fusefs: mount %s: open session: %w", dir, err)
	}
	root := &node{fsys: fsys, ino: rootInode}
	zero := time.Duration(0)
	opts := &fs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther: cfg.AllowOther,
			Options:    []string{"default_permissions"},
			// POSIX ACLs: the kernel checks them with the mode bits,
			// keeps them in step with chmod and applies directories'
			// default ACLs to what is created in them; they live in the
			// system.posix_acl_* xattrs, which the master checks too.
			EnableAcl: true,
			// The kernel leaves the umask to the mount (FUSE_DONT_MASK),
			// which passes it to the master: a directory's default ACL
			// replaces it, as on a local file system (see umask).
			ExtraCapabilities: fuse.CAP_DONT_MASK,
			MaxWrite:          maxWrite,
			MaxReadAhead:      maxWrite,
			FsName:            "catena",
			Name:              "catena",
			Debug:             cfg.Debug,
		},
		// Mode 0000 is a mode like any other: without this go-fuse
		// reports it as 0644 (0755 for directories).
		NullPermissions: true,
		EntryTimeout:    &cfg.EntryTimeout,
		AttrTimeout:     &cfg.AttrTimeout,
		NegativeTimeout: &zero,
		RootStableAttr:  &fs.StableAttr{Ino: rootInode, Mode: syscall.S_IFDIR},
	}
	// fs.Mount, with every request counted on its way in.
	srv, err := fuse.NewServer(newMetered(fs.NewNodeFS(root, opts), cfg.Metrics), dir, &opts.MountOptions)
	if err == nil {
		go srv.Serve()
		err = srv.WaitMount()
	}
	if err != nil {
		_ = fsys.c.EndMount(context.Background(), fsys.session)
		return nil, fmt.Errorf("fusefs: mount %s: %w", dir, err)
	}
	s := &Server{srv: srv, dir: dir, fsys: fsys, stop: make(chan struct{})}
	go s.renew()
	return s, nil
}

// renew keeps the mount session alive until the mount ends.
func (s *Server) renew() {
	t := time.NewTicker(s.fsys.cfg.SessionTTL / 3)
	defer t.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if err := s.fsys.c.RenewMount(context.Background(), s.fsys.session, s.fsys.cfg.SessionTTL); err != nil {
			s.fsys.log.Warn("fusefs: renew mount session", "err", err)
			continue
		}
		if time.Since(lastOK) >= s.fsys.cfg.SessionTTL {
			// The session may have expired, and this renewal opened an
			// empty one: hold the open files again.
			s.fsys.reholdAll(context.Background())
		}
		lastOK = time.Now()
		s.fsys.retryUnholds(context.Background())
	}
}

// end ends the session once the kernel has let go of the mount: every
// file is closed, so the orphans left are garbage.
func (s *Server) end() {
	s.ended.Do(func() {
		close(s.stop)
		if err := s.fsys.c.EndMount(context.Background(), s.fsys.session); err != nil {
			s.fsys.log.Warn("fusefs: end mount session (its orphans are reclaimed when it expires)", "err", err)
		}
	})
}

// Unmount unmounts the file system; it fails while files are busy.
func (s *Server) Unmount() error {
	if err := s.srv.Unmount(); err != nil {
		return err
	}
	s.srv.Wait()
	s.end()
	return nil
}

// Wait blocks until the file system is unmounted.
func (s *Server) Wait() {
	s.srv.Wait()
	s.end()
}

// fsys is the state shared by all nodes of a mount.
type fsys struct {
	cfg Config
	c   *client.Client
	log *slog.Logger

	mu sync.Mutex
	// session is the mount's session with the master (orphans).
	session uint64
	// open holds the node of every inode with an open file. A lookup
	// builds a fresh node that go-fuse discards when the kernel already
	// knows the inode: the attributes it returns must come from the node
	// that holds the open file (its size), found here.
	open map[uint64]*node
	// unheld holds inodes whose Unhold failed, retried by renew.
	unheld map[uint64]bool
	// holdMu serialises, per inode (striped), a Hold or Unhold RPC with
	// the decision to send it: a late Unhold must never overtake a newer
	// Hold of the same inode and leave an open file unheld.
	holdMu [64]sync.Mutex
}

func (x *fsys) holdLock(ino uint64) *sync.Mutex { return &x.holdMu[ino%uint64(len(x.holdMu))] }

// hold tells the master that this mount holds file ino open. A session
// the master no longer knows (it expired while the mount was cut off) is
// opened again first.
func (x *fsys) hold(ctx context.Context, ino uint64) error {
	l := x.holdLock(ino)
	l.Lock()
	defer l.Unlock()
	err := x.c.Hold(ctx, x.session, ino)
	if errors.Is(err, client.ErrNotFound) {
		if rerr := x.c.RenewMount(ctx, x.session, x.cfg.SessionTTL); rerr != nil {
			return rerr
		}
		err = x.c.Hold(ctx, x.session, ino)
	}
	if err == nil {
		x.mu.Lock()
		delete(x.unheld, ino) // an earlier unhold that failed: held again
		x.mu.Unlock()
	}
	return err
}

// unhold tells the master that this mount no longer holds ino open (an
// orphan nobody holds is deleted); a failure is retried with the next
// session renewal (until then an orphan only takes space). Nothing is
// sent when ino is open here again (its open holds it), nor, for a retry,
// when a Hold or an Unhold settled it meanwhile.
func (x *fsys) unhold(ctx context.Context, ino uint64, retry bool) {
	l := x.holdLock(ino)
	l.Lock()
	defer l.Unlock()
	x.mu.Lock()
	skip := x.open[ino] != nil || (retry && !x.unheld[ino])
	x.mu.Unlock()
	if skip {
		return
	}
	err := x.c.Unhold(ctx, x.session, ino)
	x.mu.Lock()
	defer x.mu.Unlock()
	if err != nil {
		x.log.Warn("fusefs: unhold (retried with the session renewal)", "inode", ino, "err", err)
		x.unheld[ino] = true
		return
	}
	delete(x.unheld, ino)
}

// retryUnholds retries the unholds that failed, except for files open
// again.
func (x *fsys) retryUnholds(ctx context.Context) {
	x.mu.Lock()
	inos := slices.Sorted(maps.Keys(x.unheld))
	x.mu.Unlock()
	for _, ino := range inos {
		x.unhold(ctx, ino, true)
	}
}

// reholdAll holds every file open here again: after a renewal that may
// have started a new, empty session (the old one expired while the mount
// was cut off from the masters), so that their last name can go while
// they are open. A file already reclaimed stays lost (its descriptors
// then fail).
func (x *fsys) reholdAll(ctx context.Context) {
	x.mu.Lock()
	inos := slices.Sorted(maps.Keys(x.open))
	x.mu.Unlock()
	for _, ino := range inos {
		if err := x.hold(ctx, ino); err != nil {
			x.log.Warn("fusefs: hold again after the session may have expired", "inode", ino, "err", err)
		}
	}
}

// openNode returns the node holding inode ino's open file, or nil.
func (x *fsys) openNode(ino uint64) *node {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.open[ino]
}

// errno maps a client error to the errno a kernel file system returns.
func errno(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, client.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, client.ErrExist):
		return syscall.EEXIST
	case errors.Is(err, client.ErrNotDir):
		return syscall.ENOTDIR
	case errors.Is(err, client.ErrIsDir):
		return syscall.EISDIR
	case errors.Is(err, client.ErrNotEmpty):
		return syscall.ENOTEMPTY
	case errors.Is(err, client.ErrReadOnly):
		return syscall.EROFS
	case errors.Is(err, client.ErrNoAttr):
		return syscall.ENODATA
	case errors.Is(err, client.ErrNameTooLong): // also ErrInvalid: first
		return syscall.ENAMETOOLONG
	case errors.Is(err, client.ErrFileTooBig): // also ErrInvalid: first
		return syscall.EFBIG
	case errors.Is(err, client.ErrPermission):
		return syscall.EACCES
	case errors.Is(err, client.ErrInvalid):
		return syscall.EINVAL
	case errors.Is(err, client.ErrNoSpace), errors.Is(err, client.ErrNoChunkservers):
		return syscall.ENOSPC
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	}
	return syscall.EIO
}

func typeBits(t client.NodeType) uint32 {
	switch t {
	case client.TypeDir:
		return syscall.S_IFDIR
	case client.TypeSymlink:
		return syscall.S_IFLNK
	case client.TypeFifo:
		return syscall.S_IFIFO
	case client.TypeCharDevice:
		return syscall.S_IFCHR
	case client.TypeBlockDevice:
		return syscall.S_IFBLK
	case client.TypeSocket:
		return syscall.S_IFSOCK
	}
	return syscall.S_IFREG
}

// specialType is the node type of a special file's S_IFMT bits.
func specialType(mode uint32) (client.NodeType, bool) {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO:
		return client.TypeFifo, true
	case syscall.S_IFCHR:
		return client.TypeCharDevice, true
	case syscall.S_IFBLK:
		return client.TypeBlockDevice, true
	case syscall.S_IFSOCK:
		return client.TypeSocket, true
	}
	return 0, false
}

// maxName is the longest name (statfs NameLen). The kernel passes FUSE
// names up to 1024 bytes; longer than maxName is ENAMETOOLONG here, before
// any master call (the master refuses them too).
const maxName = 255

func nameErr(names ...string) syscall.Errno {
	for _, n := range names {
		if len(n) > maxName {
			return syscall.ENAMETOOLONG
		}
	}
	return 0
}

func fillAttr(a *client.Attr, out *fuse.Attr) {
	out.Ino = a.Ino
	out.Mode = typeBits(a.Type) | a.Mode&0o7777
	out.Nlink = a.Nlink
	out.Owner = fuse.Owner{Uid: a.Uid, Gid: a.Gid}
	out.Size = uint64(a.Size)
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = blockSize
	out.Rdev = a.Rdev
	out.SetTimes(&a.Atime, &a.Mtime, &a.Ctime)
}

// umask is the umask of the process making the call on ctx, which the
// kernel leaves to the mount to apply (FUSE_DONT_MASK) because a default
// ACL on the parent replaces it. The FUSE request carries it, but go-fuse
// does not pass it on, so it is read from /proc/PID/status; when that
// fails (the process is gone, or its PID is not in this mount's PID
// namespace) it is the mount's own umask, and 022 when that is unknown
// too.
func umask(ctx context.Context) uint32 {
	if c, ok := fuse.FromContext(ctx); ok && c.Pid != 0 {
		if m, ok := umaskOf(strconv.FormatUint(uint64(c.Pid), 10)); ok {
			return m
		}
	}
	if m, ok := umaskOf("self"); ok {
		return m
	}
	return 0o022
}

// umaskOf reads the Umask line of /proc/PID/status.
func umaskOf(pid string) (uint32, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		if v, found := strings.CutPrefix(line, "Umask:"); found {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			return uint32(m) & 0o777, err == nil
		}
	}
	return 0, false
}

func caller(ctx context.Context) (uid, gid uint32) {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid, c.Gid
	}
	return 0, 0
}
