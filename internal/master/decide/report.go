package decide

import (
	"slices"

	"github.com/catena-io/catena/internal/meta"
)

// Evidence is what a server's last heartbeat proved about its replica of
// a chunk (the handler converts it from the wire's replica info):
// recovery decisions rest on it, never on a member's position in the
// chain.
type Evidence struct {
	Epoch        uint64 // the replica's chain epoch
	AppliedEpoch uint64 // epoch of the update at AppliedSeq
	AppliedSeq   uint64 // durable
	Fenced       bool
	BadBlocks    int  // blocks known not to verify
	Verified     bool // every block read since the replica was loaded
	Bad          []int64
	// CatchingUp: the replica has not installed its predecessor's state
	// since it joined the chain (it may lack acknowledged updates).
	CatchingUp bool
	// UsedBytes is the replica's size on disk (rebalancing weighs by it).
	UsedBytes int64
}

// Replica is one entry of a server's inventory: it holds a replica of
// Handle at chain epoch Epoch.
type Replica struct {
	Handle uint64
	Epoch  uint64
}

// ChunkMap is the part of the replicated state the inventory verdicts
// read. *meta.State implements it; the caller holds its read lock while a
// verdict runs.
type ChunkMap interface {
	Chunk(handle uint64) (meta.Chunk, bool)
	// NextHandle is the next handle the chunk map will allocate: handles
	// at or above it may be in the middle of their allocation.
	NextHandle() uint64
}

var _ ChunkMap = (*meta.State)(nil)

// Reconcile decides what a heartbeat answers about a server's inventory:
// the replicas it must delete, and the chunks whose current configuration
// it missed (the caller sends it their chains). joining maps a handle to
// the target of a repair in flight, read BEFORE chunks (see the master's
// Heartbeat handler). Rules:
//   - a handle at or past NextHandle is left alone (it may be in the
//     middle of its allocation);
//   - a handle absent from the chunk map is deleted (its file is gone);
//   - a chain member reporting an epoch below the chunk's missed a
//     configuration;
//   - a non-member's replica is stale: kept while the chain is shorter than
//     its replication factor (a delta-resync candidate) or while the server
//     is joining the chain, deleted once the chain is whole again.
func Reconcile(chunks ChunkMap, server uint64, reps []Replica, joining map[uint64]uint64) (deletes []uint64, missed []meta.Chunk) {
	next := chunks.NextHandle()
	for _, r := range reps {
		if r.Handle >= next {
			continue
		}
		ch, ok := chunks.Chunk(r.Handle)
		switch {
		case !ok:
			deletes = append(deletes, r.Handle)
		case slices.Contains(ch.Chain, server):
			if r.Epoch < ch.Epoch {
				missed = append(missed, ch)
			}
		case joining[r.Handle] == server:
		case len(ch.Chain) >= ch.Replication && r.Epoch <= ch.Epoch:
			deletes = append(deletes, r.Handle)
		}
	}
	return deletes, missed
}

// Fenced lists the chunks whose replica on server it must not serve: the
// chunk's chain at the master's epoch does not include the server (it
// was removed while away, or is only joining). Without this a server
// that returns (restart or healed partition) with a replica still at the
// old epoch, where it was the tail, would serve stale reads under its
// fresh lease to clients caching that old chain. A member is not listed
// (Reconcile sends it its missed configuration), nor a deleted chunk.
func Fenced(chunks ChunkMap, server uint64, reps []Replica) []meta.Chunk {
	var fenced []meta.Chunk
	for _, r := range reps {
		ch, ok := chunks.Chunk(r.Handle)
		if !ok || slices.Contains(ch.Chain, server) {
			continue
		}
		fenced = append(fenced, ch)
	}
	return fenced
}

// DropOnReport decides whether a member reporting its replica of ch bad
// leaves the chain. Never when only syncing members would be left (they
// may lack updates only the reporter holds). A failed replica (a disk
// error: it applies nothing more) always does, unless it is the only
// member. A replica with bad
// blocks still serves its good ones and holds every acknowledged update
// elsewhere, so it leaves only when another live member can serve
// instead: one not fenced, verified and without bad blocks. When every
// member has bad blocks (a crash of all of them), the chain stays, and
// the fence, keeper and heal rules choose from the evidence.
func DropOnReport(ch meta.Chunk, reporter uint64, failed bool, live map[uint64]Liveness, ev map[uint64]map[uint64]Evidence) bool {
	if !slices.Contains(ch.Chain, reporter) || len(ch.Chain) < 2 {
		return false
	}
	if rest := slices.DeleteFunc(slices.Clone(ch.Chain), func(id uint64) bool { return id == reporter }); ch.IsSyncing(rest[0]) {
		return false // the others have not caught up: it holds updates they lack
	}
	if failed {
		return true
	}
	for _, id := range ch.Chain {
		e, ok := ev[id][ch.Handle]
		if id != reporter && live[id] == Alive && ok && e.Verified && e.BadBlocks == 0 && !(e.Fenced && e.Epoch == ch.Epoch) {
			return true
		}
	}
	return false
}
