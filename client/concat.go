package client

import (
	"context"

	"github.com/catena-io/catena/api"
)

// Concat appends the files at srcs, in order, to the file at dst and
// removes srcs, in one metadata operation that moves their chunks: no
// data is read or written, whatever the sizes (HDFS's concat). dst must
// exist (an empty file is the usual start); every file must have dst's
// chunk size and replication, and dst and every source but the last a
// size that is a multiple of that chunk size. Otherwise, and for a
// source that is a directory, hard-linked, held open by a mount or
// being written past its size, the error wraps ErrInvalid (or
// ErrNotFound, ErrIsDir, ...) and nothing changed. The caller needs
// write permission on dst and on the directories holding dst and the
// sources, and read permission on the sources. inodes is nil, or has
// one entry per source: the inode the caller found at that path; a
// source replaced since (another file at the path now) is refused with
// ErrInvalid. It returns dst's new
// attributes.
func (c *Client) Concat(ctx context.Context, dst string, srcs []string, inodes []uint64) (*FileInfo, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	resp, err := callMaster(ctx, c, func(ctx context.Context, m api.MasterClient) (*api.ConcatResponse, error) {
		return m.Concat(ctx, &api.ConcatRequest{Dst: dst, Srcs: srcs, SrcInodes: inodes})
	})
	if err != nil {
		return nil, opError("concat", dst, err)
	}
	fi := fileInfoFromAPI(resp.GetInfo())
	return &fi, nil
}
