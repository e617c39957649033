package client

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"time"
)

// Errors. Each wraps the io/fs error of the same meaning where there is one,
// so errors.Is(err, fs.ErrNotExist) works too.
var (
	ErrNotFound          = wrapErr("no such file or directory", fs.ErrNotExist)
	ErrExist             = wrapErr("file exists", fs.ErrExist)
	ErrNotDir            = errors.New("not a directory")
	ErrIsDir             = errors.New("is a directory")
	ErrNotEmpty          = errors.New("directory not empty")
	ErrInvalid           = wrapErr("invalid argument", fs.ErrInvalid)
	ErrNoChunkservers    = errors.New("not enough chunkservers available")
	ErrMasterUnreachable = errors.New("master unreachable")
	ErrStaleEpoch        = errors.New("stale chain epoch")
	ErrCorrupt           = errors.New("data corrupt on every replica")
	ErrNoSpace           = errors.New("no space left on device")
	ErrClosed            = wrapErr("file already closed", fs.ErrClosed)
)

type wrapped struct {
	msg string
	is  error
}

func (e *wrapped) Error() string        { return e.msg }
func (e *wrapped) Is(target error) bool { return target == e.is }

func wrapErr(msg string, is error) error { return &wrapped{msg, is} }

// Defaults.
const (
	DefaultMaster      = "127.0.0.1:7070"
	DefaultReplication = 3
	DefaultChunkSize   = 64 << 20
)

// Config configures a Client.
type Config struct {
	// Masters lists master addresses; any of them, the client follows the
	// leader. Empty means DefaultMaster.
	Masters []string
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// OpTimeout bounds one operation including its retries (default 30s).
	OpTimeout time.Duration
	// MaxIOSize is the largest single chunkserver request (default 1 MiB).
	MaxIOSize int
	// IOConcurrency is the number of requests a File keeps in flight for one
	// large read or write (default 8).
	IOConcurrency int
}

// FileInfo describes a file or directory.
type FileInfo struct {
	Inode       uint64
	Name        string
	Path        string
	IsDir       bool
	Mode        os.FileMode // permission bits, plus os.ModeDir for directories
	Size        int64
	ModTime     time.Time
	Replication int
	ChunkSize   int64
}

// Server is a chunkserver in a chain.
type Server struct {
	ID   uint64
	Addr string
}

// ChunkInfo describes one allocated chunk of a file.
type ChunkInfo struct {
	Index  int64
	Handle uint64
	Epoch  uint64
	Chain  []Server // head first
}

// MasterStatus, ChunkserverStatus and Status describe the cluster.
type MasterStatus struct {
	ID     string
	Addr   string
	Leader bool
}

type ChunkserverStatus struct {
	ID            uint64
	Addr          string
	Alive         bool
	CapacityBytes int64
	FreeBytes     int64
	UsedBytes     int64
	Labels        map[string]string
	Replicas      uint64
	LastHeartbeat time.Time
}

type Status struct {
	Masters               []MasterStatus
	Chunkservers          []ChunkserverStatus
	ChunksTotal           uint64
	ChunksUnderReplicated uint64
	Files                 uint64
	Directories           uint64
}

// CreateOptions configures Create.
type CreateOptions struct {
	Mode        os.FileMode // default 0644
	Replication int         // default DefaultReplication
	ChunkSize   int64       // default DefaultChunkSize; power of two in [1 MiB, 1 GiB]
	Overwrite   bool        // replace an existing file instead of ErrExist
}

// Client is a connection to a Catena cluster. Safe for concurrent use.
type Client struct{}

func New(cfg Config) (*Client, error) { panic("unimplemented") }
func (c *Client) Close() error        { panic("unimplemented") }
func (c *Client) Create(ctx context.Context, path string, o CreateOptions) (*File, error) {
	panic("unimplemented")
}
func (c *Client) Open(ctx context.Context, path string) (*File, error)     { panic("unimplemented") }
func (c *Client) Stat(ctx context.Context, path string) (*FileInfo, error) { panic("unimplemented") }

// StatChunks returns the file's info and its allocated chunks.
func (c *Client) StatChunks(ctx context.Context, path string) (*FileInfo, []ChunkInfo, error) {
	panic("unimplemented")
}
func (c *Client) ReadDir(ctx context.Context, path string) ([]FileInfo, error) {
	panic("unimplemented")
}
func (c *Client) Mkdir(ctx context.Context, path string, mode os.FileMode) error {
	panic("unimplemented")
}
func (c *Client) MkdirAll(ctx context.Context, path string, mode os.FileMode) error {
	panic("unimplemented")
}
func (c *Client) Rename(ctx context.Context, src, dst string) error { panic("unimplemented") }
func (c *Client) Remove(ctx context.Context, path string) error     { panic("unimplemented") }
func (c *Client) RemoveAll(ctx context.Context, path string) error  { panic("unimplemented") }
func (c *Client) Status(ctx context.Context) (*Status, error)       { panic("unimplemented") }

// File is an open file. ReadAt and WriteAt are safe for concurrent use.
// Writes are durable on every replica when WriteAt returns; the new size is
// reported to the master on Sync or Close (close-to-open).
type File struct{}

func (f *File) Name() string                             { panic("unimplemented") }
func (f *File) Size() int64                              { panic("unimplemented") }
func (f *File) Stat() (*FileInfo, error)                 { panic("unimplemented") }
func (f *File) ReadAt(p []byte, off int64) (int, error)  { panic("unimplemented") }
func (f *File) WriteAt(p []byte, off int64) (int, error) { panic("unimplemented") }
func (f *File) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	panic("unimplemented")
}
func (f *File) WriteAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	panic("unimplemented")
}
func (f *File) Truncate(ctx context.Context, size int64) error { panic("unimplemented") }
func (f *File) Sync() error                                    { panic("unimplemented") }
func (f *File) Close() error                                   { panic("unimplemented") }
