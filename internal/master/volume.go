package master

import (
	"context"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/master/decide"
	"github.com/catena-io/catena/internal/meta"
	"github.com/catena-io/catena/internal/rpcerr"
)

// volumeServer implements api.VolumesServer over the same leader and Raft
// glue as server; volume data goes through the Master service's chunk RPCs
// (AllocateChunk, GetChunks) on the volume's inode.
type volumeServer struct {
	api.UnimplementedVolumesServer
	s *server
}

var _ api.VolumesServer = (*volumeServer)(nil)

// volumeInfo is fi as the API gives it; with st its allocated chunks,
// with ev (Master.evidence) its shared and exclusive bytes too.
func volumeInfo(st *meta.State, fi meta.FileInfo, ev ...map[uint64]map[uint64]decide.Evidence) *api.VolumeInfo {
	vi := &api.VolumeInfo{Name: fi.Name, Inode: fi.Inode, Size: fi.Size, Replication: uint32(fi.Replication),
		ChunkSize: fi.ChunkSize, MtimeUnixNano: fi.MTime, ReadOnly: fi.ReadOnly}
	if st != nil {
		if _, refs, err := st.FileChunks(fi.Inode, 0, 0); err == nil {
			vi.AllocatedChunks = int64(len(refs))
			for _, r := range refs {
				if len(ev) == 0 {
					break
				}
				ch, _ := st.Chunk(r.Handle)
				if n := chunkBytes(ev[0], ch); ch.Refs > 1 {
					vi.SharedBytes += n
				} else {
					vi.ExclusiveBytes += n
				}
			}
		}
	}
	return vi
}

func (v *volumeServer) CreateVolume(ctx context.Context, req *api.CreateVolumeRequest) (*api.CreateVolumeResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	if err := checkVolumeName(req.Name); err != nil {
		return nil, err
	}
	if req.Replication > meta.MaxReplication {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "replication %d not in [1, %d]", req.Replication, meta.MaxReplication)
	}
	r, err := v.s.proposeOnce(ctx, meta.CreateVolume{Name: req.Name, Size: req.Size, Replication: int(req.Replication),
		ChunkSize: req.ChunkSize, Time: v.s.now()})
	if err != nil {
		return nil, err
	}
	return &api.CreateVolumeResponse{Info: volumeInfo(nil, r.Info)}, nil
}

func (v *volumeServer) ListVolumes(ctx context.Context, req *api.ListVolumesRequest) (*api.ListVolumesResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	resp := &api.ListVolumesResponse{}
	ev := v.s.m.evidence()
	v.s.m.fsm.view(func(st *meta.State) {
		for _, fi := range st.Volumes() {
			resp.Volumes = append(resp.Volumes, volumeInfo(st, fi, ev))
		}
	})
	return resp, nil
}

func (v *volumeServer) GetVolume(ctx context.Context, req *api.GetVolumeRequest) (*api.GetVolumeResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	var resp api.GetVolumeResponse
	var err error
	ev := v.s.m.evidence()
	v.s.m.fsm.view(func(st *meta.State) {
		var fi meta.FileInfo
		if fi, err = st.Volume(req.Name); err == nil {
			resp.Info = volumeInfo(st, fi, ev)
		}
	})
	if err != nil {
		return nil, metaErr(err)
	}
	return &resp, nil
}

func (v *volumeServer) RemoveVolume(ctx context.Context, req *api.RemoveVolumeRequest) (*api.RemoveVolumeResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	if _, err := v.s.proposeOnce(ctx, meta.RemoveVolume{Name: req.Name, Time: v.s.now()}); err != nil {
		return nil, err
	}
	return &api.RemoveVolumeResponse{}, nil
}

func (v *volumeServer) ResizeVolume(ctx context.Context, req *api.ResizeVolumeRequest) (*api.ResizeVolumeResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	r, err := v.s.proposeOnce(ctx, meta.ResizeVolume{Name: req.Name, Size: req.Size, Time: v.s.now()})
	if err != nil {
		return nil, err
	}
	return &api.ResizeVolumeResponse{Info: volumeInfo(nil, r.Info)}, nil
}
