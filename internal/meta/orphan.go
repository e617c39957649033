package meta

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// Mount sessions and orphans.
//
// A FUSE mount opens a session (RenewMount, renewed well within its TTL).
// When the mount unlinks a file it holds open, or renames another file over
// it, its Unlink or RenameAt carries the session in Keep: if that was the
// file's last name, the file is not deleted but becomes an orphan of the
// session — an inode with no name (nlink 0), still readable, writable and
// resizable by inode, with its chunks. The mount releases it at its last
// close (ReleaseOrphan); a clean unmount ends the session (EndMount); and
// when the mount dies, ExpireMounts reclaims the orphans of every session
// not renewed within its TTL, so orphans are never leaked.
//
// Rules (all times are command times, so every replica decides alike):
//   - Keep naming an unknown session deletes the file as without Keep.
//   - A session expires at its last renewal + TTL, but not before the
//     leader that proposes ExpireMounts has led for TTL (LeaderSince): a
//     mount cut off by a master failover gets a full TTL to renew with the
//     new leader.
//   - Renewing an expired but not yet reclaimed session keeps its orphans;
//     renewing a reclaimed one starts an empty session.

// RenewMount opens or renews mount session Session until Time + TTL.
type RenewMount struct {
	Session uint64
	TTL     int64 // nanoseconds, > 0
	Time    int64
}

// EndMount ends a session and deletes its orphans.
type EndMount struct {
	Session uint64
	Time    int64
}

// ReleaseOrphan deletes Inode if it is an orphan of Session (a no-op
// otherwise: the file may have kept another name).
type ReleaseOrphan struct {
	Session uint64
	Inode   uint64
	Time    int64
}

// ExpireMounts ends every session expired at Time, as seen by a leader
// elected at LeaderSince.
type ExpireMounts struct {
	Time        int64
	LeaderSince int64
}

func (RenewMount) commandType() string    { return "renewmount" }
func (EndMount) commandType() string      { return "endmount" }
func (ReleaseOrphan) commandType() string { return "releaseorphan" }
func (ExpireMounts) commandType() string  { return "expiremounts" }

// mountSession is a mount's session.
type mountSession struct {
	expires int64
	ttl     int64
	orphans map[uint64]bool
}

func decodeOrphan(typ string, raw json.RawMessage) (Command, bool, error) {
	var (
		c   Command
		err error
	)
	switch typ {
	case "renewmount":
		c, err = decodeAs[RenewMount](raw)
	case "endmount":
		c, err = decodeAs[EndMount](raw)
	case "releaseorphan":
		c, err = decodeAs[ReleaseOrphan](raw)
	case "expiremounts":
		c, err = decodeAs[ExpireMounts](raw)
	default:
		return nil, false, nil
	}
	return c, true, err
}

func (s *State) applyOrphan(c Command) (Result, bool) {
	switch c := c.(type) {
	case RenewMount:
		return s.renewMount(c), true
	case EndMount:
		s.endMount(c.Session)
		return Result{}, true
	case ReleaseOrphan:
		return s.releaseOrphan(c), true
	case ExpireMounts:
		for _, id := range s.ExpiredMounts(c.Time, c.LeaderSince) {
			s.endMount(id)
		}
		return Result{}, true
	}
	return Result{}, false
}

func (s *State) renewMount(c RenewMount) Result {
	if c.Session == 0 || c.TTL <= 0 {
		return fail(fmt.Errorf("%w: mount session %d with ttl %d", ErrInvalid, c.Session, c.TTL))
	}
	if s.mounts == nil {
		s.mounts = map[uint64]*mountSession{}
	}
	m := s.mounts[c.Session]
	if m == nil {
		m = &mountSession{orphans: map[uint64]bool{}}
		s.mounts[c.Session] = m
	}
	m.expires, m.ttl = c.Time+c.TTL, c.TTL
	return Result{}
}

func (s *State) endMount(id uint64) {
	m := s.mounts[id]
	if m == nil {
		return
	}
	for _, ino := range slices.Sorted(maps.Keys(m.orphans)) {
		if n := s.inodes[ino]; n != nil {
			s.deleteTree(n)
		}
	}
	delete(s.mounts, id)
}

func (s *State) releaseOrphan(c ReleaseOrphan) Result {
	m := s.mounts[c.Session]
	if m == nil || !m.orphans[c.Inode] {
		return Result{}
	}
	delete(m.orphans, c.Inode)
	if n := s.inodes[c.Inode]; n != nil {
		s.deleteTree(n)
	}
	return Result{}
}

// keepOrphan makes file n, which lost its last name, an orphan of session
// keep. It reports false (the caller deletes n) when keep is no session.
func (s *State) keepOrphan(n *inode, keep uint64, t int64) bool {
	m := s.mounts[keep]
	if keep == 0 || m == nil || n.dir {
		return false
	}
	n.parent, n.name, n.orphan = 0, "", keep
	n.ctime = t
	m.orphans[n.id] = true
	return true
}

// ExpiredMounts lists, in order, the sessions that ExpireMounts at time
// now by a leader elected at leaderSince would end.
func (s *State) ExpiredMounts(now, leaderSince int64) []uint64 {
	var ids []uint64
	for _, id := range slices.Sorted(maps.Keys(s.mounts)) {
		m := s.mounts[id]
		if m.expires <= now && now-leaderSince >= m.ttl {
			ids = append(ids, id)
		}
	}
	return ids
}

// Orphans lists the orphans of session id, in order.
func (s *State) Orphans(id uint64) []uint64 {
	if m := s.mounts[id]; m != nil {
		return slices.Sorted(maps.Keys(m.orphans))
	}
	return nil
}

// snapMount is a session in a snapshot; its orphans are the inodes whose
// Orphan names it.
type snapMount struct {
	ID      uint64
	Expires int64
	TTL     int64
}

func (s *State) snapMounts() []snapMount {
	var out []snapMount
	for _, id := range slices.Sorted(maps.Keys(s.mounts)) {
		m := s.mounts[id]
		out = append(out, snapMount{ID: id, Expires: m.expires, TTL: m.ttl})
	}
	return out
}

// restoreMounts rebuilds the sessions and checks that every orphan names
// one of them and is a nameless file. It returns the orphan inodes.
func (s *State) restoreMounts(ms []snapMount) (map[uint64]bool, error) {
	orphans := map[uint64]bool{}
	for _, sm := range ms {
		if sm.ID == 0 || sm.TTL <= 0 {
			return nil, fmt.Errorf("bad mount session %d", sm.ID)
		}
		if s.mounts == nil {
			s.mounts = map[uint64]*mountSession{}
		}
		if s.mounts[sm.ID] != nil {
			return nil, fmt.Errorf("mount session %d twice", sm.ID)
		}
		s.mounts[sm.ID] = &mountSession{expires: sm.Expires, ttl: sm.TTL, orphans: map[uint64]bool{}}
	}
	for _, id := range slices.Sorted(maps.Keys(s.inodes)) {
		n := s.inodes[id]
		if n.orphan == 0 {
			continue
		}
		m := s.mounts[n.orphan]
		if m == nil || n.dir || n.parent != 0 || n.name != "" || len(n.links) > 0 {
			return nil, fmt.Errorf("inode %d: bad orphan of session %d", id, n.orphan)
		}
		m.orphans[id] = true
		orphans[id] = true
	}
	return orphans, nil
}
