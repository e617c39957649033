package meta

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAccessAgainstKernel: meta's permission rules (access.go, acl.go)
// decide as the Linux kernel does. The master decides POSIX permissions
// itself, so its rules are checked here against the kernel's own
// decisions on a real directory tree, not against a table written from
// memory.
//
// From a seed, one random tree (files and directories, hard links,
// owners, modes with sticky and setgid bits, access and default ACLs)
// is built twice: in a State through the commands the master applies
// (MkdirAt, CreateAt, Link, Setattr, SetXattr), and on the local disk
// through the system calls (mkdir, open, link, chown, chmod,
// setxattr). Both must end with the same modes, owners and ACLs (ACL
// inheritance, the mode an ACL implies); a difference fails the test
// and ends the seed, since every later comparison would rest on it.
//
// Then a few random users (never root), and root, each get a child
// process: the test binary again, with that user's credentials, which
// makes the system calls it is sent and answers each with its errno.
// The child only answers; this process decides. Each answer is compared
// with meta's decision for the same question, composed of meta's checks
// as internal/master/access.go composes them (checksFor):
//
//	access(2) of every name          CheckPath (mode 0: reach)
//	  the same over all of an inode's names  CheckInode, CheckReach, Rights
//	mkdir of a new name (then rmdir)  CheckEntryPath, CheckEntry
//	unlink or rmdir of every name     CheckEntryPath, CheckEntry (remove)
//	chmod to the mode it has          CheckReach, CheckOwner (Setattr)
//	chown to other owners and groups  CheckReach, CheckChown (Setattr)
//	rm -r of every directory          CheckEntryPath (remove), CheckTree (Remove)
//	rename to a new name              CheckEntryPath/CheckEntry of both (Rename, RenameAt)
//	link of every file to a new name  CheckEntry of the new one (FS Link)
//
// The kernel can only tell whether a removal, chmod, chown, rename or
// link is allowed by doing it: the child does, and before the next
// question this process puts back what changed (a removed file is linked
// back from a stash only root can see, a removed directory made again
// with its owner, mode and ACLs) and checks it is as built. rmdir of a
// directory that is not empty answers without removing it (ENOTEMPTY
// comes after the permission check). rm -r has no one system call: its
// answer is the kernel's rule for it from the children's answers, every
// directory in the tree readable, writable and searchable and every
// entry's removal allowed.
//
// One difference is meta's by design, counted and logged, not failed
// (permKnownRootExec): root may execute a file with no x bit (the
// master never asks execute permission of a file). Linux's own rules
// that go beyond POSIX are meta's too, and checked: an access ACL whose
// mask is empty is ignored (acl_permission_check), a directory moved to
// another parent needs write permission on it, only the owner or who
// may read and write a file links it (fs.protected_hardlinks), rm -r
// needs nothing of an empty directory, and a chmod by an owner outside
// the file's group drops the setgid bit.
//
// Each seed is logged; CATENA_PERM_SEED=n replays one. Needs root (to
// own the tree and to become the users), a local file system with
// POSIX ACLs, and a temporary directory everyone may search.
func TestAccessAgainstKernel(t *testing.T) {
	if os.Getenv(permChildEnv) != "" {
		permChild(t)
		return
	}
	if os.Geteuid() != 0 {
		permSkip(t, "needs root: the kernel's answers come from child processes running as other users (CI runs as root)")
	}
	env := newPermEnv(t)
	var seeds []uint64
	if v := os.Getenv(permSeedEnv); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", permSeedEnv, v, err)
		}
		seeds = []uint64{seed}
	} else {
		base := uint64(time.Now().UnixNano()) % 1e9
		for i := range permSeeds {
			seeds = append(seeds, base+uint64(i))
		}
	}
	for _, seed := range seeds {
		t.Logf("seed %d (replay with %s=%d)", seed, permSeedEnv, seed)
		env.runSeed(t, seed)
	}
	env.rep.log(t)
}

// permSkip skips the test on a machine that cannot run it, but fails it
// under CI (CI=true), which is root on a local disk with ACLs: there a
// skip would hide that the rules went unchecked.
func permSkip(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("cannot compare with the kernel under CI: "+format, args...)
	}
	t.Skipf(format, args...)
}

const (
	permChildEnv = "CATENA_PERM_CHILD" // set in a child: answer system calls, decide nothing
	permSeedEnv  = "CATENA_PERM_SEED"  // replay one seed
	permSeeds    = 30                  // seeds per run: about 0.2 s each on a small machine
	permUsers    = 4                   // random users per seed (and root)
	permMaxError = 5                   // mismatches of each kind reported in full; the rest are counted

	permUndefinedID = 0xffffffff // the id of an ACL entry without one, as setfacl writes it
	stNoexec        = 8          // ST_NOEXEC of statfs(2)
)

// The identities of a tree and its users. Users are never uid 0; gid 0
// may be any user's group.
func permUIDs() []uint32 { return []uint32{0, 1000, 1001, 1002} }
func permGIDs() []uint32 { return []uint32{0, 50, 60, 1000, 1001} }

// permEnv is what all seeds share: the directory they build in, the
// test binary the children run, and the tally.
type permEnv struct {
	base string // searchable by everyone, as are its ancestors
	bin  string // a copy of the test binary everyone may run
	rep  *permReport
}

func newPermEnv(t *testing.T) *permEnv {
	base := t.TempDir()
	// t.TempDir makes base and its parent 0700; the users' walk from /
	// must get through them.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for d := base; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			permSkip(t, "%s may not be searched by others, so no user gets to %s", d, base)
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(base, &sfs); err != nil {
		t.Fatal(err)
	}
	if sfs.Flags&stNoexec != 0 {
		permSkip(t, "%s is mounted noexec: X_OK on every file would be refused", base)
	}
	probe := filepath.Join(base, "acl-probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	acl := encodeACL([]aclEntry{{aclUserObj, 6, permUndefinedID}, {aclUser, 4, 1000}, {aclGroupObj, 0, permUndefinedID},
		{aclMask, 4, permUndefinedID}, {aclOther, 0, permUndefinedID}})
	if err := syscall.Setxattr(probe, ACLAccessXattr, acl, 0); err != nil {
		permSkip(t, "no POSIX ACLs in %s: %v", base, err)
	}
	if err := os.Remove(probe); err != nil {
		t.Fatal(err)
	}
	// The tree is built with the modes asked for, as meta's commands
	// carry them (a FUSE mount applies the umask before).
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })

	// The binary go test built is in a directory only root may enter.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "meta.test")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return &permEnv{base: base, bin: bin, rep: newPermReport()}
}

// permNode is one inode of the random tree.
type permNode struct {
	names    []string // its paths in the tree ("/" for the root); a file may have more
	dir      bool
	mode     uint32 // asked for at creation
	uid, gid uint32 // the creator's (the root's owner)
	chmod    uint32 // a mode set after creation, when hasChmod
	hasChmod bool
	acl      []byte // an access ACL set after creation; nil for none
	aclFirst bool   // the ACL before the chmod
	defACL   []byte // a default ACL (directories); nil for none
	depth    int
	ino      uint64
}

// permStat is what decides permissions about an inode: its mode (with
// the setuid, setgid and sticky bits), owner and ACLs (as text, an
// access ACL that the mode says all of being none).
type permStat struct {
	mode, uid, gid uint32
	acl, defACL    string
}

func (p permStat) String() string {
	s := fmt.Sprintf("mode %04o owner %d:%d", p.mode, p.uid, p.gid)
	if p.acl != "" {
		s += " acl " + p.acl
	}
	if p.defACL != "" {
		s += " default " + p.defACL
	}
	return s
}

// permRun is one seed: its tree in a State and on disk, and the
// decisions compared.
type permRun struct {
	env     *permEnv
	seed    uint64
	rnd     *rand.Rand
	s       *State
	tm      int64
	root    string // the tree's "/" on disk
	stash   string // root's: a link to every file, to put back a removed name
	nodes   []*permNode
	byName  map[string]*permNode
	entries map[string][]string // a directory's path -> its entries' paths
	built   map[*permNode]permStat
	rawACLs map[*permNode][2][]byte // the ACL xattrs on disk, to put back
	// chmodLeft: the mode the last chmod the kernel allowed left.
	chmodLeft uint32
	probes    int
}

func (e *permEnv) runSeed(t *testing.T, seed uint64) {
	r := &permRun{env: e, seed: seed, rnd: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), s: New(),
		byName: map[string]*permNode{}, entries: map[string][]string{}, built: map[*permNode]permStat{},
		rawACLs: map[*permNode][2][]byte{}}
	dir := filepath.Join(e.base, strconv.FormatUint(seed, 10))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	r.root, r.stash = filepath.Join(dir, "tree"), filepath.Join(dir, "stash")
	if err := os.Mkdir(r.stash, 0o700); err != nil {
		t.Fatal(err)
	}
	r.genTree()
	r.buildMeta(t, r.s)
	r.buildDisk(t)
	if !r.sameState(t) {
		return
	}
	for range permUsers {
		r.askAs(t, r.randUser())
	}
	r.askAs(t, User{Root: true})
}

// disk is where path p of the tree is on disk.
func (r *permRun) disk(p string) string {
	if p == "/" {
		return r.root
	}
	return r.root + p
}

func (r *permRun) pick(from []uint32) uint32 { return from[r.rnd.IntN(len(from))] }

// genTree draws a tree of 20 to 40 inodes, at most 3 levels below the
// root, and a few extra names of files.
func (r *permRun) genTree() {
	root := &permNode{names: []string{"/"}, dir: true, uid: r.pick(permUIDs()), gid: r.pick(permGIDs())}
	root.mode = r.dirMode()
	if r.rnd.IntN(4) > 0 { // mostly a root everyone may search, so the tree below matters
		root.mode = r.pick([]uint32{0o755, 0o777, 0o1777, 0o711, 0o751, 0o775})
	}
	r.decorate(root)
	r.add(root)
	// Half the trees start with a shared directory holding a sticky
	// one, as /srv/shared/tmp: users meet each other's entries there.
	shared := r.rnd.IntN(2) == 0
	n := 20 + r.rnd.IntN(21)
	for i := 1; i < n; i++ {
		var dirs []*permNode
		for _, d := range r.nodes {
			if d.dir && d.depth < 3 {
				dirs = append(dirs, d)
			}
		}
		parent := dirs[r.rnd.IntN(len(dirs))]
		nd := &permNode{dir: r.rnd.IntN(5) < 2, uid: r.pick(permUIDs()), gid: r.pick(permGIDs()), depth: parent.depth + 1}
		if shared && i <= 2 {
			parent, nd.dir, nd.depth = r.nodes[i-1], true, i
		}
		name := fmt.Sprintf("f%d", i)
		nd.mode = r.fileMode()
		if nd.dir {
			name, nd.mode = fmt.Sprintf("d%d", i), r.dirMode()
		}
		nd.names = []string{path.Join(parent.names[0], name)}
		if shared && i <= 2 {
			nd.mode = []uint32{0o777, 0o1777}[i-1]
		} else {
			r.decorate(nd)
		}
		r.add(nd)
	}
	for i := range r.rnd.IntN(4) {
		var files, dirs []*permNode
		for _, nd := range r.nodes {
			if !nd.dir {
				files = append(files, nd)
			} else if nd.depth < 3 {
				dirs = append(dirs, nd)
			}
		}
		if len(files) == 0 {
			break
		}
		f, d := files[r.rnd.IntN(len(files))], dirs[r.rnd.IntN(len(dirs))]
		name := path.Join(d.names[0], fmt.Sprintf("l%d", i))
		f.names = append(f.names, name)
		r.byName[name] = f
		r.entries[d.names[0]] = append(r.entries[d.names[0]], name)
	}
}

func (r *permRun) add(nd *permNode) {
	r.nodes = append(r.nodes, nd)
	r.byName[nd.names[0]] = nd
	if p := nd.names[0]; p != "/" {
		r.entries[path.Dir(p)] = append(r.entries[path.Dir(p)], p)
	}
}

// decorate gives nd, sometimes, a chmod after its creation, an access
// ACL and (a directory) a default ACL.
func (r *permRun) decorate(nd *permNode) {
	if r.rnd.IntN(4) == 0 {
		nd.hasChmod = true
		nd.chmod = r.fileMode()
		if nd.dir {
			nd.chmod = r.dirMode()
			if r.rnd.IntN(4) == 0 {
				nd.chmod |= modeSetgid
			}
		}
	}
	if r.rnd.IntN(3) == 0 {
		nd.acl = r.randACL()
		nd.aclFirst = r.rnd.IntN(2) == 0
	}
	if nd.dir && r.rnd.IntN(3) == 0 {
		nd.defACL = r.randACL()
	}
}

// dirMode draws a directory's mode: often a shared one (sticky or not),
// where users meet each other's entries.
func (r *permRun) dirMode() uint32 {
	switch r.rnd.IntN(4) {
	case 0:
		m := r.rnd.Uint32N(0o1000)
		if r.rnd.IntN(4) == 0 {
			m |= modeSticky
		}
		return m
	case 1:
		return r.pick([]uint32{0o777, 0o1777, 0o1777, 0o1775, 0o1770})
	}
	return r.pick([]uint32{0o755, 0o775, 0o777, 0o1777, 0o1770, 0o1733, 0o711, 0o751, 0o750, 0o770, 0o700, 0o555, 0o500, 0o311, 0})
}

func (r *permRun) fileMode() uint32 {
	if r.rnd.IntN(4) == 0 {
		return r.rnd.Uint32N(0o1000)
	}
	return r.pick([]uint32{0o644, 0o664, 0o666, 0o640, 0o660, 0o600, 0o604, 0o400, 0o444, 0o755, 0o700, 0, 0o222, 0o111, 0o060})
}

// randACL draws an ACL in the order Linux requires (owner, named users,
// owning group, named groups, mask, others): up to two named users and
// groups, a mask when there are named entries and sometimes without,
// and sometimes nothing but the three entries the mode has.
func (r *permRun) randACL() []byte {
	perm := func() uint32 { return r.rnd.Uint32N(8) }
	named := func(tag uint16, ids []uint32) []aclEntry {
		var out []aclEntry
		for _, id := range ids {
			if r.rnd.IntN(3) == 0 {
				out = append(out, aclEntry{tag: tag, perm: perm(), id: id})
			}
		}
		return out
	}
	acl := []aclEntry{{aclUserObj, perm(), permUndefinedID}}
	users := named(aclUser, []uint32{0, 1000, 1001, 1002, 1003})
	groups := named(aclGroup, permGIDs())
	acl = append(acl, users...)
	acl = append(acl, aclEntry{aclGroupObj, perm(), permUndefinedID})
	acl = append(acl, groups...)
	if len(users)+len(groups) > 0 || r.rnd.IntN(3) == 0 {
		acl = append(acl, aclEntry{aclMask, perm(), permUndefinedID})
	}
	return encodeACL(append(acl, aclEntry{aclOther, perm(), permUndefinedID}))
}

func (r *permRun) randUser() User {
	u := User{UID: r.pick([]uint32{1000, 1001, 1002, 1003}), GID: r.pick(permGIDs()), Groups: []uint32{}}
	for _, g := range permGIDs() {
		if g != u.GID && r.rnd.IntN(3) == 0 {
			u.Groups = append(u.Groups, g)
		}
	}
	return u
}

// apply applies c to s, which must take it.
func (r *permRun) apply(t *testing.T, s *State, c Command) Result {
	t.Helper()
	res := s.Apply(c)
	if res.Err != nil {
		t.Fatalf("seed %d: %#v: %v", r.seed, c, res.Err)
	}
	return res
}

func (r *permRun) time() int64 { r.tm++; return r.tm }

// buildMeta makes the tree in s with the commands the master applies
// for a user's mkdir, create, link, chmod and setfacl.
func (r *permRun) buildMeta(t *testing.T, s *State) {
	for _, nd := range r.nodes {
		p := nd.names[0]
		switch {
		case p == "/":
			nd.ino = RootInode
			r.apply(t, s, Setattr{Inode: RootInode, Set: SetMode | SetUid | SetGid, Mode: nd.mode, Uid: nd.uid, Gid: nd.gid, Time: r.time()})
		case nd.dir:
			nd.ino = r.apply(t, s, MkdirAt{Parent: r.byName[path.Dir(p)].ino, Name: path.Base(p), Mode: nd.mode, Uid: nd.uid, Gid: nd.gid, Time: r.time()}).Info.Inode
		default:
			nd.ino = r.apply(t, s, CreateAt{Parent: r.byName[path.Dir(p)].ino, Name: path.Base(p), Mode: nd.mode, Uid: nd.uid, Gid: nd.gid, Time: r.time()}).Info.Inode
		}
		chmod := func() {
			if nd.hasChmod {
				r.apply(t, s, Setattr{Inode: nd.ino, Set: SetMode, Mode: nd.chmod, Time: r.time()})
			}
		}
		setACL := func() {
			if nd.acl != nil {
				r.apply(t, s, SetXattr{Inode: nd.ino, Name: ACLAccessXattr, Value: nd.acl, Time: r.time()})
			}
		}
		if nd.aclFirst {
			setACL()
			chmod()
		} else {
			chmod()
			setACL()
		}
		if nd.defACL != nil {
			r.apply(t, s, SetXattr{Inode: nd.ino, Name: ACLDefaultXattr, Value: nd.defACL, Time: r.time()})
		}
	}
	for _, nd := range r.nodes {
		for _, p := range nd.names[1:] {
			r.apply(t, s, Link{Inode: nd.ino, Parent: r.byName[path.Dir(p)].ino, Name: path.Base(p), Time: r.time()})
		}
	}
}

// buildDisk makes the same tree on disk, as root: each inode is created
// with the mode asked for and then given its creator as owner, the
// group left to the kernel under a setgid directory (a user creating
// there gets the directory's group, as root does); then the same chmod
// and ACLs as in the State, in the same order.
func (r *permRun) buildDisk(t *testing.T) {
	must := func(what string, err error) {
		if err != nil {
			t.Fatalf("seed %d: %s: %v", r.seed, what, err)
		}
	}
	for _, nd := range r.nodes {
		p := r.disk(nd.names[0])
		gid := int(nd.gid)
		if nd.dir {
			must("mkdir "+p, syscall.Mkdir(p, nd.mode))
		} else {
			fd, err := syscall.Open(p, syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY|syscall.O_CLOEXEC, nd.mode)
			must("create "+p, err)
			must("close "+p, syscall.Close(fd))
		}
		if nd.names[0] != "/" {
			var st syscall.Stat_t
			must("stat", syscall.Stat(filepath.Dir(p), &st))
			if st.Mode&modeSetgid != 0 {
				gid = -1
			}
		}
		must("chown "+p, syscall.Lchown(p, int(nd.uid), gid))
		chmod := func() {
			if nd.hasChmod {
				must("chmod "+p, syscall.Chmod(p, nd.chmod))
			}
		}
		setACL := func() {
			if nd.acl != nil {
				must("set the access ACL of "+p, syscall.Setxattr(p, ACLAccessXattr, nd.acl, 0))
			}
		}
		if nd.aclFirst {
			setACL()
			chmod()
		} else {
			chmod()
			setACL()
		}
		if nd.defACL != nil {
			must("set the default ACL of "+p, syscall.Setxattr(p, ACLDefaultXattr, nd.defACL, 0))
		}
	}
	for _, nd := range r.nodes {
		if nd.dir {
			continue
		}
		for _, p := range nd.names[1:] {
			must("link", os.Link(r.disk(nd.names[0]), r.disk(p)))
		}
		must("stash", os.Link(r.disk(nd.names[0]), r.stashOf(nd)))
	}
}

func (r *permRun) stashOf(nd *permNode) string {
	return filepath.Join(r.stash, strconv.FormatUint(nd.ino, 10))
}

// sameState compares every inode of the two trees and keeps the disk's
// ACL xattrs, to put them back after a child removes an entry.
func (r *permRun) sameState(t *testing.T) bool {
	same := true
	for _, nd := range r.nodes {
		m := r.metaStat(nd)
		k, acls, err := permDiskStat(r.disk(nd.names[0]))
		if err != nil {
			t.Fatalf("seed %d: %v", r.seed, err)
		}
		r.built[nd], r.rawACLs[nd] = k, acls
		if m != k {
			same = false
			t.Errorf("seed %d: %s differs after the same commands and system calls:\n  meta   %v\n  kernel %v\nhow it was made: %s",
				r.seed, nd.names[0], m, k, r.recipe(nd))
		}
	}
	return same
}

func (r *permRun) metaStat(nd *permNode) permStat {
	fi, err := r.s.Stat(nd.ino)
	if err != nil {
		panic(err)
	}
	acl, _ := r.s.Xattr(nd.ino, ACLAccessXattr)
	def, _ := r.s.Xattr(nd.ino, ACLDefaultXattr)
	return permStat{mode: fi.Mode & 0o7777, uid: fi.Uid, gid: fi.Gid, acl: permACLText(acl, true), defACL: permACLText(def, false)}
}

func permDiskStat(p string) (permStat, [2][]byte, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return permStat{}, [2][]byte{}, fmt.Errorf("stat %s: %w", p, err)
	}
	var raw [2][]byte
	for i, name := range []string{ACLAccessXattr, ACLDefaultXattr} {
		buf := make([]byte, 4096)
		n, err := syscall.Getxattr(p, name, buf)
		switch {
		case errors.Is(err, syscall.ENODATA):
		case err != nil:
			return permStat{}, raw, fmt.Errorf("getxattr %s %s: %w", p, name, err)
		default:
			raw[i] = buf[:n]
		}
	}
	return permStat{mode: st.Mode & 0o7777, uid: st.Uid, gid: st.Gid,
		acl: permACLText(raw[0], true), defACL: permACLText(raw[1], false)}, raw, nil
}

// recipe says how nd was made, for a report.
func (r *permRun) recipe(nd *permNode) string {
	s := fmt.Sprintf("created with mode %04o by %d:%d", nd.mode, nd.uid, nd.gid)
	if p := nd.names[0]; p != "/" {
		s += fmt.Sprintf(" in %s (%v)", path.Dir(p), r.metaStat(r.byName[path.Dir(p)]))
	}
	ops := []string{}
	if nd.hasChmod {
		ops = append(ops, fmt.Sprintf("chmod %04o", nd.chmod))
	}
	if nd.acl != nil {
		op := "access ACL " + permACLText(nd.acl, false)
		if nd.aclFirst {
			ops = slices.Insert(ops, 0, op)
		} else {
			ops = append(ops, op)
		}
	}
	if nd.defACL != nil {
		ops = append(ops, "default ACL "+permACLText(nd.defACL, false))
	}
	if len(ops) > 0 {
		s += ", then " + strings.Join(ops, ", then ")
	}
	return s
}

// permACLText renders an ACL as getfacl's short form. An access ACL of
// the three entries the mode has is none: Linux keeps no such ACL.
func permACLText(b []byte, access bool) string {
	if b == nil {
		return ""
	}
	acl, err := parseACL(b)
	if err != nil {
		return fmt.Sprintf("unreadable(%x)", b)
	}
	if access && len(acl) == 3 {
		return ""
	}
	var parts []string
	for _, e := range acl {
		rwx := []byte("---")
		for i, bit := range []uint32{4, 2, 1} {
			if e.perm&bit != 0 {
				rwx[i] = "rwx"[i]
			}
		}
		var tag string
		switch e.tag {
		case aclUserObj:
			tag = "u:"
		case aclUser:
			tag = fmt.Sprintf("u:%d", e.id)
		case aclGroupObj:
			tag = "g:"
		case aclGroup:
			tag = fmt.Sprintf("g:%d", e.id)
		case aclMask:
			tag = "m:"
		case aclOther:
			tag = "o:"
		}
		parts = append(parts, tag+":"+string(rwx))
	}
	return strings.Join(parts, ",")
}

// askAs asks every question as u, meta directly and the kernel through
// a child running as u.
func (r *permRun) askAs(t *testing.T, u User) {
	kid := r.env.startKid(t, u)
	defer kid.finish(t)
	wants := []uint32{0, MayRead, MayWrite, MayExec, MayRead | MayExec, MayWrite | MayExec, MayRead | MayWrite | MayExec}

	// Access by path, and by inode over all its names.
	access := map[string]map[uint32]bool{}
	for _, nd := range r.nodes {
		for _, p := range nd.names {
			access[p] = map[uint32]bool{}
			for _, w := range wants {
				ok, why := r.call(t, kid, nd, p, permQuery{Op: "access", Path: r.disk(p), Mode: w})
				access[p][w] = ok
				r.compare(t, u, "CheckPath", fmt.Sprintf("access(%s, %s)", p, permWant(w)),
					func(s *State) error { return s.CheckPath(u, p, w) }, ok, why, r.knownExec(u, nd, w), p)
			}
		}
	}
	for _, nd := range r.nodes {
		reach, read, write := false, false, false
		for _, w := range wants {
			ok := false
			for _, p := range nd.names {
				ok = ok || access[p][w]
			}
			reach, read, write = reach || (w == 0 && ok), read || (w == MayRead && ok), write || (w == MayWrite && ok)
			r.compare(t, u, "CheckInode", fmt.Sprintf("inode %d %s (by any of %v)", nd.ino, permWant(w), nd.names),
				func(s *State) error { return s.CheckInode(u, nd.ino, w) }, ok, "", r.knownExec(u, nd, w), nd.names...)
		}
		r.compare(t, u, "CheckReach", fmt.Sprintf("reach inode %d (by any of %v)", nd.ino, nd.names),
			func(s *State) error { return s.CheckReach(u, nd.ino) }, reach, "", "", nd.names...)
		if reach { // Rights ignores the way; the kernel can only be asked by a way
			r.compare(t, u, "Rights", fmt.Sprintf("Rights(inode %d).read", nd.ino), func(s *State) error {
				read, _ := s.Rights(u, nd.ino)
				return permBool(read, "read false")
			}, read, "", "", nd.names...)
			r.compare(t, u, "Rights", fmt.Sprintf("Rights(inode %d).write", nd.ino), func(s *State) error {
				_, write := s.Rights(u, nd.ino)
				return permBool(write, "write false")
			}, write, "", "", nd.names...)
		}
	}

	// A new entry in every directory: mkdir, undone by the child.
	for _, nd := range r.nodes {
		if !nd.dir {
			continue
		}
		p := r.newName(nd)
		ok, why := r.call(t, kid, nd, p, permQuery{Op: "mkdir", Path: r.disk(p)})
		r.compare(t, u, "CheckEntryPath", "mkdir "+p,
			func(s *State) error { return s.CheckEntryPath(u, p, false) }, ok, why, "", nd.names[0])
		r.compare(t, u, "CheckEntry", fmt.Sprintf("new entry %q of inode %d (%s)", path.Base(p), nd.ino, nd.names[0]),
			func(s *State) error { return s.CheckEntry(u, nd.ino, path.Base(p), false) }, ok, why, "", nd.names[0])
	}

	// Removing every entry (the sticky bit), put back by root.
	remove := map[string]bool{}
	for _, nd := range r.nodes {
		for _, p := range nd.names {
			if p == "/" {
				continue
			}
			op := "unlink"
			if nd.dir {
				op = "rmdir"
			}
			ok, why := r.call(t, kid, nd, p, permQuery{Op: "remove", Path: r.disk(p), Dir: nd.dir})
			remove[p] = ok
			dir := r.byName[path.Dir(p)]
			r.compare(t, u, "CheckEntryPath", op+" "+p,
				func(s *State) error { return s.CheckEntryPath(u, p, true) }, ok, why, "", p)
			r.compare(t, u, "CheckEntry", fmt.Sprintf("%s entry %q of inode %d (%s)", op, path.Base(p), dir.ino, dir.names[0]),
				func(s *State) error { return s.CheckEntry(u, dir.ino, path.Base(p), true) }, ok, why, "", p)
		}
	}

	// chmod and chown by inode, as the master checks a Setattr (a reach
	// check first): the kernel asked through a name it reached, if any.
	for _, nd := range r.nodes {
		way := ""
		for _, p := range nd.names {
			if access[p][0] {
				way = p
				break
			}
		}
		cur := r.built[nd]
		ok, why := false, "no name within reach"
		if way != "" {
			ok, why = r.call(t, kid, nd, way, permQuery{Op: "chmod", Path: r.disk(way), Mode: cur.mode})
		}
		r.compare(t, u, "CheckOwner", fmt.Sprintf("chmod(%s, %04o)", cmp.Or(way, nd.names[0]), cur.mode),
			func(s *State) error {
				return permAnd(s.CheckReach(u, nd.ino), func() error { return s.CheckOwner(u, nd.ino) })
			},
			ok, why, "", nd.names...)
		if ok {
			r.compareChmod(t, u, nd, cur.mode)
		}
		for range 2 {
			uid, gid := r.chownTarget(u, cur)
			ok, why := false, "no name within reach"
			if way != "" {
				ok, why = r.call(t, kid, nd, way, permQuery{Op: "chown", Path: r.disk(way), UID: uid, GID: gid})
			}
			muid, mgid := cur.uid, cur.gid
			if uid >= 0 {
				muid = uint32(uid)
			}
			if gid >= 0 {
				mgid = uint32(gid)
			}
			r.compare(t, u, "CheckChown", fmt.Sprintf("chown(%s, %d, %d) of %d:%d", cmp.Or(way, nd.names[0]), uid, gid, cur.uid, cur.gid),
				func(s *State) error {
					return permAnd(s.CheckReach(u, nd.ino), func() error { return s.CheckChown(u, nd.ino, muid, mgid) })
				}, ok, why, "", nd.names...)
		}
	}

	// rm -r of every directory but the root, as the master checks a
	// recursive Remove; the kernel's answer is its rule for rm -r from
	// the children's answers: every directory readable, writable and
	// searchable, every entry's removal allowed.
	var treeOK func(d string, empty bool) bool
	treeOK = func(d string, empty bool) bool {
		if (len(r.entries[d]) > 0 || !empty) && !access[d][MayRead|MayWrite|MayExec] {
			return false
		}
		for _, e := range r.entries[d] {
			if !remove[e] || (r.byName[e].dir && !treeOK(e, empty)) {
				return false
			}
		}
		return true
	}
	for _, nd := range r.nodes {
		p := nd.names[0]
		if !nd.dir || p == "/" {
			continue
		}
		decide := func(s *State) error {
			return permAnd(s.CheckEntryPath(u, p, true), func() error { return s.CheckTree(u, p) })
		}
		// rm -r needs nothing of a directory that has no entries
		// (rmdir asks only of its parent).
		ok := remove[p] && treeOK(p, true)
		r.compare(t, u, "CheckTree", "rm -r "+p, decide, ok, "", "", r.subtree(p)...)
	}

	// Renaming every entry to a new name, in its directory or another
	// (not below itself), as the master checks Rename and RenameAt:
	// removing the old entry and adding the new one. Put back by root.
	for _, nd := range r.nodes {
		for _, src := range nd.names {
			if src == "/" {
				continue
			}
			var dirs []*permNode
			for _, d := range r.nodes {
				if d.dir && d.names[0] != src && !strings.HasPrefix(d.names[0], src+"/") {
					dirs = append(dirs, d)
				}
			}
			to := r.byName[path.Dir(src)]
			if r.rnd.IntN(2) == 0 {
				to = dirs[r.rnd.IntN(len(dirs))]
			}
			dst := r.newName(to)
			from := r.byName[path.Dir(src)]
			ok, why := r.call(t, kid, nd, src, permQuery{Op: "rename", Path: r.disk(src), To: r.disk(dst)})
			r.compare(t, u, "Rename", fmt.Sprintf("rename(%s, %s)", src, dst), func(s *State) error {
				return s.Allow(u, []Check{{Op: CheckOpEntryPath, Path: src, Remove: true},
					{Op: CheckOpEntryPath, Path: dst, Remove: true}, {Op: CheckOpMovePath, Path: src, Dst: dst}})
			}, ok, why, "", src, to.names[0])
			r.compare(t, u, "RenameAt", fmt.Sprintf("renameat(inode %d %q, inode %d %q)", from.ino, path.Base(src), to.ino, path.Base(dst)),
				func(s *State) error {
					return s.Allow(u, []Check{{Op: CheckOpEntry, Inode: from.ino, Name: path.Base(src), Remove: true},
						{Op: CheckOpEntry, Inode: to.ino, Name: path.Base(dst), Remove: true},
						{Op: CheckOpMove, Inode: from.ino, Name: path.Base(src), DstInode: to.ino}})
				}, ok, why, "", src, to.names[0])
		}
	}

	// A new name for every file, in a random directory, as the master
	// checks FS Link: adding the entry. Removed again by root.
	for _, nd := range r.nodes {
		if nd.dir {
			continue
		}
		var dirs []*permNode
		for _, d := range r.nodes {
			if d.dir {
				dirs = append(dirs, d)
			}
		}
		to := dirs[r.rnd.IntN(len(dirs))]
		// By a name the user reaches when it has one: the FS call names
		// the inode, which the caller reaches by any of its names.
		src, dst := nd.names[r.rnd.IntN(len(nd.names))], r.newName(to)
		for _, p := range nd.names {
			if access[p][0] {
				src = p
				break
			}
		}
		ok, why := r.call(t, kid, nd, src, permQuery{Op: "link", Path: r.disk(src), To: r.disk(dst)})
		r.compare(t, u, "Link", fmt.Sprintf("link(%s, %s) of inode %d", src, dst, nd.ino),
			func(s *State) error {
				return s.Allow(u, []Check{{Op: CheckOpLinkSource, Inode: nd.ino}, {Op: CheckOpEntry, Inode: to.ino, Name: path.Base(dst)}})
			}, ok, why, "", src, to.names[0])
	}
}

// compareChmod: the mode the master's chmod of nd to mode leaves (a
// Setattr in an As, on a copy of the state) is the mode the kernel's
// chmod left (r.chmodLeft): an owner outside the file's group loses
// the setgid bit.
func (r *permRun) compareChmod(t *testing.T, u User, nd *permNode, mode uint32) {
	r.env.rep.checked["chmod mode"]++
	b, err := r.s.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	s, err := RestoreCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	res := s.Apply(As{User: u, Cmd: Setattr{Inode: nd.ino, Set: SetMode, Mode: mode, Time: r.time()}})
	if res.Err != nil {
		t.Fatalf("seed %d, %s: chmod of %s in an As: %v", r.seed, permWho(u), nd.names[0], res.Err)
	}
	if got := res.Info.Mode & 0o7777; got != r.chmodLeft {
		r.env.rep.mismatch["chmod mode"]++
		t.Errorf("seed %d, %s: chmod(%s, %04o): meta leaves %04o, the kernel %04o\n%s",
			r.seed, permWho(u), nd.names[0], mode, got, r.chmodLeft, r.dump(nd.names))
	}
}

// newName is a path in directory d that names nothing.
func (r *permRun) newName(d *permNode) string {
	r.probes++
	return path.Join(d.names[0], fmt.Sprintf("new%d", r.probes))
}

// chownTarget draws the owner and group of a chown (-1: unchanged):
// the current ones, u's own, or any; never both unchanged.
func (r *permRun) chownTarget(u User, cur permStat) (uid, gid int) {
	uids := []int{-1, int(cur.uid), int(u.UID), int(r.pick(permUIDs()))}
	gids := []int{-1, int(cur.gid), int(u.GID), int(r.pick(permGIDs()))}
	for _, g := range u.Groups {
		gids = append(gids, int(g))
	}
	for {
		uid, gid = uids[r.rnd.IntN(len(uids))], gids[r.rnd.IntN(len(gids))]
		if uid >= 0 || gid >= 0 {
			return uid, gid
		}
	}
}

func (r *permRun) subtree(p string) []string {
	out := []string{p}
	for _, e := range r.entries[p] {
		if r.byName[e].dir {
			out = append(out, r.subtree(e)...)
		} else {
			out = append(out, e)
		}
	}
	return out
}

// call has kid make q about name (of nd) and returns the kernel's
// decision and its errno. What a call changed is put back before the
// next one, and name checked to be as built.
func (r *permRun) call(t *testing.T, kid *permKid, nd *permNode, name string, q permQuery) (bool, string) {
	a := kid.ask(t, q)
	errno := syscall.Errno(a.Errno)
	why := "ok"
	if errno != 0 {
		why = permErrno(errno)
	}
	var allowed bool
	switch {
	case errno == 0:
		allowed = true
	case errno == syscall.EACCES || errno == syscall.EPERM:
	case q.Op == "remove" && q.Dir && (errno == syscall.ENOTEMPTY || errno == syscall.EEXIST):
		allowed = true // the permission check comes first
	default:
		t.Fatalf("seed %d, %s: %s %s: %s: no permission answer; the tree is not as built", r.seed, kid.who, q.Op, q.Path, why)
	}
	if q.Op == "mkdir" && errno == 0 && a.Undo != 0 {
		t.Fatalf("seed %d, %s: mkdir %s: made, but rmdir: %s", r.seed, kid.who, q.Path, permErrno(syscall.Errno(a.Undo)))
	}
	if errno == 0 {
		switch q.Op {
		case "rename":
			if err := os.Rename(q.To, q.Path); err != nil {
				t.Fatalf("seed %d: put back %s: %v", r.seed, name, err)
			}
			r.restore(t, nd, name)
		case "link":
			if err := os.Remove(q.To); err != nil {
				t.Fatalf("seed %d: remove the new link %s: %v", r.seed, q.To, err)
			}
			r.restore(t, nd, name)
		case "chmod":
			var st syscall.Stat_t
			if err := syscall.Lstat(q.Path, &st); err != nil {
				t.Fatalf("seed %d: stat %s after chmod: %v", r.seed, name, err)
			}
			r.chmodLeft = st.Mode & 0o7777
			r.restore(t, nd, name)
		case "remove", "chown":
			r.restore(t, nd, name)
		}
	}
	return allowed, why
}

// restore puts name of nd back as built, after a child removed it or
// changed its mode or owner.
func (r *permRun) restore(t *testing.T, nd *permNode, name string) {
	p, want, raw := r.disk(name), r.built[nd], r.rawACLs[nd]
	must := func(what string, err error) {
		if err != nil {
			t.Fatalf("seed %d: put back %s: %s: %v", r.seed, name, what, err)
		}
	}
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		if !nd.dir {
			must("link", os.Link(r.stashOf(nd), p))
		} else {
			must("mkdir", syscall.Mkdir(p, 0))
			// It inherited its parent's default ACL, if any.
			for i, x := range []string{ACLAccessXattr, ACLDefaultXattr} {
				if raw[i] != nil {
					must("setxattr", syscall.Setxattr(p, x, raw[i], 0))
				} else if err := syscall.Removexattr(p, x); err != nil && !errors.Is(err, syscall.ENODATA) {
					must("removexattr", err)
				}
			}
		}
	}
	must("chown", syscall.Lchown(p, int(want.uid), int(want.gid)))
	must("chmod", syscall.Chmod(p, want.mode))
	got, _, err := permDiskStat(p)
	must("stat", err)
	if got != want {
		t.Fatalf("seed %d: put back %s: %v, want %v", r.seed, name, got, want)
	}
}

// compare records one decision of both sides: decide is meta's (nil:
// allowed), evaluated on r.s. known names a difference by design that
// explains a mismatch ("" for none).
func (r *permRun) compare(t *testing.T, u User, what, query string, decide func(*State) error, kernel bool, kernelWhy, known string, paths ...string) {
	rep := r.env.rep
	rep.checked[what]++
	metaErr := decide(r.s)
	if (metaErr == nil) == kernel && (metaErr == nil || errors.Is(metaErr, ErrPermission)) {
		return
	}
	metaSays, kernelSays := "allows", "refuses"
	if metaErr != nil {
		metaSays = "refuses: " + metaErr.Error()
	}
	if kernel {
		kernelSays = "allows"
	}
	if kernelWhy != "" {
		kernelSays += " (" + kernelWhy + ")"
	}
	msg := fmt.Sprintf("seed %d, %s: %s: meta %s; kernel %s\n%s", r.seed, permWho(u), query, metaSays, kernelSays, r.dump(paths))
	if known != "" {
		r.note(known, msg)
		return
	}
	rep.mismatch[what]++
	if rep.mismatch[what] <= permMaxError {
		t.Errorf("%s: %s", what, msg)
	}
}

// note counts a difference that does not fail the test, and keeps the
// first of each kind for the log.
func (r *permRun) note(kind, example string) {
	rep := r.env.rep
	rep.known[kind]++
	if _, ok := rep.example[kind]; !ok {
		rep.example[kind] = example
	}
}

// The differences between Linux and meta that do not fail the test:
// meta's by design, or a choice for whoever reads the log.
const (
	permKnownRootExec = "Linux refuses root X_OK on a file with no x bit; meta lets root do anything " +
		"(and never asks MayExec of a file)"
)

// knownExec: root asked to execute a file with no x bit.
func (r *permRun) knownExec(u User, nd *permNode, want uint32) string {
	if u.Root && !nd.dir && want&MayExec != 0 && r.built[nd].mode&0o111 == 0 {
		return permKnownRootExec
	}
	return ""
}

// onTheWay lists the inodes of paths and of the directories above them.
func (r *permRun) onTheWay(paths []string) []*permNode {
	var out []*permNode
	for _, p := range paths {
		for q := p; ; q = path.Dir(q) {
			if nd := r.byName[q]; !slices.Contains(out, nd) {
				out = append(out, nd)
			}
			if q == "/" {
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b *permNode) int { return strings.Compare(a.names[0], b.names[0]) })
	return out
}

// dump shows the inodes a decision rests on (the disk has the same).
func (r *permRun) dump(paths []string) string {
	var b strings.Builder
	for _, nd := range r.onTheWay(paths) {
		kind := "file"
		if nd.dir {
			kind = "dir"
		}
		fmt.Fprintf(&b, "  %-12s %s inode %d: %v", nd.names[0], kind, nd.ino, r.built[nd])
		if len(nd.names) > 1 {
			fmt.Fprintf(&b, " (also %v)", nd.names[1:])
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// permReport tallies all seeds.
type permReport struct {
	checked  map[string]int
	mismatch map[string]int
	known    map[string]int
	example  map[string]string
}

func newPermReport() *permReport {
	return &permReport{checked: map[string]int{}, mismatch: map[string]int{}, known: map[string]int{}, example: map[string]string{}}
}

func (p *permReport) log(t *testing.T) {
	var b strings.Builder
	for _, what := range slices.Sorted(maps.Keys(p.checked)) {
		fmt.Fprintf(&b, "  %-14s %6d decisions, %d mismatched\n", what, p.checked[what], p.mismatch[what])
	}
	t.Logf("decisions compared with the kernel's:\n%s", b.String())
	for _, kind := range slices.Sorted(maps.Keys(p.known)) {
		t.Logf("%d times, not failed: %s. The first:\n%s", p.known[kind], kind, p.example[kind])
	}
}

func permWho(u User) string {
	if u.Root {
		return "root"
	}
	return fmt.Sprintf("uid %d gid %d groups %v", u.UID, u.GID, u.Groups)
}

func permWant(w uint32) string {
	if w == 0 {
		return "F_OK"
	}
	b := []byte("---")
	for i, bit := range []uint32{MayRead, MayWrite, MayExec} {
		if w&bit != 0 {
			b[i] = "rwx"[i]
		}
	}
	return string(b)
}

func permErrno(e syscall.Errno) string {
	for _, n := range []struct {
		e    syscall.Errno
		name string
	}{{syscall.EACCES, "EACCES"}, {syscall.EPERM, "EPERM"}, {syscall.ENOTEMPTY, "ENOTEMPTY"}, {syscall.EEXIST, "EEXIST"}, {syscall.ENOENT, "ENOENT"}} {
		if n.e == e {
			return n.name
		}
	}
	return fmt.Sprintf("errno %d (%v)", int(e), e)
}

func permBool(ok bool, no string) error {
	if ok {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrPermission, no)
}

// permAnd is the master's way: the second check only if the first passed.
func permAnd(err error, then func() error) error {
	if err != nil {
		return err
	}
	return then()
}

// permQuery is one system call a child makes as its user.
type permQuery struct {
	Op       string // access, mkdir (then rmdir), remove, chmod, chown, rename, link
	Path     string
	To       string `json:",omitempty"` // rename, link: the new name
	Mode     uint32 `json:",omitempty"` // access: R_OK|W_OK|X_OK (0: F_OK); chmod: the mode
	Dir      bool   `json:",omitempty"` // remove: rmdir, not unlink
	UID, GID int    // chown; -1 leaves one as it is
}

// permAnswer is the errno of a call (0: it succeeded); for a mkdir that
// succeeded, Undo is the errno of the rmdir after it. The child's last
// line says how many it answered (Done).
type permAnswer struct {
	Errno int `json:",omitempty"`
	Undo  int `json:",omitempty"`
	Done  int `json:",omitempty"`
}

// permChild is the child: it makes the calls it reads on fd 3 and
// writes each one's answer on fd 4 (stdout is the testing package's).
func permChild(t *testing.T) {
	dec := json.NewDecoder(os.NewFile(3, "queries"))
	enc := json.NewEncoder(os.NewFile(4, "answers"))
	n := 0
	for {
		var q permQuery
		err := dec.Decode(&q)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("child: %v", err)
		}
		if err := enc.Encode(permSyscall(q)); err != nil {
			t.Fatalf("child: %v", err)
		}
		n++
	}
	if err := enc.Encode(permAnswer{Done: n}); err != nil {
		t.Fatalf("child: %v", err)
	}
}

func permSyscall(q permQuery) permAnswer {
	var err error
	switch q.Op {
	case "access":
		// access(2) checks the real ids, which are the effective ones
		// here (faccessat with AT_EACCESS could fall back to Go's own
		// check of the mode bits, which knows no ACLs).
		err = syscall.Access(q.Path, q.Mode)
	case "mkdir":
		if err = syscall.Mkdir(q.Path, 0o700); err == nil {
			return permAnswer{Undo: permErrnoOf(syscall.Rmdir(q.Path))}
		}
	case "remove":
		if q.Dir {
			err = syscall.Rmdir(q.Path)
		} else {
			err = syscall.Unlink(q.Path)
		}
	case "chmod":
		err = syscall.Chmod(q.Path, q.Mode)
	case "chown":
		err = syscall.Lchown(q.Path, q.UID, q.GID)
	case "rename":
		err = syscall.Rename(q.Path, q.To)
	case "link":
		err = syscall.Link(q.Path, q.To)
	default:
		err = syscall.ENOSYS
	}
	return permAnswer{Errno: permErrnoOf(err)}
}

func permErrnoOf(err error) int {
	var e syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return int(e)
	}
	return int(syscall.EIO)
}

// permKid is a running child.
type permKid struct {
	who     string
	cmd     *exec.Cmd
	queries *os.File
	answers *os.File
	enc     *json.Encoder
	dec     *json.Decoder
	out     strings.Builder // its stdout and stderr, read after it exits
	asked   int
	ended   bool
}

// startKid runs the test binary as u (root: uid 0 with its
// capabilities) in child mode.
func (e *permEnv) startKid(t *testing.T, u User) *permKid {
	k := &permKid{who: permWho(u)}
	qr, qw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ar, aw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cred := &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: slices.Clone(u.Groups)}
	if u.Root {
		cred = &syscall.Credential{}
	}
	if cred.Groups == nil {
		cred.Groups = []uint32{} // setgroups(0): none but the primary
	}
	k.cmd = exec.Command(e.bin, "-test.run=^TestAccessAgainstKernel$", "-test.count=1")
	k.cmd.Dir = e.base
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOCOVERDIR=") {
			k.cmd.Env = append(k.cmd.Env, kv)
		}
	}
	k.cmd.Env = append(k.cmd.Env, permChildEnv+"=1")
	k.cmd.ExtraFiles = []*os.File{qr, aw}
	k.cmd.Stdout, k.cmd.Stderr = &k.out, &k.out
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("start the child as %s: %v", k.who, err)
	}
	qr.Close()
	aw.Close()
	k.queries, k.answers = qw, ar
	k.enc, k.dec = json.NewEncoder(qw), json.NewDecoder(ar)
	return k
}

func (k *permKid) ask(t *testing.T, q permQuery) permAnswer {
	if err := k.enc.Encode(q); err != nil {
		k.fail(t, fmt.Sprintf("send %+v", q), err)
	}
	var a permAnswer
	if err := k.dec.Decode(&a); err != nil || a.Done != 0 {
		k.fail(t, fmt.Sprintf("answer to %+v (%+v)", q, a), err)
	}
	k.asked++
	return a
}

// finish ends the child: it must exit 0 having answered every question.
func (k *permKid) finish(t *testing.T) {
	if k.ended {
		return
	}
	k.ended = true
	k.queries.Close()
	var a permAnswer
	err := k.dec.Decode(&a)
	k.answers.Close()
	werr := k.cmd.Wait()
	if err != nil || a.Done != k.asked || werr != nil {
		t.Fatalf("child as %s: answered %d of %d (%v), exit: %v\n%s", k.who, a.Done, k.asked, err, werr, k.out.String())
	}
}

func (k *permKid) fail(t *testing.T, what string, err error) {
	k.ended = true
	k.queries.Close()
	k.answers.Close()
	_ = k.cmd.Process.Kill()
	_ = k.cmd.Wait()
	t.Fatalf("child as %s: %s: %v\n%s", k.who, what, err, k.out.String())
}
