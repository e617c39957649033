package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/clock"
)

// Errors. Each wraps the io/fs error of the same meaning where there is one,
// so errors.Is(err, fs.ErrNotExist) works too.
var (
	ErrNotFound = wrapErr("no such file or directory", fs.ErrNotExist)
	ErrExist    = wrapErr("file exists", fs.ErrExist)
	ErrNotDir   = errors.New("not a directory")
	ErrIsDir    = errors.New("is a directory")
	ErrNotEmpty = errors.New("directory not empty")
	ErrReadOnly = errors.New("read-only snapshot")
	// ErrFenced: this writer of a volume may no longer write it (the
	// volume was promoted over, the overlay detached, or another writer
	// took it over).
	ErrFenced            = errors.New("writer fenced")
	ErrInvalid           = wrapErr("invalid argument", fs.ErrInvalid)
	ErrNoChunkservers    = errors.New("not enough chunkservers available")
	ErrMasterUnreachable = errors.New("master unreachable")
	ErrStaleEpoch        = errors.New("stale chain epoch")
	ErrCorrupt           = errors.New("data corrupt on every replica")
	ErrNoSpace           = errors.New("no space left on device")
	ErrClosed            = wrapErr("file already closed", fs.ErrClosed)
	// ErrNameTooLong: a name over 255 bytes or a path over 4096; it is
	// also ErrInvalid.
	ErrNameTooLong = wrapErr("file name too long", ErrInvalid)
	// ErrFileTooBig: a size or write past MaxFileSize; it is also
	// ErrInvalid.
	ErrFileTooBig = wrapErr("file too large", ErrInvalid)
	// ErrPermission: the caller's certificate does not allow the call.
	ErrPermission = wrapErr("permission denied", fs.ErrPermission)
)

// MaxFileSize is the largest size a file may have (1 PiB): a write or
// truncate past it fails with ErrFileTooBig.
const MaxFileSize = 1 << 50

type wrapped struct {
	msg string
	is  error
}

func (e *wrapped) Error() string        { return e.msg }
func (e *wrapped) Is(target error) bool { return target == e.is }

func wrapErr(msg string, is error) error { return &wrapped{msg, is} }

// DetailError is an error of a known kind (one of the sentinels above)
// with the detail that explains this occurrence, as the server or the
// client gave it: "not enough chunkservers available: need 3
// chunkservers, 1 alive". errors.Is(err, Kind) holds. A program that shows
// errors to people finds it with errors.As and may print it alone,
// without the operation context wrapped around it.
type DetailError struct {
	Kind   error
	Detail string
}

func (e *DetailError) Error() string { return e.Kind.Error() + ": " + e.Detail }
func (e *DetailError) Unwrap() error { return e.Kind }

// detailf returns a *DetailError of kind with a formatted detail.
func detailf(kind error, format string, args ...any) error {
	return &DetailError{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

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
	// Dialer, when set, opens every connection the client makes (to masters
	// and chunkservers); nil uses the default TCP dialer. The fault-injection
	// harness passes one that can cut the network.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// TLSDir, when set, is a TLS directory (catena admin cert issue: the
	// cluster CA's certificate and a client or admin certificate): every
	// connection is then mutual TLS. Empty: plain TCP.
	TLSDir string
	// Clock times the waits between retries (nil: the real clock). Tests
	// in this module pass internal/clock's Fake, or a clock whose timers
	// are short. Deadlines (OpTimeout, per attempt) are the context's,
	// on the real clock.
	Clock clock.Clock
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
	Uid, Gid    uint32 // owner and group
	ReadOnly    bool   // in a snapshot: every change fails with ErrReadOnly
}

// Server is a chunkserver in a chain.
type Server struct {
	ID   uint64
	Addr string
	Name string // its human name (catena chunkserver --name), "" if it has none
}

// ChunkInfo describes one allocated chunk of a file.
type ChunkInfo struct {
	Index  int64
	Handle uint64
	Epoch  uint64
	Chain  []Server // head first

	size   int64           // the chunk's size, as the master gave it (0: not given)
	shared bool            // shared with a snapshot or clone: a write forks it first (AllocateChunk)
	cap    *api.Capability // the master's grant, shown with every Read and Write
}

// MasterStatus, ChunkserverStatus and Status describe the cluster.
type MasterStatus struct {
	ID     string
	Addr   string
	Leader bool
}

type ChunkserverStatus struct {
	ID            uint64
	Name          string // its human name (catena chunkserver --name)
	Addr          string
	Alive         bool
	CapacityBytes int64
	FreeBytes     int64
	UsedBytes     int64
	Labels        map[string]string
	Replicas      uint64
	LastHeartbeat time.Time
	Draining      bool   // leaving (catena admin chunkserver drain)
	Chains        uint64 // chunks whose chain it is in (0: a drain is done)
}

type Status struct {
	Masters               []MasterStatus
	Chunkservers          []ChunkserverStatus
	ChunksTotal           uint64
	ChunksUnderReplicated uint64
	ChunksOverReplicated  uint64 // chains longer than their factor, being trimmed
	ChunksReReplicating   uint64 // repairs in progress
	ChunksLost            uint64 // no live replica
	// SharedBytes and ExclusiveBytes: data (one replica's worth) in chunks
	// that snapshots or clones share (counted once), and in the others.
	SharedBytes, ExclusiveBytes int64
	RepairsDone                 uint64 // since the master became leader
	RepairedBytes               int64  // since the master became leader
	Files                       uint64
	Directories                 uint64
	// Problems are chunks whose repair cannot progress or whose data is
	// damaged, with why and the files they belong to (at most 100).
	Problems []ChunkProblem
}

// ChunkProblem is one chunk that needs attention.
type ChunkProblem struct {
	Handle     uint64
	Reason     string
	LostBlocks []int64 // 64 KiB blocks that verify on no live replica
	Paths      []string
}

// CreateOptions configures Create.
type CreateOptions struct {
	Mode        os.FileMode // default 0644
	Replication int         // default DefaultReplication
	ChunkSize   int64       // default DefaultChunkSize; power of two in [1 MiB, 1 GiB]
	Overwrite   bool        // replace an existing file instead of ErrExist
}
