package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
)

func TestRemotePath(t *testing.T) {
	for in, want := range map[string]string{"/": "/", "a": "/a", "/a/b/": "/a/b", "a/../b": "/b", "//x//y": "/x/y", "": "/"} {
		if got := remotePath(in); got != want {
			t.Errorf("remotePath(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestParseLabels(t *testing.T) {
	got, err := parseLabels([]string{"rack=r1", "zone=a=b", "empty="})
	if err != nil || len(got) != 3 || got["rack"] != "r1" || got["zone"] != "a=b" || got["empty"] != "" {
		t.Fatalf("parseLabels = %v, %v", got, err)
	}
	for _, bad := range []string{"novalue", "=v", " =v"} {
		if _, err := parseLabels([]string{bad}); !errors.Is(err, errBadLabel) {
			t.Errorf("parseLabels(%q) err %v; want errBadLabel", bad, err)
		}
	}
	if got, err := parseLabels(nil); got != nil || err != nil {
		t.Fatalf("parseLabels(nil) = %v, %v", got, err)
	}
}

func TestPrintEntries(t *testing.T) {
	mt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	entries := []client.FileInfo{
		{Name: "dir", Path: "/dir", IsDir: true, Mode: 0o755, ModTime: mt},
		{Name: "f", Path: "/f", Mode: 0o644, Size: 12345, Replication: 3, ChunkSize: 64 << 20, ModTime: mt},
	}
	var b strings.Builder
	if err := printEntries(&b, entries, false, false); err != nil || b.String() != "dir/\nf\n" {
		t.Fatalf("ls: %q, %v", b.String(), err)
	}
	b.Reset()
	if err := printEntries(&b, entries, true, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "drwxr-xr-x") || !strings.HasSuffix(lines[0], " dir/") ||
		!strings.HasPrefix(lines[1], "-rw-r--r--") || !strings.Contains(lines[1], " 3 ") || !strings.Contains(lines[1], "12345") {
		t.Fatalf("ls -l: %q", b.String())
	}
	b.Reset()
	if err := printEntries(&b, entries, false, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"path": "/f"`, `"type": "directory"`, `"mode": "0644"`, `"size": 12345`, `"mtime": "2026-01-02T03:04:05Z"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("ls --json lacks %s:\n%s", want, b.String())
		}
	}
}

func TestStatJSON(t *testing.T) {
	info := &client.FileInfo{Path: "/f", Size: 70 << 20, Replication: 3, ChunkSize: 64 << 20, Mode: 0o644}
	chunks := []client.ChunkInfo{{Index: 1, Handle: 9, Epoch: 2, Chain: []client.Server{{ID: 1, Addr: "a"}, {ID: 2, Addr: "b", Name: "cs2"}}}}
	j := toStatJSON(info, chunks)
	if j.Type != "file" || j.Size != 70<<20 || len(j.Chunks) != 1 || j.Chunks[0].Chain[0].ID != 1 || j.Chunks[0].Chain[1].Addr != "b" || j.Chunks[0].Chain[1].Name != "cs2" || j.Chunks[0].Chain[0].Name != "" {
		t.Fatalf("toStatJSON = %+v", j)
	}
	if j := toStatJSON(&client.FileInfo{Path: "/d", IsDir: true}, nil); j.Chunks == nil || j.Type != "directory" {
		t.Fatalf("directory stat: chunks must be [] not null: %+v", j)
	}
	var b strings.Builder
	if err := printStat(&b, info, chunks); err != nil || !strings.Contains(b.String(), "1@a -> cs2@b") || !strings.Contains(b.String(), "70 MiB") {
		t.Fatalf("printStat: %v\n%s", err, b.String())
	}
}

func TestPrintStatus(t *testing.T) {
	st := &client.Status{
		Masters: []client.MasterStatus{{ID: "m1", Addr: "x:1", Leader: true}},
		Chunkservers: []client.ChunkserverStatus{
			{ID: 1, Addr: "a", Alive: true, FreeBytes: 1 << 30, CapacityBytes: 2 << 30},
			{ID: 2, Addr: "b", Alive: false},
		},
		ChunksTotal: 7, ChunksUnderReplicated: 2,
	}
	var b strings.Builder
	if err := printStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 alive, 1 dead", "1 GiB free of 2 GiB", "DEAD", "leader", "7 total, 2 under-replicated"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
	j := toStatusJSON(st)
	if len(j.Chunkservers) != 2 || j.Chunkservers[1].Alive || j.Chunks.UnderReplicated != 2 || !j.Masters[0].Leader {
		t.Fatalf("toStatusJSON = %+v", j)
	}
}
