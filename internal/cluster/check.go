package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chunkstore"
)

// checkPiece is how much of each replica CheckReplicas compares at a time.
const checkPiece = 1 << 20

// maxProblems caps how many problems one CheckReplicas error lists.
const maxProblems = 20

// chunkRef is one chunk as the master's namespace knows it.
type chunkRef struct {
	file        string
	replication int
	info        *api.ChunkInfo
}

// chunks returns every chunk the namespace refers to, keyed by handle, by
// walking the namespace from the root through the master.
func (c *Cluster) chunks(ctx context.Context) (map[uint64]chunkRef, error) {
	out := make(map[uint64]chunkRef)
	mc, err := c.leaderClient()
	if err != nil {
		return nil, err
	}
	var walk func(dir string) error
	walk = func(dir string) error {
		var entries []*api.FileInfo
		for after := ""; ; {
			ls, err := mc.List(ctx, &api.ListRequest{Path: dir, StartAfter: after})
			if err != nil {
				return fmt.Errorf("list %s: %w", dir, err)
			}
			entries = append(entries, ls.GetEntries()...)
			if !ls.GetMore() || len(ls.GetEntries()) == 0 {
				break
			}
			after = entries[len(entries)-1].GetName()
		}
		for _, e := range entries {
			p := path.Join(dir, e.GetName())
			if e.GetType() == api.FileType_DIRECTORY {
				if err := walk(p); err != nil {
					return err
				}
				continue
			}
			lk, err := mc.Lookup(ctx, &api.LookupRequest{Path: p, WithChunks: true})
			if err != nil {
				return fmt.Errorf("lookup %s: %w", p, err)
			}
			for _, ci := range lk.GetChunks() {
				out[ci.GetHandle()] = chunkRef{file: p, replication: int(lk.GetInfo().GetReplication()), info: ci}
			}
		}
		return nil
	}
	if err := walk("/"); err != nil {
		return nil, fmt.Errorf("cluster: walk namespace: %w", err)
	}
	return out, nil
}

// CheckReplicas checks that for every chunk in the namespace each chain
// member holds a replica, and that the members' replicas agree on epoch,
// applied sequence number and every byte. It returns ErrReplicasDiffer
// listing the problems, or nil. Call it only while no write is in flight.
func (c *Cluster) CheckReplicas(ctx context.Context) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	// A repair that commits between reading the master's map and reading
	// the replicas shows the replicas a step ahead of the map read; such
	// a check is taken again on a fresh map (a replica ahead of the
	// master's committed epoch can only be that: masters push a new
	// epoch after committing it). Members at different sequence numbers
	// are checked again a little later too: the head's start of a new
	// epoch (an empty update, chain package) may still be on its way.
	var err error
	for range checkAttempts {
		var transient bool
		transient, err = c.checkReplicasOnce(ctx)
		if err == nil || !transient {
			return err
		}
		t := time.NewTimer(checkRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
	return err
}

// checkAttempts bounds how often CheckReplicas checks again after finding
// replicas ahead of the master's map or members at different sequence
// numbers, checkRetry apart.
const (
	checkAttempts = 20
	checkRetry    = 100 * time.Millisecond
)

// checkReplicasOnce is one pass of CheckReplicas; transient reports
// whether a replica's epoch was ahead of the master's map or members
// differed in their applied sequence numbers.
func (c *Cluster) checkReplicasOnce(ctx context.Context) (transient bool, err error) {
	chunks, err := c.chunks(ctx)
	if err != nil {
		return false, err
	}
	if len(chunks) == 0 {
		return false, nil
	}

	// Each chunkserver's store: a running server's own (a second Store
	// must not open a directory in use), a stopped one's opened here.
	storeOf := func(id uint64) (*chunkstore.Store, error) {
		st, _, err := c.storeOf(id)
		return st, err
	}
	defer c.closeOpenedStores()

	var problems []string
	handles := make([]uint64, 0, len(chunks))
	for h := range chunks {
		handles = append(handles, h)
	}
	slices.Sort(handles)
	for _, h := range handles {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		ref := chunks[h]
		ps, a := checkChunk(ref, storeOf)
		transient = transient || a
		for _, p := range ps {
			problems = append(problems, fmt.Sprintf("chunk %d (%s index %d): %s", h, ref.file, ref.info.GetIndex(), p))
		}
	}
	if len(problems) == 0 {
		return false, nil
	}
	n := len(problems)
	if n > maxProblems {
		problems = append(problems[:maxProblems], fmt.Sprintf("... and %d more", n-maxProblems))
	}
	return transient, fmt.Errorf("%w: %d problems:\n  %s", ErrReplicasDiffer, n, strings.Join(problems, "\n  "))
}

// checkLostEverywhere compares, block by block, a piece some replica could
// not read: each block must read the same on every replica, or fail on
// every one. It returns a problem or "".
func checkLostEverywhere(off, n int64, ms []member) string {
	buf := make([][]byte, len(ms))
	for i := range buf {
		buf[i] = make([]byte, chunkstore.BlockSize)
	}
	for bo := off; bo < off+n; bo += chunkstore.BlockSize {
		bn := min(int64(chunkstore.BlockSize), off+n-bo)
		bad := 0
		for i, m := range ms {
			if _, err := m.r.ReadAt(buf[i][:bn], bo); err != nil {
				if !errors.Is(err, chunkstore.ErrCorrupt) {
					return fmt.Sprintf("server %d: read at %d: %v", m.id, bo, err)
				}
				bad++
			}
		}
		switch {
		case bad == len(ms):
		case bad > 0:
			return fmt.Sprintf("block at %d: does not verify on %d of %d replicas", bo, bad, len(ms))
		default:
			for i := 1; i < len(ms); i++ {
				if !bytes.Equal(buf[0][:bn], buf[i][:bn]) {
					return fmt.Sprintf("bytes differ at offset %d between server %d and server %d", bo+int64(firstDiff(buf[0][:bn], buf[i][:bn])), ms[0].id, ms[i].id)
				}
			}
		}
	}
	return ""
}

// member is one chain member's replica as the checker reads it.
type member struct {
	id uint64
	r  *chunkstore.Replica
	m  chunkstore.Meta
}

// checkChunk compares the replicas of one chunk on its chain members;
// transient reports a replica at a later epoch than the master's map, or
// members at different applied sequence numbers (an update on its way).
func checkChunk(ref chunkRef, storeOf func(uint64) (*chunkstore.Store, error)) (problems []string, transient bool) {
	var ms []member
	for _, s := range ref.info.GetChain() {
		st, err := storeOf(s.GetId())
		if err != nil {
			problems = append(problems, fmt.Sprintf("server %d: open store: %v", s.GetId(), err))
			continue
		}
		r, err := st.Get(chunkstore.Handle(ref.info.GetHandle()))
		if err != nil {
			problems = append(problems, fmt.Sprintf("server %d: %v", s.GetId(), err))
			continue
		}
		m := r.Meta()
		if m.Epoch != ref.info.GetEpoch() {
			problems = append(problems, fmt.Sprintf("server %d: replica epoch %d, master epoch %d", s.GetId(), m.Epoch, ref.info.GetEpoch()))
			transient = transient || m.Epoch > ref.info.GetEpoch()
		}
		ms = append(ms, member{id: s.GetId(), r: r, m: m})
	}
	if len(ms) < 2 {
		return problems, transient
	}
	first := ms[0]
	for _, o := range ms[1:] {
		if o.m.AppliedSeq != first.m.AppliedSeq {
			problems = append(problems, fmt.Sprintf("applied seq %d on server %d, %d on server %d", first.m.AppliedSeq, first.id, o.m.AppliedSeq, o.id))
			transient = true
		}
		if o.m.ChunkSize != first.m.ChunkSize {
			problems = append(problems, fmt.Sprintf("chunk size %d on server %d, %d on server %d", first.m.ChunkSize, first.id, o.m.ChunkSize, o.id))
			return problems, transient
		}
	}
	bufs := make([][]byte, len(ms))
	for i := range bufs {
		bufs[i] = make([]byte, checkPiece)
	}
	size := first.m.ChunkSize
	for off := int64(0); off < size; off += checkPiece {
		n := min(int64(checkPiece), size-off)
		var corrupt []uint64
		for i, m := range ms {
			if _, err := m.r.ReadAt(bufs[i][:n], off); err != nil {
				if !errors.Is(err, chunkstore.ErrCorrupt) {
					problems = append(problems, fmt.Sprintf("server %d: read at %d: %v", m.id, off, err))
					return problems, transient
				}
				corrupt = append(corrupt, m.id)
			}
		}
		if len(corrupt) > 0 {
			// Blocks lost on every replica (reported by status, never
			// served) are consistent; lost on some only is not.
			if p := checkLostEverywhere(off, n, ms); p != "" {
				problems = append(problems, p)
				return problems, transient
			}
			continue
		}
		for i := 1; i < len(ms); i++ {
			if !bytes.Equal(bufs[0][:n], bufs[i][:n]) {
				at := firstDiff(bufs[0][:n], bufs[i][:n])
				// The 4 KiB page around it, as the first 8 bytes of each
				// (tests put a value there).
				pg := at / 4096 * 4096
				problems = append(problems, fmt.Sprintf("bytes differ at offset %d between server %d and server %d (page at %d starts %x / %x; applied %d/%d, %d/%d)",
					off+int64(at), first.id, ms[i].id, off+int64(pg), bufs[0][pg:pg+8], bufs[i][pg:pg+8],
					first.m.AppliedEpoch, first.m.AppliedSeq, ms[i].m.AppliedEpoch, ms[i].m.AppliedSeq))
				return problems, transient
			}
		}
	}
	return problems, transient
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

// ReplicaHandles returns the handles of the replicas in chunkserver i's
// store, sorted, whether or not the server runs; a test uses it to await
// garbage collection.
func (c *Cluster) ReplicaHandles(i int) ([]uint64, error) {
	n, err := c.slot(i)
	if err != nil {
		return nil, err
	}
	st, opened, err := c.storeOf(n.id)
	if err != nil {
		return nil, err
	}
	if opened {
		defer c.closeOpenedStores()
	}
	var hs []uint64
	for _, m := range st.List() {
		hs = append(hs, uint64(m.Handle))
	}
	return hs, nil
}

// storeOf returns the chunk store of the chunkserver with id: the running
// server's own, or one opened on a stopped server's directory (opened
// true: closeOpenedStores closes it before the server starts again).
func (c *Cluster) storeOf(id uint64) (*chunkstore.Store, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.servers {
		if n.id != id {
			continue
		}
		if n.srv != nil {
			return n.srv.Store(), false, nil
		}
		if st := c.opened[id]; st != nil {
			return st, true, nil
		}
		st, err := chunkstore.OpenConfig(chunkstore.Config{FS: n.disk.base(), Dir: n.dir, Logger: c.log.With("proc", "checker")})
		if err != nil {
			return nil, false, fmt.Errorf("cluster: open the store of stopped server %d: %w", id, err)
		}
		if c.opened == nil {
			c.opened = make(map[uint64]*chunkstore.Store)
		}
		c.opened[id] = st
		return st, true, nil
	}
	return nil, false, fmt.Errorf("server %d is not part of this cluster", id)
}

// closeOpenedStores closes the stores storeOf opened on stopped servers.
func (c *Cluster) closeOpenedStores() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, st := range c.opened {
		st.Close()
		delete(c.opened, id)
	}
}
