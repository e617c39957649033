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

// RemoveServer unregisters chunkserver Server (catena admin chunkserver
// remove). It leaves every chain it is still in (epoch + 1 each; the
// other members learn it from their heartbeats, and the repair loop
// brings the chain back to its factor), which loses nothing while each
// of those chains has another up-to-date (non-joining) member: every
// acknowledged write is on all of them. Where Server is the only
// up-to-date member it is refused (ErrInvalid, naming how many) unless
// Force, and then the joiners left count as caught up with what they
// have; a chunk Server is the only member of is refused even so: no
// chain can be empty (remove its file first). The master refuses a
// server it hears from (stop it first): a removed server that registers
// again is a new, empty one.
type RemoveServer struct {
	Server ServerID
	Force  bool
}

func (RemoveServer) commandType() string { return "removeserver" }

func (s *State) removeServer(c RemoveServer) Result {
	if _, ok := s.servers[c.Server]; !ok {
		return fail(errorf(ErrNotFound, "chunkserver %d", c.Server))
	}
	var sole, only int
	for _, ch := range s.chunks {
		if !slices.Contains(ch.Chain, c.Server) {
			continue
		}
		switch {
		case len(ch.Chain) == 1:
			sole++
		case !ch.IsSyncing(c.Server) && !slices.ContainsFunc(ch.Chain, func(id ServerID) bool { return id != c.Server && !ch.IsSyncing(id) }):
			only++
		}
	}
	if sole > 0 {
		return fail(errorf(ErrInvalid, "chunkserver %d holds the only replica of %d chunks: remove their files first", c.Server, sole))
	}
	if only > 0 && !c.Force {
		return fail(errorf(ErrInvalid, "chunkserver %d holds the only up-to-date replica of %d chunks: wait for their repair (catena status), or force and lose what only it has", c.Server, only))
	}
	for _, h := range slices.Sorted(maps.Keys(s.chunks)) {
		ch := s.chunks[h]
		if !slices.Contains(ch.Chain, c.Server) {
			continue
		}
		ch.Chain = slices.DeleteFunc(slices.Clone(ch.Chain), func(id ServerID) bool { return id == c.Server })
		ch.Syncing = slices.DeleteFunc(slices.Clone(ch.Syncing), func(id ServerID) bool { return id == c.Server })
		if ch.IsSyncing(ch.Chain[0]) {
			// The head must not be a joiner (SetChain's rule): an
			// up-to-date member moves to the front; forced with none
			// left, the joiners count as caught up.
			if i := slices.IndexFunc(ch.Chain, func(id ServerID) bool { return !ch.IsSyncing(id) }); i > 0 {
				head := ch.Chain[i]
				ch.Chain = append([]ServerID{head}, slices.Delete(ch.Chain, i, i+1)...)
			} else {
				ch.Syncing = nil
			}
		}
		if len(ch.Syncing) == 0 {
			ch.Syncing = nil
		}
		ch.Epoch++
	}
	delete(s.servers, c.Server)
	return Result{}
}
