package client

import (
	"context"
	"time"

	"github.com/catena-io/catena/api"
)

// Mount sessions and orphans (api/fs.proto): a FUSE mount holds a session,
// renewed well within its TTL, and tells the master which files it holds
// open; a file that loses its last name while held stays, nameless, until
// every mount holding it lets go — or their sessions expire.

// RenewMount opens or renews mount session (random, not 0) for ttl.
func (c *Client) RenewMount(ctx context.Context, session uint64, ttl time.Duration) error {
	_, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.RenewMountResponse, error) {
		return f.RenewMount(ctx, &api.RenewMountRequest{Session: session, TtlMs: ttl.Milliseconds()})
	})
	return opError("renew mount", "", err)
}

// EndMount ends a session: it lets go of every file it holds.
func (c *Client) EndMount(ctx context.Context, session uint64) error {
	_, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.EndMountResponse, error) {
		return f.EndMount(ctx, &api.EndMountRequest{Session: session})
	})
	return opError("end mount", "", err)
}

// Hold records that session holds file ino open (ErrNotFound without such
// a session or file).
func (c *Client) Hold(ctx context.Context, session, ino uint64) error {
	_, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.HoldResponse, error) {
		return f.Hold(ctx, &api.HoldRequest{Session: session, Inode: ino})
	})
	return opError("hold", "", err)
}

// Unhold records that session no longer holds ino open; an orphan that
// nobody holds any more is deleted.
func (c *Client) Unhold(ctx context.Context, session, ino uint64) error {
	_, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.HoldResponse, error) {
		return f.Unhold(ctx, &api.HoldRequest{Session: session, Inode: ino})
	})
	return opError("unhold", "", err)
}
