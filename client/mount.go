package client

import (
	"context"
	"time"

	"github.com/catena-io/catena/api"
)

// Mount sessions and orphans (api/fs.proto): a FUSE mount holds a session,
// renewed well within its TTL, and unlinks the files it holds open with
// the session as keep, so a file that loses its last name stays, nameless,
// until the mount releases it at its last close — or, if the mount dies,
// until the master reclaims it when the session expires.

// RenewMount opens or renews mount session (random, not 0) for ttl.
func (c *Client) RenewMount(ctx context.Context, session uint64, ttl time.Duration) error {
	_, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.RenewMountResponse, error) {
		return f.RenewMount(ctx, &api.RenewMountRequest{Session: session, TtlMs: ttl.Milliseconds()})
	})
	return opError("renew mount", "", err)
}

// EndMount ends a session; its orphans are deleted.
func (c *Client) EndMount(ctx context.Context, session uint64) error {
	_, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.EndMountResponse, error) {
		return f.EndMount(ctx, &api.EndMountRequest{Session: session})
	})
	return opError("end mount", "", err)
}

// ReleaseOrphan deletes inode ino if it is an orphan of session.
func (c *Client) ReleaseOrphan(ctx context.Context, session, ino uint64) error {
	_, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.ReleaseOrphanResponse, error) {
		return f.ReleaseOrphan(ctx, &api.ReleaseOrphanRequest{Session: session, Inode: ino})
	})
	return opError("release orphan", "", err)
}

// UnlinkAtKeep is UnlinkAt by a mount that holds the file open: with its
// last name the file becomes an orphan of session keep.
func (c *Client) UnlinkAtKeep(ctx context.Context, parent uint64, name string, keep uint64) error {
	_, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.UnlinkResponse, error) {
		return f.Unlink(ctx, &api.UnlinkRequest{Parent: parent, Name: name, KeepSession: keep})
	})
	return opError("unlink", name, err)
}

// RenameAtKeep is RenameAt (replacing) by a mount that holds the
// destination open: it becomes an orphan of session keep.
func (c *Client) RenameAtKeep(ctx context.Context, srcParent uint64, srcName string, dstParent uint64, dstName string, keep uint64) error {
	_, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.RenameAtResponse, error) {
		return f.Rename(ctx, &api.RenameAtRequest{SrcParent: srcParent, SrcName: srcName, DstParent: dstParent,
			DstName: dstName, KeepSession: keep})
	})
	return opError("rename", srcName, err)
}
