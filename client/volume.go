package client

import (
	"context"
	"errors"
	"google.golang.org/grpc"
	"io"
	"time"

	"github.com/catena-io/catena/api"
)

// VolumeInfo describes a block volume: a sparse device of fixed size, in a
// namespace of its own (volumes are not files and not listed by List).
type VolumeInfo struct {
	Name            string
	Inode           uint64
	Size            int64
	Replication     int
	ChunkSize       int64
	ModTime         time.Time
	AllocatedChunks int64 // chunks that hold data (0 for create/resize answers)
	ReadOnly        bool  // a snapshot (VOL@NAME)
	// SharedBytes and ExclusiveBytes: data (one replica's worth) in the
	// volume's chunks a snapshot or clone shares, and in its own (0 for
	// create, resize and clone answers).
	SharedBytes, ExclusiveBytes int64
}

// VolumeOptions configures CreateVolume.
type VolumeOptions struct {
	Replication int   // default DefaultReplication
	ChunkSize   int64 // default DefaultChunkSize
}

func volumeFromAPI(v *api.VolumeInfo) VolumeInfo {
	return VolumeInfo{Name: v.GetName(), Inode: v.GetInode(), Size: v.GetSize(), Replication: int(v.GetReplication()),
		ChunkSize: v.GetChunkSize(), ModTime: time.Unix(0, v.GetMtimeUnixNano()), AllocatedChunks: v.GetAllocatedChunks(),
		ReadOnly: v.GetReadOnly(), SharedBytes: v.GetSharedBytes(), ExclusiveBytes: v.GetExclusiveBytes()}
}

// callVolumes is callMaster for the Volumes service: same leader following
// and failover, same error classification.
func callVolumes[T any](ctx context.Context, c *Client, fn func(context.Context, api.VolumesClient) (T, error)) (T, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	return callLeader(ctx, c, func(ctx context.Context, cc *grpc.ClientConn) (T, error) {
		return fn(ctx, api.NewVolumesClient(cc))
	})
}

// CreateVolume creates a sparse volume of size bytes (a positive multiple of
// 512). It fails with ErrExist when the name is taken.
func (c *Client) CreateVolume(ctx context.Context, name string, size int64, opts VolumeOptions) (*VolumeInfo, error) {
	resp, err := callVolumes(ctx, c, func(ctx context.Context, v api.VolumesClient) (*api.CreateVolumeResponse, error) {
		return v.CreateVolume(ctx, &api.CreateVolumeRequest{Name: name, Size: size,
			Replication: uint32(max(opts.Replication, 0)), ChunkSize: opts.ChunkSize})
	})
	if err != nil {
		return nil, opError("create volume", name, err)
	}
	vi := volumeFromAPI(resp.GetInfo())
	return &vi, nil
}

// ListVolumes returns every volume, sorted by name.
func (c *Client) ListVolumes(ctx context.Context) ([]VolumeInfo, error) {
	resp, err := callVolumes(ctx, c, func(ctx context.Context, v api.VolumesClient) (*api.ListVolumesResponse, error) {
		return v.ListVolumes(ctx, &api.ListVolumesRequest{})
	})
	if err != nil {
		return nil, opError("list volumes", "", err)
	}
	out := make([]VolumeInfo, 0, len(resp.GetVolumes()))
	for _, v := range resp.GetVolumes() {
		out = append(out, volumeFromAPI(v))
	}
	return out, nil
}

// VolumeInfo returns one volume's info; ErrNotFound when there is none.
func (c *Client) VolumeInfo(ctx context.Context, name string) (*VolumeInfo, error) {
	resp, err := callVolumes(ctx, c, func(ctx context.Context, v api.VolumesClient) (*api.GetVolumeResponse, error) {
		return v.GetVolume(ctx, &api.GetVolumeRequest{Name: name})
	})
	if err != nil {
		return nil, opError("volume info", name, err)
	}
	vi := volumeFromAPI(resp.GetInfo())
	return &vi, nil
}

// RemoveVolume deletes a volume and releases its chunks (the chunkservers
// delete the replicas lazily). Volumes open elsewhere fail afterwards.
func (c *Client) RemoveVolume(ctx context.Context, name string) error {
	_, err := callVolumes(ctx, c, func(ctx context.Context, v api.VolumesClient) (*api.RemoveVolumeResponse, error) {
		return v.RemoveVolume(ctx, &api.RemoveVolumeRequest{Name: name})
	})
	return opError("remove volume", name, err)
}

// ResizeVolume grows a volume to size; shrinking is ErrInvalid. Volumes
// already open keep their old size until reopened.
func (c *Client) ResizeVolume(ctx context.Context, name string, size int64) (*VolumeInfo, error) {
	resp, err := callVolumes(ctx, c, func(ctx context.Context, v api.VolumesClient) (*api.ResizeVolumeResponse, error) {
		return v.ResizeVolume(ctx, &api.ResizeVolumeRequest{Name: name, Size: size})
	})
	if err != nil {
		return nil, opError("resize volume", name, err)
	}
	vi := volumeFromAPI(resp.GetInfo())
	return &vi, nil
}

// Volume is an open volume: a block device of fixed size whose I/O goes
// through the same chunk path as File (chain writes to the head, reads from
// the tail, transparent retries). Its size is fixed at open, so I/O never
// asks the master except to allocate a chunk or reload a chain. Safe for
// concurrent use. Every acknowledged write or zero is durable on every
// replica, so Flush has nothing to do.
type Volume struct {
	f    *File
	info VolumeInfo
	w    *writer // OpenVolumeWriter's session (overlay.go)
}

// OpenVolume opens a volume for block I/O.
func (c *Client) OpenVolume(ctx context.Context, name string) (*Volume, error) {
	vi, err := c.VolumeInfo(ctx, name)
	if err != nil {
		return nil, err
	}
	f := newFile(c, "volume "+name, FileInfo{Inode: vi.Inode, Name: name, Size: vi.Size,
		Replication: vi.Replication, ChunkSize: vi.ChunkSize, ModTime: vi.ModTime})
	// The chunk map now: a caller who may not open the volume (one owned
	// by root, mode 0600, and a client certificate of another uid) hears
	// it here, not as an I/O error at its first read or write.
	if err := f.Reload(ctx); err != nil {
		f.Close()
		if errors.Is(err, ErrPermission) {
			return nil, opError("open", "volume "+name, detailf(ErrPermission, "this certificate's user may not use it (volumes are root's: use an admin certificate, or one issued with --uid 0:0)"))
		}
		return nil, err
	}
	return &Volume{f: f, info: *vi}, nil
}

// Info returns the volume's info as of OpenVolume.
func (v *Volume) Info() VolumeInfo { return v.info }

// Size returns the volume size in bytes.
func (v *Volume) Size() int64 { return v.info.Size }

// ReadOnly reports whether the volume is a snapshot (VOL@NAME): its
// writes fail with ErrReadOnly.
func (v *Volume) ReadOnly() bool { return v.info.ReadOnly }

func (v *Volume) check(op string, off, n int64) error {
	if off < 0 || n < 0 || off > v.info.Size || n > v.info.Size-off {
		return opError(op, v.f.path, detailf(ErrInvalid, "range [%d, +%d) outside the volume (size %d)", off, n, v.info.Size))
	}
	return nil
}

// ReadAt reads len(p) bytes at off; never-written ranges read as zeros. A
// range past the end is ErrInvalid.
func (v *Volume) ReadAt(p []byte, off int64) (int, error) {
	return v.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext is ReadAt bounded by ctx.
func (v *Volume) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if err := v.check("read", off, int64(len(p))); err != nil {
		return 0, err
	}
	n, err := v.f.ReadAtContext(ctx, p, off)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	return n, err
}

// WriteAt writes p at off; the bytes are on every replica when it returns.
func (v *Volume) WriteAt(p []byte, off int64) (int, error) {
	return v.WriteAtContext(context.Background(), p, off)
}

// WriteAtContext is WriteAt bounded by ctx.
func (v *Volume) WriteAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if err := v.check("write", off, int64(len(p))); err != nil {
		return 0, err
	}
	if err := v.fencedErr(); err != nil {
		return 0, err
	}
	n, err := v.f.WriteAtContext(ctx, p, off)
	return n, v.writeErr(err)
}

// writeErr is err, or ErrFenced when a writer's write failed because its
// session was fenced (its capabilities allow no write any more, or its
// volume is gone).
func (v *Volume) writeErr(err error) error {
	if err == nil || v.w == nil || !(errors.Is(err, ErrPermission) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrFenced)) {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if rerr := v.CheckSession(ctx); errors.Is(rerr, ErrFenced) {
		return rerr
	}
	return err
}

// Zero makes [off, off+n) read as zeros and frees its space: each chunk gets
// a ZERO update (the replicas punch holes); chunks never allocated are left
// alone. Durable on every replica when it returns.
func (v *Volume) Zero(off, n int64) error { return v.ZeroContext(context.Background(), off, n) }

// Trim is Zero: a discarded range of a Catena volume reads as zeros.
func (v *Volume) Trim(off, n int64) error { return v.ZeroContext(context.Background(), off, n) }

// ZeroContext is Zero bounded by ctx.
func (v *Volume) ZeroContext(ctx context.Context, off, n int64) error {
	if err := v.check("zero", off, n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if err := v.fencedErr(); err != nil {
		return err
	}
	f := v.f
	if f.isClosed() {
		return opError("zero", f.path, ErrClosed)
	}
	ctx, cancel := f.c.opContext(ctx)
	defer cancel()
	// One piece per chunk: a ZERO carries no data, so MaxIOSize does not apply.
	var pieces []piece
	for pos := off; pos < off+n; {
		index, within := pos/f.chunkSize, pos%f.chunkSize
		size := min(f.chunkSize-within, off+n-pos)
		pieces = append(pieces, piece{index: index, chunkOff: within, n: int(size)})
		pos += size
	}
	_, err := f.run(ctx, pieces, func(ctx context.Context, pc piece) error {
		req := &api.WriteRequest{
			Kind:      api.UpdateKind_ZERO,
			Offset:    pc.chunkOff,
			Length:    int64(pc.n),
			ClientId:  f.c.clientID,
			RequestId: f.c.reqSeq.Add(1),
		}
		_, err := f.update(ctx, pc.index, req, false)
		return err
	})
	return v.writeErr(opError("zero", f.path, err))
}

// Flush returns at once: every acknowledged write is already durable on
// every replica of its chain; unless the client has a flush barrier
// (SetFlushBarrier), which it then waits for.
func (v *Volume) Flush() error {
	if v.f.isClosed() {
		return opError("flush", v.f.path, ErrClosed)
	}
	if b := v.f.c.flushBarrier.Load(); b != nil {
		if err := (*b)(context.Background(), v.info.Name); err != nil {
			return opError("flush", v.f.path, err)
		}
	}
	return nil
}

// Close closes the volume; later I/O fails with ErrClosed.
func (v *Volume) Close() error {
	v.closeWriter()
	return v.f.Close()
}
