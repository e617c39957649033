package fuse

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/catena-io/catena/internal/testtools"
)

// TestACL: POSIX ACLs on a real mount, set and read with setfacl and
// getfacl: an entry naming uid 65534 opens a 0600 file to it for reading
// only, a chmod narrows the mask and closes it again, and a directory's
// default ACL is inherited by what is created in it.
func TestACL(t *testing.T) {
	testtools.Programs(t, "tests/fuse", "setfacl", "getfacl")
	dir := posixMount(t)
	f := filepath.Join(dir, "secret")
	if err := os.WriteFile(f, []byte("for nobody"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, 0o600); err != nil {
		t.Fatal(err)
	}
	read := sysOp{Op: "open", Path: f, Flags: unix.O_RDONLY}
	write := sysOp{Op: "open", Path: f, Flags: unix.O_WRONLY}
	if got := runAsNobody(t, []sysOp{read}); got[0] != syscall.EACCES {
		t.Fatalf("uid 65534 opens a 0600 file: errno %v, want EACCES", got[0])
	}
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	run("setfacl", "-m", "u:65534:r", f)
	if out := run("getfacl", "-n", f); !strings.Contains(out, "user:65534:r--") || !strings.Contains(out, "mask::r--") {
		t.Fatalf("getfacl after setfacl:\n%s", out)
	}
	if got := runAsNobody(t, []sysOp{read, write}); got[0] != 0 || got[1] != syscall.EACCES {
		t.Fatalf("uid 65534 with a read entry: open for reading errno %v (want 0), for writing %v (want EACCES)", got[0], got[1])
	}
	// chmod g-rwx narrows the mask: the named entry no longer counts.
	if err := os.Chmod(f, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := runAsNobody(t, []sysOp{read}); got[0] != syscall.EACCES {
		t.Fatalf("after chmod 600: errno %v, want EACCES", got[0])
	}
	if out := run("getfacl", "-n", f); !strings.Contains(out, "mask::---") {
		t.Fatalf("getfacl after chmod 600:\n%s", out)
	}

	// A default ACL is inherited.
	d := filepath.Join(dir, "shared")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	run("setfacl", "-m", "u:65534:rx", "-m", "d:u:65534:rw", d)
	g := filepath.Join(d, "made-by-root")
	if err := os.WriteFile(g, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Made with mode 0600, its mask is narrowed to nothing (posix_acl_create).
	if out := run("getfacl", "-n", g); !strings.Contains(out, "user:65534:rw-") || !strings.Contains(out, "mask::---") {
		t.Fatalf("getfacl of a file made 0600 in a directory with a default ACL:\n%s", out)
	}
	if got := runAsNobody(t, []sysOp{{Op: "write", Path: g}}); got[0] != syscall.EACCES {
		t.Fatalf("uid 65534 writes through an entry the mask hides: errno %v, want EACCES", got[0])
	}
	if err := os.Chmod(g, 0o660); err != nil { // the mask opens
		t.Fatal(err)
	}
	if got := runAsNobody(t, []sysOp{{Op: "write", Path: g}}); got[0] != 0 {
		t.Fatalf("uid 65534 writes through the inherited entry: errno %v", got[0])
	}

	// The umask: taken off what is made, except under a default ACL, which
	// governs instead (a shared directory's group keeps write permission
	// whatever its members' umask). Made by a shell with umask 022 and 077.
	run("setfacl", "-m", "d:g::rwx", d)
	run("sh", "-c", "umask 022 && touch "+filepath.Join(d, "touched")+" && mkdir "+filepath.Join(d, "sub"))
	run("sh", "-c", "umask 077 && touch "+filepath.Join(dir, "private")+" && mkdir "+filepath.Join(dir, "privdir"))
	for _, c := range []struct {
		name string
		want string
	}{
		{filepath.Join(d, "touched"), "mask::rw-"}, // 0666, umask ignored
		{filepath.Join(d, "sub"), "mask::rwx"},     // 0777, umask ignored
	} {
		if out := run("getfacl", "-n", c.name); !strings.Contains(out, c.want) || !strings.Contains(out, "user:65534:rw-\n") {
			t.Errorf("getfacl of %s made with umask 022 under a default ACL, want %s and user:65534:rw- in full:\n%s", c.name, c.want, out)
		}
	}
	for name, want := range map[string]os.FileMode{"private": 0o600, "privdir": 0o700 | os.ModeDir} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode() != want {
			t.Errorf("%s made with umask 077: %v, %v, want mode %v", name, fi.Mode(), err, want)
		}
	}
}
