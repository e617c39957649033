package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chunkstore"
)

// serverIDFile is the file in a chunkserver's directory that keeps its id.
const serverIDFile = "server-id"

// Network returns the fault layer every process of the cluster dials
// through.
func (c *Cluster) Network() *Network { return c.net }

// ChunkserverNode returns the Network name of chunkserver i ("cs<i+1>").
func (c *Cluster) ChunkserverNode(i int) string { return chunkserverNode(i) }

// ChunkserverIndex returns the slot of the chunkserver with server id id,
// -1 when none has it.
func (c *Cluster) ChunkserverIndex(id uint64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.servers {
		if n.id == id {
			return i
		}
	}
	return -1
}

// Kill stops chunkserver i (in process, a stop is the closest to a crash:
// its data stays as written). Same as StopChunkserver.
func (c *Cluster) Kill(i int) error { return c.StopChunkserver(i) }

// Restart starts the killed chunkserver i again; same as
// RestartChunkserver.
func (c *Cluster) Restart(ctx context.Context, i int) error { return c.RestartChunkserver(ctx, i) }

// Partition cuts nodes a and b (Network names) from each other.
func (c *Cluster) Partition(a, b string) { c.net.Partition(a, b) }

// PartitionOneWay stops from reaching to; to still reaches from.
func (c *Cluster) PartitionOneWay(from, to string) { c.net.PartitionOneWay(from, to) }

// Heal removes every network cut, pauses included.
func (c *Cluster) Heal() { c.net.Heal() }

// Pause cuts chunkserver i from every node, the master and clients
// included. It keeps running but hears from nobody: its lease runs out
// and it stops serving, as a SIGSTOPped server's would; the master then
// declares it dead. Resume undoes it.
func (c *Cluster) Pause(i int) error {
	if _, err := c.slot(i); err != nil {
		return err
	}
	c.net.Isolate(chunkserverNode(i))
	return nil
}

// Resume reconnects the paused chunkserver i.
func (c *Cluster) Resume(i int) error {
	if _, err := c.slot(i); err != nil {
		return err
	}
	c.net.Rejoin(chunkserverNode(i))
	return nil
}

// SlowDisk adds delay to every data write and sync of chunkserver i; 0
// makes its disk fast again. It survives restarts.
func (c *Cluster) SlowDisk(i int, delay time.Duration) error {
	n, err := c.slot(i)
	if err != nil {
		return err
	}
	n.disk.delay.Store(int64(delay))
	return nil
}

// DiskFull makes every write, allocation and truncation on chunkserver i's
// disk fail with ENOSPC while on. It survives restarts.
func (c *Cluster) DiskFull(i int, on bool) error {
	n, err := c.slot(i)
	if err != nil {
		return err
	}
	n.disk.full.Store(on)
	return nil
}

// CorruptReplica flips the bits of chunk byte 0 of chunkserver i's replica
// of handle, behind the store's back: its checksum no longer matches, which
// a read or the scrubber notices.
func (c *Cluster) CorruptReplica(handle uint64, i int) error {
	return c.CorruptReplicaAt(handle, i, 0)
}

// CorruptReplicaAt flips the bits of chunk byte off of chunkserver i's
// replica of handle.
func (c *Cluster) CorruptReplicaAt(handle uint64, i int, off int64) error {
	n, err := c.slot(i)
	if err != nil {
		return err
	}
	st, opened, err := c.storeOf(n.id)
	if err != nil {
		return err
	}
	if opened {
		defer c.closeOpenedStores()
	}
	name, at, err := st.Locate(chunkstore.Handle(handle), off)
	if err != nil {
		return fmt.Errorf("cluster: corrupt replica: %w", err)
	}
	f, err := n.disk.base().OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("cluster: corrupt replica: %w", err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		return fmt.Errorf("cluster: corrupt replica: %w", err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, at); err != nil {
		return fmt.Errorf("cluster: corrupt replica: %w", err)
	}
	return f.Sync()
}

// WipeChunkserver deletes the data of the stopped chunkserver i, its
// replicas included, keeping only its server id: it restarts as the same
// server with an empty disk, as after a disk replacement.
func (c *Cluster) WipeChunkserver(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.slotLocked(i)
	if err != nil {
		return err
	}
	if n.srv != nil {
		return fmt.Errorf("chunkserver %d: %w", i, ErrRunning)
	}
	ents, err := os.ReadDir(n.dir)
	if err != nil {
		return fmt.Errorf("cluster: wipe chunkserver %d: %w", i, err)
	}
	for _, e := range ents {
		if e.Name() == serverIDFile {
			continue
		}
		if err := os.RemoveAll(filepath.Join(n.dir, e.Name())); err != nil {
			return fmt.Errorf("cluster: wipe chunkserver %d: %w", i, err)
		}
	}
	return nil
}

// ClearFaults heals the network and gives every disk back its speed and
// space.
func (c *Cluster) ClearFaults() {
	c.net.Heal()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.servers {
		n.disk.delay.Store(0)
		n.disk.full.Store(false)
	}
}

// Status returns the leading master's status.
func (c *Cluster) Status(ctx context.Context) (*api.StatusResponse, error) {
	mc, err := c.leaderClient()
	if err != nil {
		return nil, err
	}
	return mc.Status(ctx, &api.StatusRequest{})
}

// AwaitRepaired waits until the master reports no under-replicated chunk
// and no repair in progress, and every chunk's chain has as many members
// as its file's replication factor, all of them alive.
func (c *Cluster) AwaitRepaired(ctx context.Context) error {
	if c.isClosed() {
		return ErrClosed
	}
	var why string
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		var ok bool
		ok, why = c.repaired(ctx)
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for repair: %s: %w", ErrNotReady, why, ctx.Err())
		case <-t.C:
		}
	}
}

func (c *Cluster) repaired(ctx context.Context) (bool, string) {
	st, err := c.Status(ctx)
	if err != nil {
		return false, fmt.Sprintf("status: %v", err)
	}
	cs := st.GetChunks()
	if cs.GetUnderReplicated() != 0 || cs.GetReReplicating() != 0 {
		return false, fmt.Sprintf("%d chunks under-replicated, %d re-replicating", cs.GetUnderReplicated(), cs.GetReReplicating())
	}
	alive := map[uint64]bool{}
	for _, s := range st.GetChunkservers() {
		alive[s.GetId()] = s.GetAlive()
	}
	chunks, err := c.chunks(ctx)
	if err != nil {
		return false, err.Error()
	}
	handles := make([]uint64, 0, len(chunks))
	for h := range chunks {
		handles = append(handles, h)
	}
	slices.Sort(handles)
	for _, h := range handles {
		ref := chunks[h]
		chain := ref.info.GetChain()
		if len(chain) < ref.replication {
			return false, fmt.Sprintf("chunk %d (%s): chain of %d, replication %d", h, ref.file, len(chain), ref.replication)
		}
		for _, s := range chain {
			if !alive[s.GetId()] {
				return false, fmt.Sprintf("chunk %d (%s): member %d dead", h, ref.file, s.GetId())
			}
		}
	}
	return true, ""
}

// Settle is the cleanup invariant check after faults: it clears every
// fault, restarts stopped masters and chunkservers, waits for a leader and
// for repair, then runs CheckReplicas and CheckMetadata.
func (c *Cluster) Settle(ctx context.Context) error {
	c.ClearFaults()
	for i := range c.NumMasters() {
		if c.isClosed() {
			return ErrClosed
		}
		if c.MasterAt(i) == nil {
			if err := c.RestartMaster(ctx, i); err != nil {
				return err
			}
		}
	}
	if _, err := c.AwaitLeader(ctx); err != nil {
		return err
	}
	for i := range c.NumChunkservers() {
		if c.isClosed() {
			return ErrClosed
		}
		if c.Chunkserver(i) == nil {
			if err := c.RestartChunkserver(ctx, i); err != nil {
				return err
			}
		}
	}
	if err := c.AwaitRepaired(ctx); err != nil {
		return err
	}
	if err := c.CheckReplicas(ctx); err != nil {
		return err
	}
	return c.CheckMetadata(ctx)
}

func (c *Cluster) slot(i int) (*csNode, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slotLocked(i)
}

func (c *Cluster) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// PowerCut cuts the power of every chunkserver at once (Config.MemDisks):
// each stops, its disk keeps what was synced plus each page written since
// its last sync for which keep(server, path, page) is true (a torn write
// when a write spans kept and lost pages), and all restart together on
// those disks. It returns once every chunkserver is alive again.
func (c *Cluster) PowerCut(ctx context.Context, keep func(server int, path string, page int64) bool) error {
	ctx, cancel := withReadyTimeout(ctx)
	defer cancel()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	// First every server falls silent (cut off the network: a dead server
	// reports nothing) and every disk dies (nothing more is written or
	// synced, so nothing more can be acknowledged), then each disk is
	// cloned as the cut leaves it, then the servers are stopped and
	// restarted on the clones.
	for _, n := range c.servers {
		c.net.Isolate(n.name)
	}
	for _, n := range c.servers {
		n.disk.dead.Store(true)
	}
	after := make([]*chunkstore.MemFS, len(c.servers))
	for i, n := range c.servers {
		mem := n.disk.mem.Load()
		if mem == nil {
			c.mu.Unlock()
			return fmt.Errorf("cluster: power cut needs Config.MemDisks")
		}
		after[i] = mem.CrashCloneKeeping(func(path string, page int64) bool { return keep(i, path, page) })
	}
	for i, n := range c.servers {
		if n.srv != nil {
			n.srv.Close()
			n.srv = nil
		}
		n.disk.mem.Store(after[i])
		n.disk.dead.Store(false)
		c.net.Rejoin(n.name)
	}
	start := time.Now()
	for i, n := range c.servers {
		if err := c.startChunkserver(ctx, i, n); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	c.mu.Unlock()
	for i := range c.servers {
		if err := c.awaitAlive(ctx, i, start); err != nil {
			return err
		}
	}
	return nil
}
