package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catena-io/catena/internal/proctest"
)

// TestTLSCommands: a cluster secured by hand as the README says: a CA
// (catena admin ca init), a certificate per process (catena admin cert
// issue), every process and command with --tls-dir. A command without
// credentials, or a process with a certificate of the wrong role, fails
// at once with a line saying what to do.
func TestTLSCommands(t *testing.T) {
	dir := t.TempDir()
	p := func(s string) string { return filepath.Join(dir, s) }
	ok(t, "", "admin", "ca", "init", p("ca"))
	wantFail(t, run(t, "", nil, "admin", "ca", "init", p("ca")), "already holds a CA")
	if r := run(t, "", nil, "admin", "cert", "issue", "x", "--ca", p("ca"), "--role", "root", "--out", p("x")); r.code != 2 {
		t.Fatalf("an unknown role: exit %d, want 2 (usage); stderr %q", r.code, r.stderr)
	}
	wantFail(t, run(t, "", nil, "admin", "cert", "issue", "x", "--ca", p("nope"), "--role", "client", "--out", p("x")), "no cluster CA")
	for _, c := range [][3]string{{"m1", "master"}, {"cs1", "chunkserver"}, {"cs2", "chunkserver"}, {"cs3", "chunkserver"},
		{"root", "admin"}, {"alice", "client", "1000:1000"}, {"bob", "client", "1001"}, {"rita", "reader"}} {
		args := []string{"admin", "cert", "issue", c[0], "--ca", p("ca"), "--role", c[1], "--out", p(c[0])}
		if c[2] != "" {
			args = append(args, "--uid", c[2])
		}
		out := ok(t, "", args...)
		if !strings.Contains(out, c[1]+" certificate") {
			t.Fatalf("cert issue %s: %q", c[0], out)
		}
	}
	if r := run(t, "", nil, "admin", "cert", "issue", "x", "--ca", p("ca"), "--role", "admin", "--uid", "5", "--out", p("x")); r.code == 0 {
		t.Fatal("an admin certificate naming a user was issued")
	}
	if fi, err := os.Stat(p("alice/tls.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("client key: %v, mode %v; want 0600", err, fi.Mode())
	}

	// A master with a client certificate refuses to start.
	master := freeAddr(t)
	wantFail(t, run(t, master, nil, "master", "--dir", p("bad"), "--listen", master, "--raft-addr", freeAddr(t), "--tls-dir", p("alice")),
		"holds a client certificate, want a master one")

	proctest.Start(t, catenaBin, "master", "catena master: listening on", nil,
		"master", "--dir", p("md"), "--listen", master, "--raft-addr", freeAddr(t), "--tls-dir", p("m1"))
	for i := 1; i <= 3; i++ {
		cs := "cs" + string(rune('0'+i))
		proctest.Start(t, catenaBin, cs, "catena chunkserver: id", nil,
			"chunkserver", "--master", master, "--dir", p("d"+cs), "--listen", freeAddr(t), "--tls-dir", p(cs))
	}
	src := p("hello.txt")
	if err := os.WriteFile(src, []byte("hello over TLS\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	as := func(who string, args ...string) []string { return append([]string{"--tls-dir", p(who)}, args...) }
	withCreds := func(args ...string) []string { return as("alice", args...) }
	// Who a caller is comes from its certificate: root (admin) makes
	// alice a home; alice (uid 1000) writes there, and nowhere else.
	wantFail(t, run(t, master, nil, withCreds("put", src, "/hello.txt")...), "permission denied", "uid 1000")
	ok(t, master, as("root", "mkdir", "-p", "/home/alice")...)
	ok(t, master, as("root", "chown", "1000:1000", "/home/alice")...)
	ok(t, master, withCreds("put", src, "/home/alice/hello.txt")...)
	if got := ok(t, master, withCreds("cat", "/home/alice/hello.txt")...); got != "hello over TLS\n" {
		t.Fatalf("cat over TLS: %q", got)
	}
	if out := ok(t, master, withCreds("stat", "/home/alice/hello.txt")...); !strings.Contains(out, "1000") {
		t.Fatalf("stat of alice's file: %q, want her as the owner", out)
	}
	wantFail(t, run(t, master, nil, "cat", "/home/alice/hello.txt"), "requires mutual TLS", "--tls-dir")
	// Permissions hold against bob (uid 1001), whatever he asks.
	ok(t, master, withCreds("chmod", "600", "/home/alice/hello.txt")...)
	wantFail(t, run(t, master, nil, as("bob", "cat", "/home/alice/hello.txt")...), "permission denied")
	wantFail(t, run(t, master, nil, as("bob", "put", src, "/home/alice/bobs.txt")...), "permission denied")
	wantFail(t, run(t, master, nil, as("bob", "chmod", "666", "/home/alice/hello.txt")...), "permission denied")
	wantFail(t, run(t, master, nil, as("bob", "chown", "1001", "/home/alice/hello.txt")...), "permission denied")
	wantFail(t, run(t, master, nil, as("bob", "rm", "/home/alice/hello.txt")...), "permission denied")
	wantFail(t, run(t, master, nil, withCreds("chown", "1001", "/home/alice/hello.txt")...), "permission denied")
	if got := ok(t, master, as("root", "cat", "/home/alice/hello.txt")...); got != "hello over TLS\n" {
		t.Fatalf("cat as root: %q", got)
	}
	ok(t, master, withCreds("chmod", "644", "/home/alice/hello.txt")...)
	if got := ok(t, master, as("bob", "cat", "/home/alice/hello.txt")...); got != "hello over TLS\n" {
		t.Fatalf("cat by bob once readable: %q", got)
	}
	// A reader's certificate reads, and may change nothing: neither the
	// namespace (the master) nor data (its capabilities are read-only).
	asReader := func(args ...string) []string { return append([]string{"--tls-dir", p("rita")}, args...) }
	if got := ok(t, master, asReader("cat", "/home/alice/hello.txt")...); got != "hello over TLS\n" {
		t.Fatalf("cat as a reader: %q", got)
	}
	wantFail(t, run(t, master, nil, asReader("put", src, "/by-reader.txt")...), "permission denied")
	wantFail(t, run(t, master, nil, asReader("rm", "/home/alice/hello.txt")...), "permission denied")
	if got := ok(t, master, withCreds("cat", "/home/alice/hello.txt")...); got != "hello over TLS\n" {
		t.Fatalf("cat after a reader's attempts: %q", got)
	}
	// A client certificate may not change the master group.
	wantFail(t, run(t, master, nil, withCreds("admin", "master", "add", "m9", "127.0.0.1:1")...), "permission denied")

	// The first steps of a CA rotation, through the commands.
	ok(t, "", "admin", "ca", "init", p("ca2"))
	if r := run(t, "", nil, "admin", "ca", "trust", p("alice")); r.code != 2 {
		t.Fatalf("ca trust without --add or --remove: exit %d, want 2", r.code)
	}
	if out := ok(t, "", "admin", "ca", "trust", p("alice"), p("rita"), "--add", p("ca2")); !strings.Contains(out, "2 TLS directories trust") {
		t.Fatalf("ca trust --add: %q", out)
	}
	if got := ok(t, master, withCreds("cat", "/home/alice/hello.txt")...); got != "hello over TLS\n" {
		t.Fatalf("cat trusting two CAs: %q", got)
	}
	wantFail(t, run(t, "", nil, "admin", "ca", "trust", p("alice"), "--remove", p("ca")), "issue it a new one first")
}

// TestDevTLSTour: catena dev is mutual TLS by default, and a command run
// in the directory holding its data directory finds its credentials by
// itself: the README's tour, unchanged.
func TestDevTLSTour(t *testing.T) {
	work := t.TempDir()
	addr := freeAddr(t)
	d := proctest.Start(t, catenaBin, "catena dev", "catena dev: master listening on "+addr, nil,
		"dev", "--dir", filepath.Join(work, "catena-data"), "--listen", addr)
	defer d.Stop(t, stopTimeout)
	if err := os.WriteFile(filepath.Join(work, "file"), []byte("tour\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inWork := func(args ...string) (string, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, catenaBin, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "CATENA_MASTER="+addr, "CATENA_TLS_DIR=")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	if _, stderr, err := inWork("put", "./file", "/file"); err != nil {
		t.Fatalf("put beside catena dev: %v %s", err, stderr)
	}
	if out, stderr, err := inWork("ls", "-l", "/"); err != nil || !strings.Contains(out, "file") {
		t.Fatalf("ls beside catena dev: %q %v %s", out, err, stderr)
	}
	// Elsewhere, without credentials: refused, with the way out.
	r := run(t, addr, nil, "ls", "/")
	wantFail(t, r, "requires mutual TLS")
}
