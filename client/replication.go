package client

import (
	"context"

	"github.com/catena-io/catena/api"
)

// SetReplication changes the replication factor of the file at path (not
// a directory: walk it, as catena setrep does) and of its chunks. It
// returns once the new factor is recorded; the masters then add or remove
// replicas in the background (catena status shows the chunks still
// under- or over-replicated).
func (c *Client) SetReplication(ctx context.Context, path string, replication int) (*FileInfo, error) {
	return c.setReplication(ctx, path, &api.SetReplicationRequest{Path: path, Replication: uint32(max(replication, 0))})
}

// SetVolumeReplication is SetReplication for volume name.
func (c *Client) SetVolumeReplication(ctx context.Context, name string, replication int) (*FileInfo, error) {
	return c.setReplication(ctx, name, &api.SetReplicationRequest{Volume: name, Replication: uint32(max(replication, 0))})
}

func (c *Client) setReplication(ctx context.Context, what string, req *api.SetReplicationRequest) (*FileInfo, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	resp, err := callMaster(ctx, c, func(ctx context.Context, m api.MasterClient) (*api.SetReplicationResponse, error) {
		return m.SetReplication(ctx, req)
	})
	if err != nil {
		return nil, opError("setrep", what, err)
	}
	fi := fileInfoFromAPI(resp.GetInfo())
	return &fi, nil
}
