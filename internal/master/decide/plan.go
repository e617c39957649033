package decide

import (
	"cmp"
	"slices"

	"github.com/catena-io/catena/internal/meta"
)

// ChainChange is a planned SetChain: Chain becomes the chain at Epoch+1.
type ChainChange struct {
	Handle uint64
	Epoch  uint64 // the epoch the decision was read at
	Chain  []uint64
}

// LostBlocks returns the blocks of a chunk that verify on none of the
// live servers holding a replica of it, chain members or not (every one
// reported them bad), or nil.
func LostBlocks(handle uint64, live map[uint64]bool, ev map[uint64]map[uint64]Evidence) []int64 {
	var lost []int64
	holders := 0
	for id, inv := range ev {
		e, ok := inv[handle]
		if !live[id] || !ok {
			continue
		}
		if holders == 0 {
			lost = slices.Clone(e.Bad)
		} else {
			lost = slices.DeleteFunc(lost, func(b int64) bool { return !slices.Contains(e.Bad, b) })
		}
		holders++
	}
	if len(lost) == 0 {
		return nil
	}
	slices.Sort(lost)
	return lost
}

// RemovalInput is what PlanRemovals looks at.
type RemovalInput struct {
	Chunks []meta.Chunk
	Live   map[uint64]Liveness
	// Evidence maps a server to its replicas' evidence; a server absent
	// from it has not sent an inventory to this leader yet.
	Evidence map[uint64]map[uint64]Evidence
	// Missing reports whether a member whose inventory lacks a chunk is
	// known not to hold it: its inventory can be trusted (this leader's
	// learning period is over) and has lacked the chunk long enough that
	// no creation of the replica can be in flight. nil: never.
	Missing func(server, handle uint64) bool
	// Fresh reports whether a member whose inventory lacks a chunk vouched
	// that it never held a replica of it (HeartbeatRequest.never_held_from):
	// it creates the replica from the first update it receives, so it
	// takes part in the chain as if it held an empty one, and is never
	// Missing. nil: never.
	Fresh func(server, handle uint64) bool
}

// PlanRemovals takes out of every chain its dead members, its members
// whose inventory reports the chunk fenced at the chunk's current epoch (a
// replica reloaded by a restart must rejoin through a new configuration,
// internal/chain's doc; a fenced one serves nothing, so it is treated like
// a dead one and repair re-adds it by delta resync), and its members that
// do not hold the replica at all and may have held one (lost in a crash
// before its first sync). A member that never held one is kept: replicas
// come into being with their chunk's first update, and such a member
// proves that nothing was ever written to the chunk (every write reaches
// every member, and a member joins a chain only with a copy). The last
// copy is never dropped: a chunk whose members are all dead keeps its
// chain (a returning member brings it back). When no live member can
// serve (every one fenced, as after a crash of the whole cluster), one is
// kept as the sole member at epoch+1 (which lifts its fence: with no
// successor its sequence numbers cannot collide), chosen by keeperOf from
// the evidence; until every candidate has been verified, nothing changes.
// A syncing member (meta.Chunk.Syncing) is never the keeper nor the new
// head: while only syncing members would be left, the live members
// holding every acknowledged update stay even when fenced (the syncing
// one catches up from them), and with none alive nothing changes.
func PlanRemovals(in RemovalInput) []ChainChange {
	var out []ChainChange
	for _, ch := range in.Chunks {
		alive := slices.DeleteFunc(slices.Clone(ch.Chain), func(id uint64) bool { return in.Live[id] == Dead })
		if len(alive) == 0 {
			continue
		}
		var kept, fenced []uint64
		serving := 0
		for _, id := range alive {
			inv, reported := in.Evidence[id]
			ev, has := inv[ch.Handle]
			switch {
			case !reported:
				kept = append(kept, id) // no inventory yet: it may hold the chunk
			case !has && in.Fresh != nil && in.Fresh(id, ch.Handle):
				kept = append(kept, id) // creates it with the first update
				serving++
			case !has && in.Missing != nil && in.Missing(id, ch.Handle):
				// Holds nothing: never a member, never a keeper.
			case has && ev.Fenced && ev.Epoch == ch.Epoch:
				fenced = append(fenced, id)
			default:
				kept = append(kept, id)
				serving++
			}
		}
		if serving == len(kept) && len(kept) > 1 && len(ch.Syncing) == 0 {
			if k, ok := combineKeeper(ch.Handle, kept, in.Evidence); ok {
				kept = []uint64{k}
			}
		}
		switch {
		case len(kept) == len(ch.Chain):
			continue
		case serving == 0 && len(kept) > 0 && len(fenced) > 0:
			continue // the others are fenced, these not heard yet: wait for their evidence
		case len(kept) > 0:
		case serving == 0 && len(fenced) == 0:
			continue // nobody alive holds it: wait for a member to return
		case serving == 0:
			holders := slices.DeleteFunc(slices.Clone(fenced), ch.IsSyncing)
			if len(holders) == 0 {
				continue
			}
			k, ok := keeperOf(ch.Handle, holders, in.Evidence)
			if !ok {
				continue
			}
			kept = []uint64{k}
		}
		if ch.IsSyncing(kept[0]) {
			// Only members that have not caught up would be left, and
			// they may lack acknowledged updates: the live members that
			// hold them all stay, fenced or not (a joiner catches up
			// from a fenced predecessor), and with none alive the chain
			// waits for one to return.
			var keep []uint64
			for _, id := range ch.Chain {
				if slices.Contains(kept, id) || (!ch.IsSyncing(id) && slices.Contains(fenced, id)) {
					keep = append(keep, id)
				}
			}
			if len(keep) == len(ch.Chain) || ch.IsSyncing(keep[0]) {
				continue
			}
			kept = keep
		}
		out = append(out, ChainChange{Handle: ch.Handle, Epoch: ch.Epoch, Chain: kept})
	}
	return out
}

// PlanCaughtUp lists the syncing members (meta.Chunk.Syncing) whose last
// report proves they caught up: the chunk at its current epoch, neither
// fenced nor catching up. (A member reconfigured into a chain it was not
// in starts catching up at that epoch; it stops only once it installed
// its predecessor's state, durably.)
func PlanCaughtUp(chunks []meta.Chunk, ev map[uint64]map[uint64]Evidence) []meta.CaughtUpMember {
	var out []meta.CaughtUpMember
	for _, ch := range chunks {
		for _, id := range ch.Syncing {
			if e, ok := ev[id][ch.Handle]; ok && e.Epoch == ch.Epoch && !e.Fenced && !e.CatchingUp {
				out = append(out, meta.CaughtUpMember{Handle: ch.Handle, Epoch: ch.Epoch, Server: id})
			}
		}
	}
	return out
}

// combineKeeper handles a chain whose serving members all have blocks that
// do not verify (bit rot on every replica, or a copy of a lost block):
// none can leave the chain for a clean one (DropOnReport), and a bad block
// of the tail fails reads. When some member has good a block another one
// lacks, one member is kept (keeperOf) so that PlanHeals restores its bad
// blocks from the others, which then return by delta resync: the good
// blocks of all are combined. ok is false when that cannot help.
func combineKeeper(handle uint64, members []uint64, ev map[uint64]map[uint64]Evidence) (uint64, bool) {
	for _, id := range members {
		if e := ev[id][handle]; !e.Verified || e.BadBlocks == 0 {
			return 0, false
		}
	}
	k, ok := keeperOf(handle, members, ev)
	if !ok {
		return 0, false
	}
	for _, b := range ev[k][handle].Bad {
		for _, id := range members {
			if id != k && !slices.Contains(ev[id][handle].Bad, b) {
				return k, true
			}
		}
	}
	return 0, false
}

// keeperOf picks, among members that all hold the chunk fenced, the one to
// keep as the sole member. Every acknowledged update is durable on every
// member (the tail acknowledges after the fdatasync of each member), so
// each member's durable state holds them all, except in blocks that do
// not verify. Hence: a member without bad blocks first; then the most
// durable history, (applied epoch, applied seq), which keeps the most of
// what was in flight; then fewer bad blocks; then the lower id. ok is
// false while some candidate has not been verified yet (its bad blocks
// are not known): wait for the evidence.
func keeperOf(handle uint64, candidates []uint64, ev map[uint64]map[uint64]Evidence) (uint64, bool) {
	for _, id := range candidates {
		if !ev[id][handle].Verified {
			return 0, false
		}
	}
	best := slices.MinFunc(candidates, func(a, b uint64) int {
		ea, eb := ev[a][handle], ev[b][handle]
		switch {
		case (ea.BadBlocks == 0) != (eb.BadBlocks == 0):
			return boolOrder(ea.BadBlocks == 0, eb.BadBlocks == 0)
		case ea.AppliedEpoch != eb.AppliedEpoch:
			return cmp.Compare(eb.AppliedEpoch, ea.AppliedEpoch)
		case ea.AppliedSeq != eb.AppliedSeq:
			return cmp.Compare(eb.AppliedSeq, ea.AppliedSeq)
		case ea.BadBlocks != eb.BadBlocks:
			return cmp.Compare(ea.BadBlocks, eb.BadBlocks)
		}
		return cmp.Compare(a, b)
	})
	return best, true
}

// RepairPlan is one re-replication: Target copies the chunk from the tail
// of Chain (at Epoch), then joins at the tail.
type RepairPlan struct {
	Handle    uint64
	Epoch     uint64
	ChunkSize int64
	Chain     []uint64
	Target    uint64
	// Returning: Target reported a replica of the chunk (delta resync).
	Returning bool
}

// RepairInput is what PlanRepairs looks at.
type RepairInput struct {
	Chunks  []meta.Chunk
	Servers []meta.Server
	Live    map[uint64]Liveness
	Free    map[uint64]int64
	// Inventory maps a server to the handles (-> epoch) it reported.
	Inventory map[uint64]map[uint64]uint64
	// Busy: handles with a repair in flight or held back after a failure.
	Busy map[uint64]bool
	// Bad maps a handle to servers to avoid as its target.
	Bad map[uint64]map[uint64]bool
	// Slots is how many new repairs may start.
	Slots     int
	DomainKey string
}

// PlanRepairs picks up to Slots chunks shorter than their replication
// factor, most-missing first (ties: lower handle), each with a target. A
// chunk is repaired only when no member is syncing (the copy comes from the
// tail, which must hold every acknowledged update) and every member is alive: dead members are
// removed first, and an unknown one may still be serving; and only once
// its tail, the source of the copy, reports a replica (a chunk nothing
// was written to yet has none: its first write creates them). The target is a
// live non-member: one that reported a replica of the chunk (a returning
// server: delta resync; highest epoch first) if any, else by placement
// (fresh failure domain, most free space, lower id); servers in Bad only
// when nothing else is left.
func PlanRepairs(in RepairInput) []RepairPlan {
	type need struct {
		ch      meta.Chunk
		missing int
	}
	draining := map[uint64]bool{}
	for _, sv := range in.Servers {
		draining[sv.ID] = sv.Draining
	}
	var needs []need
	for _, ch := range in.Chunks {
		// A draining member counts for nothing: the chunk gains a member
		// elsewhere, then PlanTrims takes the draining one out.
		staying := len(ch.Chain) - countFunc(ch.Chain, func(id uint64) bool { return draining[id] })
		if staying >= ch.Replication || in.Busy[ch.Handle] || len(ch.Syncing) > 0 {
			continue // a syncing member first catches up: the tail is the source
		}
		if len(ch.Chain) == 0 {
			continue
		}
		if _, ok := in.Inventory[ch.Chain[len(ch.Chain)-1]][ch.Handle]; !ok {
			continue // no source yet
		}
		if !slices.ContainsFunc(ch.Chain, func(id uint64) bool { return in.Live[id] != Alive }) {
			needs = append(needs, need{ch, ch.Replication - staying})
		}
	}
	slices.SortFunc(needs, func(a, b need) int {
		if c := cmp.Compare(b.missing, a.missing); c != 0 {
			return c
		}
		return cmp.Compare(a.ch.Handle, b.ch.Handle)
	})
	labels := make(map[uint64]map[string]string, len(in.Servers))
	for _, sv := range in.Servers {
		labels[sv.ID] = sv.Labels
	}
	free := make(map[uint64]int64, len(in.Free))
	for id, f := range in.Free {
		free[id] = f
	}
	var out []RepairPlan
	for _, n := range needs {
		if len(out) >= in.Slots {
			break
		}
		target, returning, ok := pickTarget(n.ch, in, labels, free)
		if !ok {
			continue
		}
		if !returning {
			free[target] -= n.ch.ChunkSize // spread this round's copies
		}
		out = append(out, RepairPlan{Handle: n.ch.Handle, Epoch: n.ch.Epoch, ChunkSize: n.ch.ChunkSize,
			Chain: slices.Clone(n.ch.Chain), Target: target, Returning: returning})
	}
	return out
}

func pickTarget(ch meta.Chunk, in RepairInput, labels map[uint64]map[string]string, free map[uint64]int64) (uint64, bool, bool) {
	usedDomains := map[string]bool{}
	for _, id := range ch.Chain {
		if d := labels[id][in.DomainKey]; d != "" {
			usedDomains[d] = true
		}
	}
	type cand struct {
		id        uint64
		returning bool
		epoch     uint64
		bad       bool
		fresh     bool // failure domain not in the chain yet
	}
	var cands []cand
	for _, sv := range in.Servers {
		if in.Live[sv.ID] != Alive || slices.Contains(ch.Chain, sv.ID) || sv.Draining {
			continue
		}
		epoch, has := in.Inventory[sv.ID][ch.Handle]
		d := labels[sv.ID][in.DomainKey]
		cands = append(cands, cand{id: sv.ID, returning: has, epoch: epoch,
			bad: in.Bad[ch.Handle][sv.ID], fresh: d == "" || !usedDomains[d]})
	}
	if len(cands) == 0 {
		return 0, false, false
	}
	best := slices.MinFunc(cands, func(a, b cand) int {
		switch {
		case a.bad != b.bad:
			return boolOrder(!a.bad, !b.bad)
		case a.returning != b.returning:
			return boolOrder(a.returning, b.returning)
		case a.returning && a.epoch != b.epoch:
			return cmp.Compare(b.epoch, a.epoch)
		case !a.returning && a.fresh != b.fresh:
			return boolOrder(a.fresh, b.fresh)
		case !a.returning && free[a.id] != free[b.id]:
			return cmp.Compare(free[b.id], free[a.id])
		}
		return cmp.Compare(a.id, b.id)
	})
	return best.id, best.returning && !best.bad, true
}

// boolOrder sorts true before false.
func boolOrder(a, b bool) int {
	if a == b {
		return 0
	}
	if a {
		return -1
	}
	return 1
}

// HealPlan restores the bad blocks of a sole member (Target) from other
// servers' replicas of the chunk (Sources, in order of preference).
type HealPlan struct {
	Handle  uint64
	Epoch   uint64
	Target  uint64
	Blocks  []int64
	Sources []uint64
}

// PlanHeals finds the chunks whose only member reports bad blocks that a
// live non-member (a fenced or stale replica kept as a resync base) has
// good, as after a crash of every member when each lost some block: the
// good blocks of all are combined. Sources holding the target's exact
// durable state (epoch, seq) come first, then the most durable. Chains of
// several members are not healed in place: a bad member leaves the chain
// (ReportReplica) and returns by delta resync.
//
// hold lists the chunks not to re-replicate yet: those with a plan, and
// those whose sole member has bad blocks while some live holder is not
// verified yet (it may have them good). Growing the chain first would copy
// the bad blocks as lost and then delete the holder's replica.
func PlanHeals(chunks []meta.Chunk, live map[uint64]Liveness, ev map[uint64]map[uint64]Evidence, busy map[uint64]bool) (plans []HealPlan, hold map[uint64]bool) {
	hold = map[uint64]bool{}
	var out []HealPlan
	for _, ch := range chunks {
		if len(ch.Chain) != 1 || busy[ch.Handle] {
			continue
		}
		k := ch.Chain[0]
		ek, ok := ev[k][ch.Handle]
		if live[k] != Alive || !ok || ek.Epoch != ch.Epoch || len(ek.Bad) == 0 {
			continue
		}
		type src struct {
			id    uint64
			exact bool
			e     Evidence
		}
		var srcs []src
		for id, inv := range ev {
			e, has := inv[ch.Handle]
			if id == k || !has || live[id] != Alive {
				continue
			}
			if !e.Verified {
				hold[ch.Handle] = true
				continue
			}
			if slices.ContainsFunc(ek.Bad, func(b int64) bool { return !slices.Contains(e.Bad, b) }) {
				srcs = append(srcs, src{id, e.AppliedEpoch == ek.AppliedEpoch && e.AppliedSeq == ek.AppliedSeq, e})
			}
		}
		if len(srcs) == 0 || hold[ch.Handle] {
			continue
		}
		slices.SortFunc(srcs, func(a, b src) int {
			switch {
			case a.exact != b.exact:
				return boolOrder(a.exact, b.exact)
			case a.e.AppliedEpoch != b.e.AppliedEpoch:
				return cmp.Compare(b.e.AppliedEpoch, a.e.AppliedEpoch)
			case a.e.AppliedSeq != b.e.AppliedSeq:
				return cmp.Compare(b.e.AppliedSeq, a.e.AppliedSeq)
			}
			return cmp.Compare(a.id, b.id)
		})
		p := HealPlan{Handle: ch.Handle, Epoch: ch.Epoch, Target: k, Blocks: slices.Clone(ek.Bad)}
		for _, s := range srcs {
			p.Sources = append(p.Sources, s.id)
		}
		out = append(out, p)
		hold[ch.Handle] = true
	}
	return out, hold
}

// CreateInput is what PlanCreates looks at.
type CreateInput struct {
	Chunks []meta.Chunk
	Live   map[uint64]Liveness
	// Inventory maps a server to the handles (-> epoch) it reported.
	Inventory map[uint64]map[uint64]uint64
	// Lacking reports whether a member's inventory can be trusted and has
	// lacked the chunk long enough (as RemovalInput.Missing, without the
	// judgement of whether it ever held it).
	Lacking func(server, handle uint64) bool
	// Fresh is RemovalInput.Fresh.
	Fresh func(server, handle uint64) bool
}

// PlanCreates lists the chunks whose replicas the master creates itself
// (CreateReplica on every member): chunks whose first write never came,
// or whose replicas were all lost before their first sync (a crash of
// every member), long after their allocation. That is when every member
// is alive and has lacked the chunk past the grace, no live server holds a
// replica of it, and either every member vouched that it never held one
// or none did.
//
// Why all or none: a member that never held the replica may create it from
// an update at any time, one that cannot vouch (it restarted) never does.
// With none able to, no member gains a history between this decision and
// the creations; with all able to, none ever had one. A mixed chain is left
// to PlanRemovals, which drops the members that cannot vouch once they
// lacked the chunk past the grace (they may have lost updates another
// member holds, and an empty replica in their place could take a sequence
// number that member already has).
func PlanCreates(in CreateInput) []meta.Chunk {
	held := map[uint64]bool{}
	for id, inv := range in.Inventory {
		if in.Live[id] != Alive {
			continue
		}
		for h := range inv {
			held[h] = true
		}
	}
	var out []meta.Chunk
	for _, ch := range in.Chunks {
		if len(ch.Chain) == 0 || held[ch.Handle] {
			continue
		}
		fresh, ok := 0, true
		for _, id := range ch.Chain {
			if in.Live[id] != Alive || in.Lacking == nil || !in.Lacking(id, ch.Handle) {
				ok = false
				break
			}
			if in.Fresh != nil && in.Fresh(id, ch.Handle) {
				fresh++
			}
		}
		if ok && (fresh == 0 || fresh == len(ch.Chain)) {
			out = append(out, ch)
		}
	}
	return out
}

// countFunc counts the elements of s for which f holds.
func countFunc[T any](s []T, f func(T) bool) int {
	n := 0
	for _, v := range s {
		if f(v) {
			n++
		}
	}
	return n
}
