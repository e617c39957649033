package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// spaceTimeout bounds the wait for the chunkservers' heartbeat reports to
// bring "catena status" shared and exclusive bytes up to date.
const spaceTimeout = 30 * time.Second

// spaceStatus is "catena status --json", decoded strictly; only the chunk
// figures are looked at.
type spaceStatus struct {
	Masters      json.RawMessage `json:"masters"`
	Chunkservers json.RawMessage `json:"chunkservers"`
	Chunks       struct {
		Total           uint64          `json:"total"`
		UnderReplicated uint64          `json:"under_replicated"`
		OverReplicated  uint64          `json:"over_replicated"`
		ReReplicating   uint64          `json:"re_replicating"`
		Lost            uint64          `json:"lost"`
		RepairsDone     uint64          `json:"repairs_done"`
		RepairedBytes   int64           `json:"repaired_bytes"`
		SharedBytes     int64           `json:"shared_bytes"`
		ExclusiveBytes  int64           `json:"exclusive_bytes"`
		Problems        json.RawMessage `json:"problems"`
	} `json:"chunks"`
}

// awaitSpace polls "catena status --json" until it shows shared and
// exclusive bytes, or fails the test at spaceTimeout with the last figures.
func awaitSpace(t *testing.T, master, when string, shared, exclusive int64) {
	t.Helper()
	deadline := time.Now().Add(spaceTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		st := decode[spaceStatus](t, "status --json", ok(t, master, "status", "--json"))
		if st.Chunks.SharedBytes == shared && st.Chunks.ExclusiveBytes == exclusive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status --json shows %d shared and %d exclusive bytes after %v; want %d and %d",
				when, st.Chunks.SharedBytes, st.Chunks.ExclusiveBytes, spaceTimeout, shared, exclusive)
		}
		<-tick.C
	}
}

// snapshotLsOut is "catena snapshot ls --json".
type snapshotLsOut []struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	Mtime string `json:"mtime"`
}

// volumeOut is "catena volume info --json", an element of "volume ls
// --json" and of "volume snapshot ls --json".
type volumeOut struct {
	Name            string `json:"name"`
	Size            int64  `json:"size"`
	Replication     int    `json:"replication"`
	ChunkSize       int64  `json:"chunk_size"`
	AllocatedChunks int64  `json:"allocated_chunks"`
	Mtime           string `json:"mtime"`
	ReadOnly        bool   `json:"read_only"`
	SharedBytes     int64  `json:"shared_bytes"`
	ExclusiveBytes  int64  `json:"exclusive_bytes"`
}

// TestSnapshotCommands drives snapshots and clones of trees, files and
// volumes through the binary as a user would: snapshot create/ls/rm, reads
// under DIR/.snapshot/NAME, cp, the read-only rule, rm of directories with
// snapshots, volume snapshot/clone/rollback, and the shared and exclusive
// bytes of catena status.
func TestSnapshotCommands(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	addr := freeAddr(t)
	startDev(t, filepath.Join(tmp, "data"), addr)
	m := addr
	start := time.Now()

	// get fetches a remote file into tmp and returns its sha256.
	gets := 0
	getSHA := func(remote string) string {
		t.Helper()
		gets++
		local := filepath.Join(tmp, fmt.Sprintf("get-%d.out", gets))
		ok(t, m, "get", remote, local)
		return fileSHA(t, local)
	}
	statJSON := func(p string) statOut {
		t.Helper()
		return decode[statOut](t, "stat --json "+p, ok(t, m, "stat", "--json", p))
	}
	handles := func(st statOut) []uint64 {
		var hs []uint64
		for _, c := range st.Chunks {
			hs = append(hs, c.Handle)
		}
		return hs
	}
	appendLines := func(p string, lines ...string) {
		t.Helper()
		in := strings.Join(lines, "\n") + "\n"
		r := run(t, m, strings.NewReader(in), "append", p)
		if want := fmt.Sprintf("appended %d records ", len(lines)); r.code != 0 || !strings.HasPrefix(r.stdout, want) {
			t.Fatalf("append %s: exit %d, stdout %q, stderr %q", p, r.code, r.stdout, r.stderr)
		}
	}
	records := func(p string, want ...string) {
		t.Helper()
		if out, w := ok(t, m, "cat", "--records", p), strings.Join(want, "\n")+"\n"; out != w {
			t.Fatalf("cat --records %s = %q; want %q", p, out, w)
		}
	}
	snapshotLs := func(p string, want ...string) snapshotLsOut {
		t.Helper()
		l := decode[snapshotLsOut](t, "snapshot ls --json "+p, ok(t, m, "snapshot", "ls", "--json", p))
		var names []string
		for _, s := range l {
			names = append(names, s.Name)
		}
		if !slices.Equal(names, want) {
			t.Fatalf("snapshot ls --json %s: names %q; want %q", p, names, want)
		}
		return l
	}
	wantLs := func(p, want string) {
		t.Helper()
		if out := ok(t, m, "ls", p); out != want {
			t.Fatalf("ls %s = %q; want %q", p, out, want)
		}
	}

	// A tree of two files: f in chunks of 1 MiB, log appended to.
	const chunk = 1 << 20
	const origSize = 3<<20 + 4321
	orig := filepath.Join(tmp, "orig.bin")
	origSHA := writeRandom(t, orig, origSize, 21)
	ok(t, m, "mkdir", "/d")
	ok(t, m, "put", "--chunk-size", "1MiB", orig, "/d/f")
	appendLines("/d/log", "rec 0", "rec 1", "rec 2")
	origF := checkStat(t, m, "/d/f", origSize, chunk, 3)
	logSize := statJSON("/d/log").Size
	origLog := checkStat(t, m, "/d/log", logSize, 64<<20, 3)
	origLogSHA := getSHA("/d/log")
	awaitSpace(t, m, "before any snapshot", 0, origSize+logSize)

	// Snapshot the directory: nothing is copied, every chunk is shared.
	if out := ok(t, m, "snapshot", "create", "/d", "s1"); out != "snapshot /d/.snapshot/s1\n" {
		t.Fatalf("snapshot create /d s1 = %q", out)
	}
	wantFail(t, run(t, m, nil, "snapshot", "create", "/d", "s1"), "snapshot create /d", "file exists")
	snapF := checkStat(t, m, "/d/.snapshot/s1/f", origSize, chunk, 3)
	if !slices.Equal(handles(snapF), handles(origF)) {
		t.Fatalf("snapshot's f has chunks %v; want the live file's %v (shared, not copied)", handles(snapF), handles(origF))
	}
	awaitSpace(t, m, "after snapshot create /d s1", origSize+logSize, 0)
	l := snapshotLs("/d", "s1")
	if l[0].Path != "/d/.snapshot/s1" {
		t.Fatalf("snapshot ls --json /d = %+v; want path /d/.snapshot/s1", l)
	}
	// mtime is the human form (local time, seconds), as in volume --json.
	mt, err := time.ParseInLocation("2006-01-02 15:04:05", l[0].Mtime, time.Local)
	if err != nil || mt.Before(start.Add(-time.Minute)) || mt.After(time.Now().Add(time.Minute)) {
		t.Fatalf("snapshot ls --json /d: mtime %q (%v); want the time of the snapshot", l[0].Mtime, err)
	}
	if out := ok(t, m, "snapshot", "ls", "/d"); !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "s1  ") || !strings.HasSuffix(out, "/d/.snapshot/s1\n") {
		t.Fatalf("snapshot ls /d:\n%s", out)
	}

	// Change the live tree: put overwrites f, append forks log's chunk.
	const newSize = 2<<20 + 99
	repl := filepath.Join(tmp, "new.bin")
	newSHA := writeRandom(t, repl, newSize, 22)
	ok(t, m, "put", "--chunk-size", "1MiB", repl, "/d/f")
	appendLines("/d/log", "rec 3")
	newLogSize := statJSON("/d/log").Size
	if newLogSize <= logSize {
		t.Fatalf("/d/log: %d bytes after an append, %d before", newLogSize, logSize)
	}
	if s := getSHA("/d/f"); s != newSHA {
		t.Fatalf("get /d/f after put: sha256 %s; want the new file's %s", s, newSHA)
	}
	if s := getSHA("/d/.snapshot/s1/f"); s != origSHA {
		t.Fatalf("get /d/.snapshot/s1/f after put: sha256 %s; want the original %s", s, origSHA)
	}
	if s := getSHA("/d/.snapshot/s1/log"); s != origLogSHA {
		t.Fatalf("get /d/.snapshot/s1/log after append: sha256 %s; want the original %s", s, origLogSHA)
	}
	if s := getSHA("/d/log"); s == origLogSHA {
		t.Fatal("get /d/log after append: the original content")
	}
	records("/d/.snapshot/s1/log", "rec 0", "rec 1", "rec 2")
	records("/d/log", "rec 0", "rec 1", "rec 2", "rec 3")
	checkStat(t, m, "/d/.snapshot/s1/log", logSize, 64<<20, 3)
	if h := handles(checkStat(t, m, "/d/log", newLogSize, 64<<20, 3)); slices.Equal(h, handles(origLog)) {
		t.Fatalf("/d/log still names chunks %v after an append to it; want its own (a fork)", h)
	}
	awaitSpace(t, m, "after put and append", 0, origSize+logSize+newSize+newLogSize)

	// .snapshot is hidden from its directory but resolves.
	wantLs("/d", "f\nlog\n")
	wantLs("/d/.snapshot", "s1/\n")
	wantLs("/d/.snapshot/s1", "f\nlog\n")
	// The name is reserved: no real entry may shadow a snapshot directory.
	ok(t, m, "mkdir", "/e9")
	wantFail(t, run(t, m, nil, "mkdir", "/e9/.snapshot"), "reserved")
	wantFail(t, run(t, m, nil, "mkdir", "-p", "/e9/a/.snapshot/b"), "reserved")
	wantFail(t, run(t, m, nil, "put", orig, "/e9/.snapshot"), "reserved")
	wantFail(t, run(t, m, nil, "mv", "/e9", "/.snapshot"), "reserved")
	wantFail(t, run(t, m, nil, "snapshot", "create", "/e9", ".snapshot"), "reserved")
	ok(t, m, "rm", "/e9")

	// Nothing under .snapshot can be changed.
	other := filepath.Join(tmp, "other.bin")
	writeRandom(t, other, 1000, 23)
	for _, r := range []result{
		run(t, m, nil, "put", other, "/d/.snapshot/s1/f"),
		run(t, m, nil, "put", other, "/d/.snapshot/s1/new"),
		run(t, m, strings.NewReader("x"), "put", "-", "/d/.snapshot/s1/new"),
		run(t, m, strings.NewReader("x\n"), "append", "/d/.snapshot/s1/log"),
		run(t, m, nil, "rm", "/d/.snapshot/s1/f"),
		run(t, m, nil, "rm", "-r", "/d/.snapshot/s1"),
		run(t, m, nil, "rm", "-r", "/d/.snapshot"),
		run(t, m, nil, "mv", "/d/.snapshot/s1/f", "/d/g"),
		run(t, m, nil, "mv", "/d/f", "/d/.snapshot/s1/g"),
		run(t, m, nil, "mkdir", "/d/.snapshot/s1/sub"),
		run(t, m, nil, "mkdir", "/d/.snapshot/s2"),
		run(t, m, nil, "chmod", "600", "/d/.snapshot/s1/f"),
		run(t, m, nil, "setrep", "2", "/d/.snapshot/s1/f"),
		run(t, m, nil, "cp", "/d/f", "/d/.snapshot/s1/g"),
		run(t, m, nil, "snapshot", "create", "/d/.snapshot/s1", "nested"),
	} {
		wantFail(t, r, "read-only snapshot")
		if r.code != 1 {
			t.Fatalf("catena %s: exit %d; want 1", strings.Join(r.args, " "), r.code)
		}
	}
	wantLs("/d/.snapshot", "s1/\n")
	wantLs("/d/.snapshot/s1", "f\nlog\n")
	wantLs("/d", "f\nlog\n")
	checkStat(t, m, "/d/.snapshot/s1/f", origSize, chunk, 3)
	if s := getSHA("/d/.snapshot/s1/f"); s != origSHA {
		t.Fatalf("get /d/.snapshot/s1/f after refused writes: sha256 %s; want %s", s, origSHA)
	}

	// A file's snapshot: DIR/.snapshot/NAME/FILE; snapshot ls of the file
	// lists its directory's snapshots.
	if out := ok(t, m, "snapshot", "create", "/d/f", "fs"); out != "snapshot /d/.snapshot/fs\n" {
		t.Fatalf("snapshot create /d/f fs = %q", out)
	}
	wantLs("/d/.snapshot", "fs/\ns1/\n")
	wantLs("/d/.snapshot/fs", "f\n")
	if s := getSHA("/d/.snapshot/fs/f"); s != newSHA {
		t.Fatalf("get /d/.snapshot/fs/f: sha256 %s; want the live file's %s", s, newSHA)
	}
	snapshotLs("/d", "fs", "s1")
	snapshotLs("/d/f", "fs", "s1")
	awaitSpace(t, m, "after snapshot create /d/f fs", newSize, origSize+logSize+newLogSize)

	// cp: a writable clone of a snapshot's tree, then of a file into a
	// directory; the data stays shared.
	if out := ok(t, m, "cp", "/d/.snapshot/s1", "/restored"); out != "" {
		t.Fatalf("cp /d/.snapshot/s1 /restored printed %q", out)
	}
	wantLs("/restored", "f\nlog\n")
	if s := getSHA("/restored/f"); s != origSHA {
		t.Fatalf("get /restored/f: sha256 %s; want the original %s", s, origSHA)
	}
	if s := getSHA("/restored/log"); s != origLogSHA {
		t.Fatalf("get /restored/log: sha256 %s; want the original %s", s, origLogSHA)
	}
	if h := handles(checkStat(t, m, "/restored/f", origSize, chunk, 3)); !slices.Equal(h, handles(snapF)) {
		t.Fatalf("/restored/f names chunks %v; want the snapshot's %v", h, handles(snapF))
	}
	awaitSpace(t, m, "after cp of the snapshot", origSize+logSize+newSize, newLogSize)
	ok(t, m, "mkdir", "/r2")
	ok(t, m, "cp", "/d/.snapshot/s1/f", "/r2")
	wantLs("/r2", "f\n")
	if s := getSHA("/r2/f"); s != origSHA {
		t.Fatalf("get /r2/f: sha256 %s; want the original %s", s, origSHA)
	}
	wantFail(t, run(t, m, nil, "cp", "/d/.snapshot/s1/f", "/d/f"), "cp /d/.snapshot/s1/f /d/f", "file exists")
	wantFail(t, run(t, m, nil, "cp", "/nope", "/x"), "cp /nope", "no such file or directory")
	// The clone is writable, and independent of the snapshot.
	appendLines("/restored/log", "restored 0")
	records("/restored/log", "rec 0", "rec 1", "rec 2", "restored 0")
	records("/d/.snapshot/s1/log", "rec 0", "rec 1", "rec 2")
	records("/d/log", "rec 0", "rec 1", "rec 2", "rec 3")

	// snapshot rm: one or several names; the rest stays readable.
	ok(t, m, "snapshot", "create", "/d", "s2")
	ok(t, m, "snapshot", "create", "/d", "s3")
	snapshotLs("/d", "fs", "s1", "s2", "s3")
	ok(t, m, "snapshot", "rm", "/d", "fs")
	ok(t, m, "snapshot", "rm", "/d", "s2", "s3")
	snapshotLs("/d", "s1")
	wantLs("/d/.snapshot", "s1/\n")
	wantFail(t, run(t, m, nil, "ls", "/d/.snapshot/fs"), "/d/.snapshot/fs", "no such file or directory")
	wantFail(t, run(t, m, nil, "snapshot", "rm", "/d", "fs"), "snapshot rm /d fs", "no such file or directory")
	if s := getSHA("/d/.snapshot/s1/f"); s != origSHA {
		t.Fatalf("get /d/.snapshot/s1/f after snapshot rm of others: sha256 %s; want %s", s, origSHA)
	}

	// A directory with snapshots is not empty: rm refuses it until they
	// go; rm -r takes them with it.
	ok(t, m, "mkdir", "/e")
	ok(t, m, "snapshot", "create", "/e", "es")
	wantFail(t, run(t, m, nil, "rm", "/e"), "rm /e", "directory not empty")
	snapshotLs("/e", "es")
	ok(t, m, "snapshot", "rm", "/e", "es")
	ok(t, m, "rm", "/e")
	wantFail(t, run(t, m, nil, "stat", "/e"), "/e", "no such file or directory")
	ok(t, m, "mkdir", "/g")
	ok(t, m, "put", other, "/g/x")
	ok(t, m, "snapshot", "create", "/g", "gs")
	wantFail(t, run(t, m, nil, "rm", "/g/x", "/g"), "rm /g", "directory not empty")
	ok(t, m, "rm", "-r", "/g")
	wantFail(t, run(t, m, nil, "stat", "/g"), "/g", "no such file or directory")
	ok(t, m, "mkdir", "/g") // a new /g has no snapshots of the old one
	snapshotLs("/g")
	wantFail(t, run(t, m, nil, "ls", "/g/.snapshot/gs"), "no such file or directory")
	ok(t, m, "rm", "-r", "/d")
	wantFail(t, run(t, m, nil, "stat", "/d/.snapshot/s1/f"), "no such file or directory")
	wantLs("/", "g/\nr2/\nrestored/\n")
	// The clones outlive the snapshot they came from: /restored/f and
	// /r2/f share the original chunks; /restored/log is its own.
	if s := getSHA("/restored/f"); s != origSHA {
		t.Fatalf("get /restored/f after rm -r /d: sha256 %s; want %s", s, origSHA)
	}
	restoredLog := statJSON("/restored/log").Size
	awaitSpace(t, m, "after rm -r /d", origSize, restoredLog)

	// Volumes: the CLI cannot write one (only catena nbd serves their
	// data), so these are the metadata flows.
	volInfo := func(name string) volumeOut {
		t.Helper()
		return decode[volumeOut](t, "volume info --json "+name, ok(t, m, "volume", "info", "--json", name))
	}
	volSnapLs := func(vol string, want ...string) []volumeOut {
		t.Helper()
		l := decode[[]volumeOut](t, "volume snapshot ls --json "+vol, ok(t, m, "volume", "snapshot", "ls", "--json", vol))
		var names []string
		for _, v := range l {
			names = append(names, v.Name)
			if !v.ReadOnly {
				t.Fatalf("volume snapshot ls --json %s: %s is not read_only", vol, v.Name)
			}
		}
		if !slices.Equal(names, want) {
			t.Fatalf("volume snapshot ls --json %s: %q; want %q", vol, names, want)
		}
		return l
	}
	const gib = 1 << 30
	if out := ok(t, m, "volume", "create", "vol", "1G"); !strings.HasPrefix(out, "created volume vol: 1 GiB") {
		t.Fatalf("volume create vol 1G = %q", out)
	}
	if out := ok(t, m, "volume", "snapshot", "vol", "s0"); out != "snapshot vol@s0\n" {
		t.Fatalf("volume snapshot vol s0 = %q", out)
	}
	wantFail(t, run(t, m, nil, "volume", "snapshot", "vol", "s0"), "volume snapshot vol", "file exists")
	if out := ok(t, m, "volume", "snapshot", "ls", "vol"); !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "\nvol@s0 ") {
		t.Fatalf("volume snapshot ls vol:\n%s", out)
	}
	if l := volSnapLs("vol", "vol@s0"); l[0].Size != gib {
		t.Fatalf("volume snapshot ls --json vol = %+v; want 1 GiB", l)
	}
	if v := volInfo("vol"); v.Name != "vol" || v.Size != gib || v.ReadOnly || v.Replication != 3 || v.AllocatedChunks != 0 || v.SharedBytes != 0 || v.ExclusiveBytes != 0 {
		t.Fatalf("volume info --json vol = %+v; want a writable, empty 1 GiB volume", v)
	}
	if v := volInfo("vol@s0"); v.Name != "vol@s0" || v.Size != gib || !v.ReadOnly || v.SharedBytes != 0 || v.ExclusiveBytes != 0 {
		t.Fatalf("volume info --json vol@s0 = %+v; want a read-only 1 GiB volume", v)
	}
	if out := ok(t, m, "volume", "info", "vol@s0"); !strings.Contains(out, "read-only:    yes") {
		t.Fatalf("volume info vol@s0:\n%s", out)
	}
	// Snapshots are not volumes of their own in volume ls.
	if out := ok(t, m, "volume", "ls"); strings.Contains(out, "vol@s0") || !strings.Contains(out, "\nvol ") {
		t.Fatalf("volume ls:\n%s", out)
	}
	// A snapshot cannot be changed.
	for _, r := range []result{
		run(t, m, nil, "volume", "resize", "vol@s0", "2G"),
		run(t, m, nil, "volume", "snapshot", "vol@s0", "x"),
		run(t, m, nil, "volume", "rollback", "vol@s0", "s0"),
		run(t, m, nil, "volume", "rm", "vol@s0"),
	} {
		wantFail(t, r, "read-only snapshot")
		if r.code != 1 {
			t.Fatalf("catena %s: exit %d; want 1", strings.Join(r.args, " "), r.code)
		}
	}
	// Grow the volume, clone its snapshot and itself, roll it back.
	ok(t, m, "volume", "resize", "vol", "2G")
	if v := volInfo("vol"); v.Size != 2*gib {
		t.Fatalf("volume info vol after resize 2G: size %d", v.Size)
	}
	if v := volInfo("vol@s0"); v.Size != gib {
		t.Fatalf("volume info vol@s0 after vol grew: size %d; want 1 GiB still", v.Size)
	}
	if out := ok(t, m, "volume", "clone", "vol@s0", "vc"); out != "created volume vc from vol@s0: 1 GiB\n" {
		t.Fatalf("volume clone vol@s0 vc = %q", out)
	}
	if out := ok(t, m, "volume", "clone", "vol", "vl"); out != "created volume vl from vol: 2 GiB\n" {
		t.Fatalf("volume clone vol vl = %q", out)
	}
	if v := volInfo("vc"); v.Name != "vc" || v.Size != gib || v.ReadOnly {
		t.Fatalf("volume info --json vc = %+v; want a writable 1 GiB clone", v)
	}
	wantFail(t, run(t, m, nil, "volume", "clone", "vol", "vc"), "volume clone vol", "file exists")
	wantFail(t, run(t, m, nil, "volume", "clone", "vol", "a@b"), "volume clone vol", "invalid argument")
	if out := ok(t, m, "volume", "rollback", "vol", "s0"); out != "volume vol rolled back to vol@s0: 1 GiB\n" {
		t.Fatalf("volume rollback vol s0 = %q", out)
	}
	if v := volInfo("vol"); v.Size != gib || v.ReadOnly {
		t.Fatalf("volume info --json vol after rollback = %+v; want writable, 1 GiB again", v)
	}
	wantFail(t, run(t, m, nil, "volume", "rollback", "vol", "nope"), "volume rollback vol", "no such file or directory")
	// A volume with snapshots cannot be removed.
	ok(t, m, "volume", "snapshot", "vol", "s1")
	volSnapLs("vol", "vol@s0", "vol@s1")
	wantFail(t, run(t, m, nil, "volume", "rm", "vol"), "volume rm vol", "not empty")
	volInfo("vol")
	ok(t, m, "volume", "snapshot", "rm", "vol", "s0", "s1")
	volSnapLs("vol")
	wantFail(t, run(t, m, nil, "volume", "info", "vol@s0"), "volume info vol@s0", "no such file or directory")
	ok(t, m, "volume", "rm", "vol")
	wantFail(t, run(t, m, nil, "volume", "info", "vol"), "volume info vol", "no such file or directory")
	// The clones outlive their origin.
	vs := decode[[]volumeOut](t, "volume ls --json", ok(t, m, "volume", "ls", "--json"))
	if len(vs) != 2 || vs[0].Name != "vc" || vs[0].Size != gib || vs[1].Name != "vl" || vs[1].Size != 2*gib {
		t.Fatalf("volume ls --json after volume rm vol = %+v; want vc (1 GiB) and vl (2 GiB)", vs)
	}

	// Usage errors exit 2.
	for _, args := range [][]string{
		{"snapshot", "bogus"},
		{"snapshot", "create", "/r2"},
		{"snapshot", "rm", "/r2"},
		{"volume", "snapshot", "vc"},
	} {
		r := run(t, m, nil, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "Usage:") {
			t.Fatalf("catena %s: exit %d, stderr %q; want a usage error (exit 2)", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if r := run(t, m, nil, "snapshot", "bogus"); !strings.HasPrefix(r.stderr, `catena: unknown command "bogus" for "catena snapshot"`) {
		t.Fatalf("snapshot bogus: stderr %q", r.stderr)
	}
}
