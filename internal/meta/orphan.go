package meta

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/catena-io/catena/internal/invariants"
)

// Mount sessions and orphans.
//
// A FUSE mount opens a session (RenewMount, renewed well within its TTL)
// and tells the master which files it holds open (Hold at its first open
// of a file, Unhold after its last close). A file that loses its last name
// (Unlink, RenameAt or Rename over it, Remove) while any session holds it
// is not deleted but becomes an orphan: an inode with no name (nlink 0),
// still readable, writable and resizable by inode, with its chunks. It is
// deleted when the last session holding it lets go: Unhold, EndMount (a
// clean unmount), or ExpireMounts, which ends every session not renewed
// within its TTL (a mount that died) — so orphans are never leaked.
//
// Rules (all times are command times, so every replica decides alike):
//   - Hold needs a live session and an existing file (ErrNotFound), not a
//     volume's (ErrInvalid: no mount opens one, and RemoveVolume does not
//     ask who holds it); a session holds a file once, however often the
//     mount opens it.
//   - A session expires at its last renewal + TTL, but not before the
//     leader that proposes ExpireMounts has led for TTL (LeaderSince): a
//     mount cut off by a master failover gets a full TTL to renew with the
//     new leader.
//   - Renewing an expired but not yet ended session keeps its holds;
//     renewing an ended one starts an empty session.
//   - A session is its opener's: Owner (the identity of the caller's
//     certificate, set by the master, never by the request) is recorded
//     by the renewal that opens it, and a Renew, End, Hold or Unhold
//     naming another owner is refused (ErrPermission) and changes
//     nothing — so no client can end another's session, or let go of the
//     files it holds, to have open-unlinked files deleted under it. A
//     session without an owner (opened by an insecure cluster, or before
//     sessions had owners) is taken by the first renewal that names one.

// MaxSessionTTL bounds a mount session's TTL (nanoseconds): a mount that
// died is reclaimed within it, whatever TTL it asked for.
const MaxSessionTTL = int64(60 * 60 * 1_000_000_000) // an hour

// RenewMount opens or renews mount session Session until Time + TTL.
type RenewMount struct {
	Session uint64
	TTL     int64 // nanoseconds, > 0
	Time    int64
	Owner   string `json:",omitempty"` // the caller's identity
}

// EndMount ends a session: it lets go of every file it holds.
type EndMount struct {
	Session uint64
	Time    int64
	Owner   string `json:",omitempty"`
}

// Hold records that Session holds file Inode open.
type Hold struct {
	Session uint64
	Inode   uint64
	Time    int64
	Owner   string `json:",omitempty"`
}

// Unhold records that Session no longer holds Inode open (a no-op if it
// did not); an orphan that nobody holds any more is deleted.
type Unhold struct {
	Session uint64
	Inode   uint64
	Time    int64
	Owner   string `json:",omitempty"`
}

// ExpireMounts ends every session expired at Time, as seen by a leader
// elected at LeaderSince.
type ExpireMounts struct {
	Time        int64
	LeaderSince int64
}

func (RenewMount) commandType() string   { return "renewmount" }
func (EndMount) commandType() string     { return "endmount" }
func (Hold) commandType() string         { return "hold" }
func (Unhold) commandType() string       { return "unhold" }
func (ExpireMounts) commandType() string { return "expiremounts" }

// mountSession is a mount's session.
type mountSession struct {
	owner   string // who opened it ("" without TLS)
	expires int64
	ttl     int64
	held    map[uint64]bool // inodes the mount holds open
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
	case "hold":
		c, err = decodeAs[Hold](raw)
	case "unhold":
		c, err = decodeAs[Unhold](raw)
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
		if err := s.sessionOwner(c.Session, c.Owner); err != nil {
			return fail(err), true
		}
		s.endMount(c.Session)
		return Result{}, true
	case Hold:
		return s.hold(c), true
	case Unhold:
		if err := s.sessionOwner(c.Session, c.Owner); err != nil {
			return fail(err), true
		}
		s.unhold(c.Session, c.Inode)
		return Result{}, true
	case ExpireMounts:
		for _, id := range s.ExpiredMounts(c.Time, c.LeaderSince) {
			s.endMount(id)
		}
		return Result{}, true
	}
	return Result{}, false
}

func (s *State) renewMount(c RenewMount) Result {
	if c.Session == 0 || c.TTL <= 0 || c.TTL > MaxSessionTTL {
		return fail(errorf(ErrInvalid, "mount session %d with ttl %d (must be in (0, %d])", c.Session, c.TTL, int64(MaxSessionTTL)))
	}
	if s.mounts == nil {
		s.mounts = map[uint64]*mountSession{}
	}
	if err := s.sessionOwner(c.Session, c.Owner); err != nil {
		return fail(err)
	}
	m := s.mounts[c.Session]
	if m == nil {
		m = &mountSession{held: map[uint64]bool{}}
		s.mounts[c.Session] = m
	}
	m.owner, m.expires, m.ttl = c.Owner, c.Time+c.TTL, c.TTL
	return Result{}
}

// sessionOwner refuses a call by owner on session id when the session
// is another's (a session that does not exist, or has no owner, is
// nobody's).
func (s *State) sessionOwner(id uint64, owner string) error {
	if m := s.mounts[id]; m != nil && m.owner != "" && m.owner != owner {
		return errorf(ErrPermission, "mount session %d is another client's", id)
	}
	return nil
}

func (s *State) endMount(id uint64) {
	m := s.mounts[id]
	if m == nil {
		return
	}
	for _, ino := range slices.Sorted(maps.Keys(m.held)) {
		s.unhold(id, ino)
	}
	delete(s.mounts, id)
}

func (s *State) hold(c Hold) Result {
	m := s.mounts[c.Session]
	if m == nil {
		return fail(errorf(ErrNotFound, "mount session %d", c.Session))
	}
	if err := s.sessionOwner(c.Session, c.Owner); err != nil {
		return fail(err)
	}
	n, err := s.file(c.Inode)
	if err != nil {
		return fail(err)
	}
	if s.IsVolume(n.id) {
		return fail(errorf(ErrInvalid, "inode %d is a volume", n.id))
	}
	if !m.held[n.id] {
		m.held[n.id] = true
		if s.holders == nil {
			s.holders = map[uint64]int{}
		}
		s.holders[n.id]++
	}
	return Result{Info: s.info(n)}
}

func (s *State) unhold(session, ino uint64) {
	m := s.mounts[session]
	if m == nil || !m.held[ino] {
		return
	}
	delete(m.held, ino)
	invariants.Check(s.holders[ino] > 0, "meta: inode %d held by session %d, no holders recorded", ino, session)
	if s.holders[ino]--; s.holders[ino] > 0 {
		return
	}
	delete(s.holders, ino)
	if n := s.inodes[ino]; n != nil && n.orphan {
		s.deleteTree(n)
	}
}

// keepOrphan turns file n, which lost its last name, into an orphan if a
// mount holds it open, and reports whether it did (else the caller
// deletes it).
func (s *State) keepOrphan(n *inode) bool {
	if n.dir || s.holders[n.id] == 0 {
		return false
	}
	n.parent, n.name, n.orphan = 0, "", true
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

// Orphans lists the orphans, in order.
func (s *State) Orphans() []uint64 {
	var ids []uint64
	for _, id := range slices.Sorted(maps.Keys(s.holders)) {
		if s.inodes[id].orphan {
			ids = append(ids, id)
		}
	}
	return ids
}

// Held lists the files session id holds open, in order.
func (s *State) Held(id uint64) []uint64 {
	if m := s.mounts[id]; m != nil {
		return slices.Sorted(maps.Keys(m.held))
	}
	return nil
}

// ckptMount is a session in a checkpoint.
type ckptMount struct {
	ID      uint64
	Owner   string `json:",omitempty"`
	Expires int64
	TTL     int64
	Held    []uint64 `json:",omitempty"`
}

func (s *State) ckptMounts() []ckptMount {
	var out []ckptMount
	for _, id := range slices.Sorted(maps.Keys(s.mounts)) {
		m := s.mounts[id]
		out = append(out, ckptMount{ID: id, Owner: m.owner, Expires: m.expires, TTL: m.ttl, Held: slices.Sorted(maps.Keys(m.held))})
	}
	return out
}

// restoreMounts rebuilds the sessions of a checkpoint and the holder
// counts derived from them; Check judges them (checkMounts).
func (s *State) restoreMounts(ms []ckptMount) error {
	for _, sm := range ms {
		if s.mounts == nil {
			s.mounts = map[uint64]*mountSession{}
			s.holders = map[uint64]int{}
		}
		if s.mounts[sm.ID] != nil {
			return fmt.Errorf("mount session %d twice", sm.ID)
		}
		m := &mountSession{owner: sm.Owner, expires: sm.Expires, ttl: sm.TTL, held: map[uint64]bool{}}
		for _, ino := range sm.Held {
			if m.held[ino] {
				return fmt.Errorf("mount session %d: inode %d held twice", sm.ID, ino)
			}
			m.held[ino] = true
			s.holders[ino]++
		}
		s.mounts[sm.ID] = m
	}
	return nil
}
