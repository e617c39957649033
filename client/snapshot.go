package client

import (
	"context"

	"github.com/catena-io/catena/api"
)

// SnapshotDir is the name under which a directory's snapshots are read:
// DIR/.snapshot/NAME/... (never listed among DIR's entries).
const SnapshotDir = ".snapshot"

// Snapshot makes a read-only, point-in-time copy of the directory tree
// (or file) at path, named name, in time proportional to its files and
// chunks and no data copied. Every write acknowledged before it returns
// is in the snapshot; no write begun after it returned is. A directory's
// snapshot is read at path/.snapshot/name; a file's at
// dir/.snapshot/name/file.
func (c *Client) Snapshot(ctx context.Context, path, name string) (*FileInfo, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	resp, err := callMaster(ctx, c, func(ctx context.Context, m api.MasterClient) (*api.SnapshotResponse, error) {
		return m.Snapshot(ctx, &api.SnapshotRequest{Path: path, Name: name})
	})
	if err != nil {
		return nil, opError("snapshot", path, err)
	}
	fi := fileInfoFromAPI(resp.GetInfo())
	return &fi, nil
}

// Snapshots lists the snapshots of the directory at path (or of a file's
// directory), sorted by name; each FileInfo is the snapshot's root.
func (c *Client) Snapshots(ctx context.Context, path string) ([]FileInfo, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	resp, err := callMaster(ctx, c, func(ctx context.Context, m api.MasterClient) (*api.ListSnapshotsResponse, error) {
		return m.ListSnapshots(ctx, &api.ListSnapshotsRequest{Path: path})
	})
	if err != nil {
		return nil, opError("list snapshots", path, err)
	}
	out := make([]FileInfo, 0, len(resp.GetSnapshots()))
	for _, fi := range resp.GetSnapshots() {
		out = append(out, fileInfoFromAPI(fi))
	}
	return out, nil
}

// RemoveSnapshot deletes snapshot name of path; the space of the chunks
// only it held is freed.
func (c *Client) RemoveSnapshot(ctx context.Context, path, name string) error {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	_, err := callMaster(ctx, c, func(ctx context.Context, m api.MasterClient) (*api.RemoveSnapshotResponse, error) {
		return m.RemoveSnapshot(ctx, &api.RemoveSnapshotRequest{Path: path, Name: name})
	})
	return opError("remove snapshot", path+"/"+SnapshotDir+"/"+name, err)
}

// Clone makes dst a writable copy of the file or tree at src without
// copying data (cp --reflink): both sides share every chunk until
// written, and are independent. src may be in a snapshot (a restore).
func (c *Client) Clone(ctx context.Context, src, dst string) (*FileInfo, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	resp, err := callMaster(ctx, c, func(ctx context.Context, m api.MasterClient) (*api.CloneResponse, error) {
		return m.Clone(ctx, &api.CloneRequest{Src: src, Dst: dst})
	})
	if err != nil {
		return nil, opError("clone", src, err)
	}
	fi := fileInfoFromAPI(resp.GetInfo())
	return &fi, nil
}

// SnapshotVolume makes read-only volume vol@name (point in time as
// Snapshot), served over NBD as a read-only export.
func (c *Client) SnapshotVolume(ctx context.Context, vol, name string) (*VolumeInfo, error) {
	resp, err := callVolumes(ctx, c, func(ctx context.Context, v api.VolumesClient) (*api.SnapshotVolumeResponse, error) {
		return v.SnapshotVolume(ctx, &api.SnapshotVolumeRequest{Volume: vol, Name: name})
	})
	if err != nil {
		return nil, opError("snapshot volume", vol, err)
	}
	vi := volumeFromAPI(resp.GetInfo())
	return &vi, nil
}

// VolumeSnapshots lists the snapshots of volume vol (names "vol@name").
func (c *Client) VolumeSnapshots(ctx context.Context, vol string) ([]VolumeInfo, error) {
	resp, err := callVolumes(ctx, c, func(ctx context.Context, v api.VolumesClient) (*api.ListVolumeSnapshotsResponse, error) {
		return v.ListVolumeSnapshots(ctx, &api.ListVolumeSnapshotsRequest{Volume: vol})
	})
	if err != nil {
		return nil, opError("list volume snapshots", vol, err)
	}
	out := make([]VolumeInfo, 0, len(resp.GetSnapshots()))
	for _, v := range resp.GetSnapshots() {
		out = append(out, volumeFromAPI(v))
	}
	return out, nil
}

// RemoveVolumeSnapshot deletes snapshot vol@name.
func (c *Client) RemoveVolumeSnapshot(ctx context.Context, vol, name string) error {
	_, err := callVolumes(ctx, c, func(ctx context.Context, v api.VolumesClient) (*api.RemoveVolumeSnapshotResponse, error) {
		return v.RemoveVolumeSnapshot(ctx, &api.RemoveVolumeSnapshotRequest{Volume: vol, Name: name})
	})
	return opError("remove volume snapshot", vol+"@"+name, err)
}

// CloneVolume makes writable volume dst from src (a volume, or a
// snapshot "vol@name") without copying data.
func (c *Client) CloneVolume(ctx context.Context, src, dst string) (*VolumeInfo, error) {
	resp, err := callVolumes(ctx, c, func(ctx context.Context, v api.VolumesClient) (*api.CloneVolumeResponse, error) {
		return v.CloneVolume(ctx, &api.CloneVolumeRequest{Src: src, Dst: dst})
	})
	if err != nil {
		return nil, opError("clone volume", src, err)
	}
	vi := volumeFromAPI(resp.GetInfo())
	return &vi, nil
}

// RollbackVolume gives volume vol the content (and size) of its snapshot
// name. Stop the volume's writers first: a write in flight may be lost;
// one begun after it returns lands on the rolled-back content.
func (c *Client) RollbackVolume(ctx context.Context, vol, name string) (*VolumeInfo, error) {
	resp, err := callVolumes(ctx, c, func(ctx context.Context, v api.VolumesClient) (*api.RollbackVolumeResponse, error) {
		return v.RollbackVolume(ctx, &api.RollbackVolumeRequest{Volume: vol, Name: name})
	})
	if err != nil {
		return nil, opError("rollback volume", vol, err)
	}
	vi := volumeFromAPI(resp.GetInfo())
	return &vi, nil
}
