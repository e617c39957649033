package meta

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestTranscripts runs the datadriven transcripts in testdata/. After every
// command it checks the invariants (Check, and a Checkpoint/RestoreCheckpoint
// round trip).
// Regenerate expectations with: go test ./internal/meta -run Transcripts -rewrite
func TestTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		s := New()
		var now int64
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			now++
			out := runCmd(t, s, d, now)
			checkRoundTrip(t, s)
			return out
		})
	})
}

// checkRoundTrip checks the live state, then that its checkpoint restores
// to a state of the same checkpoint.
func checkRoundTrip(t testing.TB, s *State) {
	t.Helper()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	b, err := s.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	r, err := RestoreCheckpoint(b)
	if err != nil {
		t.Fatalf("restore of own checkpoint: %v", err)
	}
	b2, err := r.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("checkpoint round trip differs:\n%s\n%s", b, b2)
	}
}

func argStr(t *testing.T, d *datadriven.TestData, key string) string {
	var v string
	d.MaybeScanArgs(t, key, &v)
	return v
}

func argInt(t *testing.T, d *datadriven.TestData, key string) int64 {
	v := argStr(t, d, key)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 0, 64)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return n
}

func runCmd(t *testing.T, s *State, d *datadriven.TestData, now int64) string {
	var c Command
	switch d.Cmd {
	case "mkdir":
		c = Mkdir{Path: argStr(t, d, "path"), Parents: d.HasArg("p"), Mode: uint32(argInt(t, d, "mode")), Time: now}
	case "create":
		c = Create{Path: argStr(t, d, "path"), Mode: uint32(argInt(t, d, "mode")), Replication: int(argInt(t, d, "repl")),
			ChunkSize: argInt(t, d, "cs"), Overwrite: d.HasArg("overwrite"), Time: now}
	case "rename":
		c = Rename{Src: argStr(t, d, "src"), Dst: argStr(t, d, "dst"), Time: now}
	case "rm":
		c = Remove{Path: argStr(t, d, "path"), Recursive: d.HasArg("r"), Time: now}
	case "setsize":
		m := SizeExtend
		if argStr(t, d, "mode") == "exact" {
			m = SizeExact
		}
		c = SetSize{Inode: uint64(argInt(t, d, "ino")), Size: argInt(t, d, "size"), Mode: m, Time: now}
	case "alloc":
		var chain []ServerID
		if d.HasArg("chain") {
			var ids []uint64
			d.ScanArgs(t, "chain", &ids)
			chain = ids
		}
		c = AllocateChunk{Inode: uint64(argInt(t, d, "ino")), Index: argInt(t, d, "idx"), Chain: chain, Time: now}
	case "concat":
		var srcs []string
		d.ScanArgs(t, "srcs", &srcs)
		var inodes []uint64
		if d.HasArg("inodes") {
			d.ScanArgs(t, "inodes", &inodes)
		}
		c = Concat{Dst: argStr(t, d, "dst"), Srcs: srcs, Inodes: inodes, Time: now}
	case "register":
		var labels map[string]string
		if z := argStr(t, d, "zone"); z != "" {
			labels = map[string]string{"zone": z}
		}
		c = RegisterServer{ID: uint64(argInt(t, d, "id")), Addr: argStr(t, d, "addr"), Labels: labels}
	case "ls":
		l, more, err := s.List(argStr(t, d, "path"), argStr(t, d, "after"), int(argInt(t, d, "limit")))
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		var b strings.Builder
		for _, fi := range l {
			b.WriteString(fmtInfo(fi))
		}
		if more {
			b.WriteString("more\n")
		}
		return b.String()
	case "stat":
		fi, err := s.Lookup(argStr(t, d, "path"))
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		return fmtInfo(fi)
	case "chunks":
		fi, refs, err := s.FileChunks(uint64(argInt(t, d, "ino")), argInt(t, d, "first"), argInt(t, d, "count"))
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		var b strings.Builder
		b.WriteString(fmtInfo(fi))
		for _, r := range refs {
			fmt.Fprintf(&b, "  idx=%d handle=%d epoch=%d chain=%v\n", r.Index, r.Handle, r.Epoch, r.Chain)
		}
		return b.String()
	case "chunkmap":
		var b strings.Builder
		for _, ch := range s.Chunks() {
			fmt.Fprintf(&b, "handle=%d epoch=%d chain=%v refs=%d repl=%d\n", ch.Handle, ch.Epoch, ch.Chain, ch.Refs, ch.Replication)
		}
		fmt.Fprintf(&b, "next-handle=%d\n", s.NextHandle())
		return b.String()
	case "counts":
		f, dirs := s.Counts()
		return fmt.Sprintf("files=%d dirs=%d\n", f, dirs)
	default:
		t.Fatalf("unknown command %q", d.Cmd)
	}
	// Every command goes through the log encoding, as on a follower.
	b, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Apply(dc)
	switch {
	case r.Err != nil:
		return "error: " + r.Err.Error() + "\n"
	case d.Cmd == "alloc":
		return fmt.Sprintf("idx=%d handle=%d epoch=%d chain=%v allocated=%t\n",
			r.Chunk.Index, r.Chunk.Handle, r.Chunk.Epoch, r.Chunk.Chain, r.Allocated)
	case d.Cmd == "mkdir" || d.Cmd == "create" || d.Cmd == "setsize":
		return fmtInfo(r.Info)
	case d.Cmd == "concat":
		var b strings.Builder
		b.WriteString(fmtInfo(r.Info))
		for _, f := range r.Fenced {
			fmt.Fprintf(&b, "fenced handle=%d epoch=%d\n", f.Handle, f.Epoch)
		}
		return b.String()
	}
	return "ok\n"
}

func fmtInfo(fi FileInfo) string {
	if fi.IsDir {
		return fmt.Sprintf("%s ino=%d dir mode=%o mtime=%d\n", fi.Path, fi.Inode, fi.Mode, fi.MTime)
	}
	return fmt.Sprintf("%s ino=%d file mode=%o size=%d mtime=%d repl=%d cs=%d\n",
		fi.Path, fi.Inode, fi.Mode, fi.Size, fi.MTime, fi.Replication, fi.ChunkSize)
}
