package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catena-io/catena/internal/proctest"
)

// TestMasterJoin: a single master with data grows into a group of three
// through the commands, each new master started with --join and added
// with catena admin master add, which returns once it has caught up and
// is a voter; then the first master is stopped and the other two serve
// the data. All of it over mutual TLS.
func TestMasterJoin(t *testing.T) {
	dir := t.TempDir()
	p := func(s string) string { return filepath.Join(dir, s) }
	ok(t, "", "admin", "ca", "init", p("ca"))
	for _, c := range [][2]string{{"m1", "master"}, {"m2", "master"}, {"m3", "master"}, {"cs1", "chunkserver"}, {"root", "admin"}} {
		ok(t, "", "admin", "cert", "issue", c[0], "--ca", p("ca"), "--role", c[1], "--out", p(c[0]))
	}
	type node struct{ grpc, raft string }
	ms := []node{{freeAddr(t), freeAddr(t)}, {freeAddr(t), freeAddr(t)}, {freeAddr(t), freeAddr(t)}}
	all := ms[0].grpc + "," + ms[1].grpc + "," + ms[2].grpc
	startMaster := func(i int, extra ...string) *proctest.Proc {
		id := fmt.Sprintf("m%d", i+1)
		args := append([]string{"master", "--id", id, "--dir", p("d" + id), "--listen", ms[i].grpc,
			"--raft-addr", ms[i].raft, "--tls-dir", p(id)}, extra...)
		return proctest.Start(t, catenaBin, id, "catena master: listening on", nil, args...)
	}
	m1 := startMaster(0)
	proctest.Start(t, catenaBin, "cs1", "catena chunkserver: id", nil,
		"chunkserver", "--master", all, "--dir", p("dcs1"), "--listen", freeAddr(t), "--tls-dir", p("cs1"))
	asRoot := func(args ...string) []string { return append([]string{"--tls-dir", p("root")}, args...) }
	src := p("data")
	if err := os.WriteFile(src, []byte("kept by the group\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		ok(t, ms[0].grpc, asRoot("mkdir", "-p", fmt.Sprintf("/d/%d", i))...)
	}
	ok(t, ms[0].grpc, asRoot("put", "--replication", "1", src, "/d/file")...)

	// --join excludes --peers; a joining master waits to be added.
	if r := run(t, "", nil, "master", "--id", "m9", "--dir", p("d9"), "--join", "--peers", "m9="+freeAddr(t), "--insecure"); r.code != 2 || !strings.Contains(r.stderr, "--join needs --id and excludes --peers") {
		t.Fatalf("--join with --peers: exit %d (want 2, usage), stderr %q", r.code, r.stderr)
	}
	for i := 1; i < 3; i++ {
		startMaster(i, "--join")
		id := fmt.Sprintf("m%d", i+1)
		ok(t, ms[0].grpc, asRoot("admin", "master", "add", id, ms[i].raft, "--addr", ms[i].grpc)...)
		var list struct {
			Masters []struct {
				ID    string `json:"id"`
				Voter bool   `json:"voter"`
			} `json:"masters"`
		}
		if err := json.Unmarshal([]byte(ok(t, all, asRoot("admin", "master", "list", "--json")...)), &list); err != nil {
			t.Fatal(err)
		}
		voters := 0
		for _, m := range list.Masters {
			if m.Voter {
				voters++
			}
		}
		if len(list.Masters) != i+1 || voters != i+1 {
			t.Fatalf("after adding %s: %+v, want %d voters", id, list.Masters, i+1)
		}
	}

	// The first master goes; the two that joined hold the state and serve.
	m1.Stop(t, stopTimeout)
	rest := ms[1].grpc + "," + ms[2].grpc
	if got := ok(t, rest, asRoot("cat", "/d/file")...); got != "kept by the group\n" {
		t.Fatalf("cat from the joined masters: %q", got)
	}
	if got := ok(t, rest, asRoot("ls", "/d")...); len(got) == 0 {
		t.Fatal("ls /d from the joined masters: empty")
	}
	ok(t, rest, asRoot("mkdir", "/after")...)
}
