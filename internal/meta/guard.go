package meta

import (
	"bytes"
	"encoding/json"
)

// Guarded commands: a permission check that holds where the command
// applies, not only where it was asked for. The leader checks a caller's
// call against its state before it proposes (a refusal costs no commit),
// but other commands commit in between: a chmod that removed the
// caller's right and returned before this command committed must win. So
// the leader proposes the command wrapped in As, with the caller and the
// checks it passed, and Apply evaluates the checks again against the
// state the command meets in the log: a command applies only if its
// caller may make it then. The checks are data (Check), evaluated by the
// same functions as the leader's (access.go), so the log replays the same
// answer everywhere.

// CheckOp names one of the permission rules of access.go.
type CheckOp string

// The rules a Check may name; the fields each uses are in brackets.
const (
	CheckOpPath       CheckOp = "path"      // CheckPath [Path, Want]
	CheckOpInode      CheckOp = "inode"     // CheckInode [Inode, Want]
	CheckOpReach      CheckOp = "reach"     // CheckReach [Inode]
	CheckOpEntry      CheckOp = "entry"     // CheckEntry [Inode, Name, Remove]
	CheckOpEntryPath  CheckOp = "entrypath" // CheckEntryPath [Path, Remove]
	CheckOpOwner      CheckOp = "owner"     // CheckOwner [Inode]
	CheckOpChown      CheckOp = "chown"     // CheckChown [Inode, SetUID, UID, SetGID, GID]
	CheckOpTree       CheckOp = "tree"      // CheckTree [Path]
	CheckOpOpen       CheckOp = "open"      // CheckOpen [Inode]
	CheckOpMove       CheckOp = "move"      // CheckMove [Inode, Name, DstInode]
	CheckOpMovePath   CheckOp = "movepath"  // CheckMovePath [Path, Dst]
	CheckOpLinkSource CheckOp = "linksrc"   // CheckLinkSource [Inode]
	CheckOpRoot       CheckOp = "root"      // only root [Name: what is root's]
	CheckOpReadTree   CheckOp = "readtree"  // CheckReadTree [Path]
)

// Check is one permission rule with its arguments.
type Check struct {
	Op     CheckOp
	Path   string `json:",omitempty"`
	Inode  uint64 `json:",omitempty"`
	Name   string `json:",omitempty"`
	Want   uint32 `json:",omitempty"`
	Remove bool   `json:",omitempty"`
	// Move: where the entry goes.
	Dst      string `json:",omitempty"`
	DstInode uint64 `json:",omitempty"`
	// Chown: the owner and the group asked for, each where Set (the
	// current one otherwise).
	SetUID bool   `json:",omitempty"`
	UID    uint32 `json:",omitempty"`
	SetGID bool   `json:",omitempty"`
	GID    uint32 `json:",omitempty"`
}

// Allow is nil when u passes every check, in order; else the first
// refusal (ErrPermission), or ErrInvalid for a check it does not know.
func (s *State) Allow(u User, checks []Check) error {
	for _, c := range checks {
		if err := s.allow(u, c); err != nil {
			return err
		}
	}
	return nil
}

func (s *State) allow(u User, c Check) error {
	switch c.Op {
	case CheckOpPath:
		return s.CheckPath(u, c.Path, c.Want)
	case CheckOpInode:
		return s.CheckInode(u, c.Inode, c.Want)
	case CheckOpReach:
		return s.CheckReach(u, c.Inode)
	case CheckOpEntry:
		return s.CheckEntry(u, c.Inode, c.Name, c.Remove)
	case CheckOpEntryPath:
		return s.CheckEntryPath(u, c.Path, c.Remove)
	case CheckOpOwner:
		return s.CheckOwner(u, c.Inode)
	case CheckOpChown:
		n := s.inodes[c.Inode]
		if n == nil {
			return nil // the command says so
		}
		uid, gid := n.uid, n.gid
		if c.SetUID {
			uid = c.UID
		}
		if c.SetGID {
			gid = c.GID
		}
		return s.CheckChown(u, c.Inode, uid, gid)
	case CheckOpTree:
		return s.CheckTree(u, c.Path)
	case CheckOpReadTree:
		return s.CheckReadTree(u, c.Path)
	case CheckOpOpen:
		return s.CheckOpen(u, c.Inode)
	case CheckOpMove:
		return s.CheckMove(u, c.Inode, c.Name, c.DstInode)
	case CheckOpMovePath:
		return s.CheckMovePath(u, c.Path, c.Dst)
	case CheckOpLinkSource:
		return s.CheckLinkSource(u, c.Inode)
	case CheckOpRoot:
		if u.Root {
			return nil
		}
		return errorf(ErrPermission, "%s is root's (an admin certificate's)", c.Name)
	}
	return errorf(ErrInvalid, "unknown permission check %q", c.Op)
}

// CheckOpen: u could open inode ino, to read or to write (a mount
// session holding it, a client asking for its chunks).
func (s *State) CheckOpen(u User, ino uint64) error {
	if err := s.CheckReach(u, ino); err != nil {
		return err
	}
	if read, write := s.Rights(u, ino); read || write {
		return nil
	}
	return s.CheckInode(u, ino, MayRead)
}

// As is Cmd made by User, applied only if User passes Checks in the
// state it meets (ErrPermission otherwise, and nothing changes).
type As struct {
	User   User
	Checks []Check
	Cmd    Command
}

func (As) commandType() string { return "as" }

// asWire is As in the log: the command in its own envelope.
type asWire struct {
	User   User
	Checks []Check
	Cmd    json.RawMessage
}

// MarshalJSON encodes Cmd in its envelope, as Encode does.
func (a As) MarshalJSON() ([]byte, error) {
	switch a.Cmd.(type) {
	case As, Request:
		return nil, errorf(ErrInvalid, "a %T inside an As", a.Cmd)
	}
	inner, err := Encode(a.Cmd)
	if err != nil {
		return nil, err
	}
	return json.Marshal(asWire{User: a.User, Checks: a.Checks, Cmd: inner})
}

func decodeGuarded(raw json.RawMessage) (Command, error) {
	var w asWire
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, err
	}
	cmd, err := Decode(w.Cmd)
	if err != nil {
		return nil, err
	}
	switch cmd.(type) {
	case As, Request: // a Request holds an As, not the converse
		return nil, errorf(ErrCorrupt, "a %T inside an As", cmd)
	}
	return As{User: w.User, Checks: w.Checks, Cmd: cmd}, nil
}

func (s *State) applyAs(c As) Result {
	if err := s.Allow(c.User, c.Checks); err != nil {
		return fail(err)
	}
	if sa, ok := c.Cmd.(Setattr); ok {
		c.Cmd = s.dropSetgid(c.User, sa)
	}
	return s.apply(c.Cmd)
}

// dropSetgid: a chmod by a caller outside the group the file has
// afterwards leaves the setgid bit clear (as Linux, without
// CAP_FSETID): nobody gives a group's rights to a program of theirs
// by a chmod alone.
func (s *State) dropSetgid(u User, sa Setattr) Setattr {
	n := s.inodes[sa.Inode]
	if u.Root || n == nil || sa.Set&SetMode == 0 || sa.Mode&0o2000 == 0 {
		return sa
	}
	gid := n.gid
	if sa.Set&SetGid != 0 {
		gid = sa.Gid
	}
	if !u.InGroup(gid) {
		sa.Mode &^= 0o2000
	}
	return sa
}
