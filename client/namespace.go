package client

import (
	"context"
	"errors"
	"os"
	"sort"
	"time"

	"github.com/catena-io/catena/api"
)

func fileInfoFromAPI(fi *api.FileInfo) FileInfo {
	if fi == nil {
		return FileInfo{}
	}
	out := FileInfo{
		Inode:       fi.GetInode(),
		Name:        fi.GetName(),
		Path:        fi.GetPath(),
		IsDir:       fi.GetType() == api.FileType_DIRECTORY,
		Mode:        os.FileMode(fi.GetMode()) & os.ModePerm,
		Size:        fi.GetSize(),
		Replication: int(fi.GetReplication()),
		ChunkSize:   fi.GetChunkSize(),
		Uid:         fi.GetUid(),
		Gid:         fi.GetGid(),
		ReadOnly:    fi.GetReadOnly(),
	}
	if out.IsDir {
		out.Mode |= os.ModeDir
	}
	if ns := fi.GetMtimeUnixNano(); ns != 0 {
		out.ModTime = time.Unix(0, ns)
	}
	return out
}

func chunkInfoFromAPI(ci *api.ChunkInfo) ChunkInfo {
	out := ChunkInfo{Index: ci.GetIndex(), Handle: ci.GetHandle(), Epoch: ci.GetEpoch(), size: ci.GetChunkSize(), cap: ci.GetCapability(), shared: ci.GetShared()}
	for _, s := range ci.GetChain() {
		out.Chain = append(out.Chain, Server{ID: s.GetId(), Addr: s.GetAddr(), Name: s.GetName()})
	}
	return out
}

// Create creates the file at path (replacing it when o.Overwrite) and opens it.
func (c *Client) Create(ctx context.Context, path string, o CreateOptions) (*File, error) {
	mode := o.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	if o.Replication < 0 || o.ChunkSize < 0 {
		return nil, opError("create", path, ErrInvalid)
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	resp, err := callMaster(ctx, c, func(ctx context.Context, m api.MasterClient) (*api.CreateResponse, error) {
		return m.Create(ctx, &api.CreateRequest{
			Path:        path,
			Mode:        uint32(mode),
			Replication: uint32(o.Replication),
			ChunkSize:   o.ChunkSize,
			Overwrite:   o.Overwrite,
		})
	})
	if err != nil {
		return nil, opError("create", path, err)
	}
	return newFile(c, path, fileInfoFromAPI(resp.GetInfo())), nil
}

// Open opens the file at path for reading and writing. The File's size is
// the size the master reports now (close-to-open) plus its own writes.
func (c *Client) Open(ctx context.Context, path string) (*File, error) {
	fi, err := c.lookup(ctx, "open", path, false)
	if err != nil {
		return nil, err
	}
	if fi.IsDir {
		return nil, opError("open", path, ErrIsDir)
	}
	return newFile(c, path, *fi), nil
}

// Stat returns the info of the file or directory at path.
func (c *Client) Stat(ctx context.Context, path string) (*FileInfo, error) {
	return c.lookup(ctx, "stat", path, false)
}

func (c *Client) lookup(ctx context.Context, op, path string, withChunks bool) (*FileInfo, error) {
	fi, _, err := c.lookupChunks(ctx, op, path, withChunks)
	return fi, err
}

func (c *Client) lookupChunks(ctx context.Context, op, path string, withChunks bool) (*FileInfo, []ChunkInfo, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	resp, err := callMaster(ctx, c, func(ctx context.Context, m api.MasterClient) (*api.LookupResponse, error) {
		return m.Lookup(ctx, &api.LookupRequest{Path: path, WithChunks: withChunks})
	})
	if err != nil {
		return nil, nil, opError(op, path, err)
	}
	fi := fileInfoFromAPI(resp.GetInfo())
	var chunks []ChunkInfo
	for _, ci := range resp.GetChunks() {
		chunks = append(chunks, chunkInfoFromAPI(ci))
	}
	sort.Slice(chunks, func(i, j int) bool { return chunks[i].Index < chunks[j].Index })
	return &fi, chunks, nil
}

// StatChunks returns the file's info and its allocated chunks, by index.
func (c *Client) StatChunks(ctx context.Context, path string) (*FileInfo, []ChunkInfo, error) {
	return c.lookupChunks(ctx, "stat", path, true)
}

// ReadDir returns the entries of the directory at path, sorted by name.
func (c *Client) ReadDir(ctx context.Context, path string) ([]FileInfo, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	var out []FileInfo
	for after := ""; ; {
		resp, err := callMaster(ctx, c, func(ctx context.Context, m api.MasterClient) (*api.ListResponse, error) {
			return m.List(ctx, &api.ListRequest{Path: path, StartAfter: after})
		})
		if err != nil {
			return nil, opError("readdir", path, err)
		}
		for _, e := range resp.GetEntries() {
			out = append(out, fileInfoFromAPI(e))
		}
		if !resp.GetMore() || len(resp.GetEntries()) == 0 {
			break
		}
		after = out[len(out)-1].Name
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Mkdir creates the directory path; its parent must exist.
func (c *Client) Mkdir(ctx context.Context, path string, mode os.FileMode) error {
	return c.mkdir(ctx, path, mode, false)
}

// MkdirAll creates path and any missing parents; an existing directory is
// not an error.
func (c *Client) MkdirAll(ctx context.Context, path string, mode os.FileMode) error {
	err := c.mkdir(ctx, path, mode, true)
	if errors.Is(err, ErrExist) {
		fi, serr := c.Stat(ctx, path)
		if serr == nil && fi.IsDir {
			return nil
		}
		if serr == nil {
			return opError("mkdir", path, ErrNotDir)
		}
	}
	return err
}

func (c *Client) mkdir(ctx context.Context, path string, mode os.FileMode, parents bool) error {
	if mode = mode.Perm(); mode == 0 {
		mode = 0o755
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	_, err := callMaster(ctx, c, func(ctx context.Context, m api.MasterClient) (*api.MkdirResponse, error) {
		return m.Mkdir(ctx, &api.MkdirRequest{Path: path, Parents: parents, Mode: uint32(mode)})
	})
	return opError("mkdir", path, err)
}

// Rename moves src to dst.
func (c *Client) Rename(ctx context.Context, src, dst string) error {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	_, err := callMaster(ctx, c, func(ctx context.Context, m api.MasterClient) (*api.RenameResponse, error) {
		return m.Rename(ctx, &api.RenameRequest{Src: src, Dst: dst})
	})
	return opError("rename", src+" "+dst, err)
}

// Remove removes a file or an empty directory.
func (c *Client) Remove(ctx context.Context, path string) error {
	return opError("remove", path, c.remove(ctx, path, false))
}

// RemoveAll removes path and everything below it. A missing path is not an
// error, as with os.RemoveAll.
func (c *Client) RemoveAll(ctx context.Context, path string) error {
	err := c.remove(ctx, path, true)
	if errors.Is(sentinel(err), ErrNotFound) {
		return nil
	}
	return opError("remove", path, err)
}

func (c *Client) remove(ctx context.Context, path string, recursive bool) error {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	_, err := callMaster(ctx, c, func(ctx context.Context, m api.MasterClient) (*api.RemoveResponse, error) {
		return m.Remove(ctx, &api.RemoveRequest{Path: path, Recursive: recursive})
	})
	return err
}

// Status describes the cluster as the master leader sees it.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	resp, err := callMaster(ctx, c, func(ctx context.Context, m api.MasterClient) (*api.StatusResponse, error) {
		return m.Status(ctx, &api.StatusRequest{})
	})
	if err != nil {
		return nil, opError("status", "", err)
	}
	st := &Status{
		ChunksTotal:           resp.GetChunks().GetTotal(),
		ChunksUnderReplicated: resp.GetChunks().GetUnderReplicated(),
		ChunksOverReplicated:  resp.GetChunks().GetOverReplicated(),
		ChunksReReplicating:   resp.GetChunks().GetReReplicating(),
		ChunksLost:            resp.GetChunks().GetLost(),
		SharedBytes:           resp.GetChunks().GetSharedBytes(),
		ExclusiveBytes:        resp.GetChunks().GetExclusiveBytes(),
		RepairsDone:           resp.GetChunks().GetRepairsDone(),
		RepairedBytes:         resp.GetChunks().GetRepairedBytes(),
		Files:                 resp.GetFiles(),
		Directories:           resp.GetDirectories(),
	}
	for _, p := range resp.GetChunks().GetProblems() {
		st.Problems = append(st.Problems, ChunkProblem{Handle: p.GetHandle(), Reason: p.GetReason(),
			LostBlocks: p.GetLostBlocks(), Paths: p.GetPaths()})
	}
	for _, m := range resp.GetMasters() {
		st.Masters = append(st.Masters, MasterStatus{ID: m.GetId(), Addr: m.GetAddr(), Leader: m.GetLeader()})
	}
	for _, s := range resp.GetChunkservers() {
		cs := ChunkserverStatus{
			ID:            s.GetId(),
			Name:          s.GetName(),
			Addr:          s.GetAddr(),
			Alive:         s.GetAlive(),
			Draining:      s.GetDraining(),
			Chains:        s.GetChains(),
			CapacityBytes: s.GetCapacityBytes(),
			FreeBytes:     s.GetFreeBytes(),
			UsedBytes:     s.GetUsedBytes(),
			Labels:        s.GetLabels(),
			Replicas:      s.GetReplicas(),
		}
		if ns := s.GetLastHeartbeatUnixNano(); ns != 0 {
			cs.LastHeartbeat = time.Unix(0, ns)
		}
		st.Chunkservers = append(st.Chunkservers, cs)
	}
	return st, nil
}
