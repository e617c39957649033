package meta

import (
	"maps"
	"slices"
)

// SetReplication changes the replication factor of file or volume Inode
// and of every chunk it holds (catena setrep). The master's repair loop
// then makes the chains agree: a chain shorter than its factor gains
// members by copy, one longer loses its surplus (decide.PlanTrims), each
// change a new epoch of the chain; a server taken out of a chain deletes
// its replica once the chain is whole. A directory, symlink or special
// file is refused (ErrIsDir, ErrInvalid): the caller walks a tree.
type SetReplication struct {
	Inode       uint64
	Replication int
	Time        int64
}

func (SetReplication) commandType() string { return "setrep" }

func (s *State) setReplication(c SetReplication) Result {
	if c.Replication < 1 || c.Replication > MaxReplication {
		return fail(errorf(ErrInvalid, "replication %d not in [1, %d]", c.Replication, MaxReplication))
	}
	n, err := s.dataFile(c.Inode)
	if err != nil {
		return fail(err)
	}
	n.replication = c.Replication
	for _, idx := range slices.Sorted(maps.Keys(n.chunks)) {
		s.chunks[n.chunks[idx]].Replication = c.Replication
	}
	n.ctime = c.Time
	return Result{Info: s.info(n)}
}

// SetDraining starts (Draining) or ends the drain of chunkserver Server:
// while it drains, the master places no new replica on it and moves each
// of its replicas elsewhere (copy first, then out of the chain: the
// chunk never has fewer members than its factor). ErrNotFound for a
// server never registered.
type SetDraining struct {
	Server   ServerID
	Draining bool
}

func (SetDraining) commandType() string { return "setdraining" }

func (s *State) setDraining(c SetDraining) Result {
	sv, ok := s.servers[c.Server]
	if !ok {
		return fail(errorf(ErrNotFound, "chunkserver %d", c.Server))
	}
	sv.Draining = c.Draining
	return Result{}
}
