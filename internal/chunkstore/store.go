package chunkstore

import "errors"

// Errors returned by the store.
var (
	ErrNotFound = errors.New("chunkstore: replica not found")
	ErrExists   = errors.New("chunkstore: replica exists")
	ErrCorrupt  = errors.New("chunkstore: checksum mismatch")
	ErrRange    = errors.New("chunkstore: range outside the chunk")
	ErrNoSpace  = errors.New("chunkstore: no space left on device")
	ErrClosed   = errors.New("chunkstore: closed")
)

// BlockSize is the checksum granularity: one CRC32C per 64 KiB block.
const BlockSize = 64 << 10

// Handle identifies a chunk.
type Handle uint64

// Meta is a replica's metadata, persisted in its file header.
type Meta struct {
	Handle     Handle
	Epoch      uint64
	ChunkSize  int64
	Chain      []uint64 // member server ids, head first
	AppliedSeq uint64   // highest sequence number applied (durable after Sync)
}

// Store keeps the replicas of one chunkserver data directory.
// Safe for concurrent use.
type Store struct{}

// Open opens (creating if needed) the store in dir on fs, loading every
// replica's header.
func Open(fs FS, dir string) (*Store, error) { panic("unimplemented") }

// Create makes a new, empty replica, durable before it returns.
// ErrExists if the handle is present.
func (s *Store) Create(m Meta) (*Replica, error) { panic("unimplemented") }

// Get returns the replica of h, or ErrNotFound.
func (s *Store) Get(h Handle) (*Replica, error) { panic("unimplemented") }

// List returns the metadata of every replica.
func (s *Store) List() []Meta { panic("unimplemented") }

// Delete removes a replica and its file.
func (s *Store) Delete(h Handle) error { panic("unimplemented") }

// UsedBytes returns the bytes allocated on disk by all replicas.
func (s *Store) UsedBytes() int64 { panic("unimplemented") }

// Close closes every replica file.
func (s *Store) Close() error { panic("unimplemented") }

// Replica is one chunk replica. Safe for concurrent use; a write and a read
// of overlapping ranges exclude each other (a read never sees half a write).
type Replica struct{}

// Meta returns the replica's current metadata.
func (r *Replica) Meta() Meta { panic("unimplemented") }

// WriteAt writes p at off, updating block checksums. Not durable until Sync.
func (r *Replica) WriteAt(p []byte, off int64) error { panic("unimplemented") }

// Zero makes [off, off+n) read as zeros, punching a hole where whole file
// system blocks are covered. Not durable until Sync.
func (r *Replica) Zero(off, n int64) error { panic("unimplemented") }

// SetApplied records the highest applied sequence number; durable at the
// next Sync.
func (r *Replica) SetApplied(seq uint64) { panic("unimplemented") }

// SetConfig records a new epoch and chain; durable at the next Sync.
func (r *Replica) SetConfig(epoch uint64, chain []uint64) { panic("unimplemented") }

// Sync makes every completed WriteAt, Zero, SetApplied and SetConfig durable
// with one header write and one fdatasync.
func (r *Replica) Sync() error { panic("unimplemented") }

// ReadAt reads len(p) bytes at off, verifying the checksum of every block it
// touches; a mismatch returns ErrCorrupt and no data. Never-written ranges
// read as zeros.
func (r *Replica) ReadAt(p []byte, off int64) (int, error) { panic("unimplemented") }

// Verify checks every block's checksum (scrubbing).
func (r *Replica) Verify() error { panic("unimplemented") }

// UsedBytes returns the bytes the replica's data occupies on disk.
func (r *Replica) UsedBytes() int64 { panic("unimplemented") }
