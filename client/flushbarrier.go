package client

import "context"

// A FlushBarrier is what a volume's Flush (or a file's Sync) waits for
// after its writes are durable on their chains: output buffering, as in
// Remus. The mirror's --sync-flush (internal/mirror.FlushBarrier) makes a
// flush at cluster A return only once the checkpoint holding the writes
// acknowledged before it is applied at cluster B. name is the volume's
// name, or the file's path; an error fails the Flush (the Sync).
type FlushBarrier func(ctx context.Context, name string) error

// SetFlushBarrier makes every Volume.Flush of this client, and every
// File.Sync of a file opened by its path, wait for b (nil: none, the
// default).
func (c *Client) SetFlushBarrier(b FlushBarrier) {
	if b == nil {
		c.flushBarrier.Store(nil)
		return
	}
	c.flushBarrier.Store(&b)
}
