package nbd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/catena-io/catena/internal/testtools"
)

// patternWrite is one write of a constant byte through qemu-io, applied
// as well to the file that the volume must then equal.
type patternWrite struct {
	off, n int64
	b      byte
}

func (w patternWrite) cmd() string { return fmt.Sprintf("write -P 0x%02x %d %d", w.b, w.off, w.n) }

// writePattern writes n deterministic pseudo-random bytes (ChaCha8 of
// seed) to path.
func writePattern(t *testing.T, path string, n int64, seed byte) {
	t.Helper()
	var key [32]byte
	key[0] = seed
	r := mrand.NewChaCha8(key)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for n > 0 {
		b := buf[:min(n, int64(len(buf)))]
		r.Read(b)
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
		n -= int64(len(b))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// derive makes path a copy of base with the leading bytes of prefix
// (when not "") and then writes applied.
func derive(t *testing.T, path, base, prefix string, writes []patternWrite) {
	t.Helper()
	copyInto := func(dst *os.File, src string) {
		s, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := dst.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, s); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	copyInto(f, base)
	if prefix != "" {
		copyInto(f, prefix)
	}
	for _, w := range writes {
		if _, err := f.WriteAt([]byte(strings.Repeat(string([]byte{w.b}), int(w.n))), w.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// qemuWrite writes through qemu-io and checks that it reports every write.
func qemuWrite(t *testing.T, uri string, writes []patternWrite) {
	t.Helper()
	args := []string{"-f", "raw"}
	for _, w := range writes {
		args = append(args, "-c", w.cmd())
	}
	out := run(t, 2*time.Minute, "qemu-io", append(args, uri)...)
	if strings.Contains(out, "failed") || strings.Contains(out, "error") || strings.Count(out, "wrote ") != len(writes) {
		t.Fatalf("qemu-io %v:\n%s", writes, out)
	}
}

// sameAs asserts with qemu-img compare that the export at uri has the
// content of the raw file.
func sameAs(t *testing.T, file, uri, what string) {
	t.Helper()
	start := time.Now()
	out := run(t, 3*time.Minute, "qemu-img", "compare", "-f", "raw", "-F", "raw", file, uri)
	if !strings.Contains(out, "Images are identical") {
		t.Fatalf("%s: qemu-img compare %s %s:\n%s", what, filepath.Base(file), uri, out)
	}
	t.Logf("%s: identical (%v)", what, time.Since(start).Round(time.Millisecond))
}

// differs asserts that qemu-img compare finds the export at uri unlike
// the raw file (exit status 1), so that sameAs is known to tell them
// apart.
func differs(t *testing.T, file, uri, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "qemu-img", "compare", "-f", "raw", "-F", "raw", file, uri).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "Content mismatch") {
		t.Fatalf("%s: qemu-img compare %s %s: %v, want a content mismatch (exit 1)\n%s", what, filepath.Base(file), uri, err, out)
	}
}

// TestVolumeSnapshotOverNBD: a volume filled through NBD is snapshotted
// and then largely overwritten; the snapshot, served as the read-only
// export VOL@NAME, keeps the first content and refuses writes; a clone of
// it is writable on its own; a rollback gives the volume (still open in
// the NBD server) the snapshot's content back.
func TestVolumeSnapshotOverNBD(t *testing.T) {
	testtools.Programs(t, "tests/nbd", "nbdinfo", "nbdcopy", "qemu-img", "qemu-io")
	var size int64 = 1 << 30
	if testing.Short() {
		size = 256 << 20
	}
	const chunk = 16 << 20 // env.volume's chunk size
	ctx := context.Background()
	e := start(t, 3)
	e.volume(t, "v", size, 2)
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	live, snap, clone := e.uri("v"), e.uri("v@s"), e.uri("w")
	step := time.Now()
	took := func(what string) {
		t.Logf("%s: %v", what, time.Since(step).Round(time.Millisecond))
		step = time.Now()
	}

	// 1. Fill the volume, every chunk of it.
	writePattern(t, file("a.raw"), size, 1)
	run(t, 3*time.Minute, "nbdcopy", file("a.raw"), live)
	took("nbdcopy of the first pattern")
	if v, err := e.cl.VolumeInfo(ctx, "v"); err != nil || v.AllocatedChunks != size/chunk {
		t.Fatalf("volume v after the fill: %+v %v, want %d chunks allocated", v, err, size/chunk)
	}

	// 2. Snapshot.
	si, err := e.cl.SnapshotVolume(ctx, "v", "s")
	if err != nil {
		t.Fatal(err)
	}
	if si.Name != "v@s" || !si.ReadOnly || si.Size != size {
		t.Fatalf("SnapshotVolume: %+v, want v@s, read-only, size %d", si, size)
	}
	snaps, err := e.cl.VolumeSnapshots(ctx, "v")
	if err != nil || len(snaps) != 1 || snaps[0].Name != "v@s" {
		t.Fatalf("VolumeSnapshots(v): %+v %v, want [v@s]", snaps, err)
	}

	// 3. Overwrite most of the volume: a second pattern over its first
	// 5/8 and half a chunk (whole chunks and a part of one), and constant
	// bytes across a chunk boundary, at an unaligned offset inside a
	// chunk and at the end; some chunks stay untouched.
	prefix := size*5/8 + chunk/2 + 4096
	writePattern(t, file("b.raw"), prefix, 2)
	run(t, 3*time.Minute, "nbdcopy", file("b.raw"), live)
	overwrites := []patternWrite{
		{off: size*3/4 - 8192, n: 16384, b: 0xc3},
		{off: size*7/8 + 100, n: 1 << 20, b: 0x3c},
		{off: size - 4096, n: 4096, b: 0x5e},
	}
	qemuWrite(t, live, overwrites)
	took("overwrite")
	derive(t, file("l.raw"), file("a.raw"), file("b.raw"), overwrites)

	// 4. The snapshot kept the first pattern; the volume has the second.
	sameAs(t, file("a.raw"), snap, "snapshot v@s after the overwrite")
	sameAs(t, file("l.raw"), live, "volume v after the overwrite")
	differs(t, file("a.raw"), live, "volume v against the first pattern")

	// 5. The snapshot export is read-only, and writes to it fail.
	var info struct {
		Exports []map[string]any `json:"exports"`
	}
	out := run(t, time.Minute, "nbdinfo", "--json", snap)
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info.Exports) != 1 {
		t.Fatalf("nbdinfo %s: %v\n%s", snap, err, out)
	}
	for k, want := range map[string]any{"export-name": "v@s", "is_read_only": true, "export-size": float64(size)} {
		if got := info.Exports[0][k]; got != want {
			t.Errorf("nbdinfo %s: %s = %v, want %v", snap, k, got, want)
		}
	}
	// Real clients check the flag and refuse before sending a write; the
	// refusal must be for that reason, not another.
	for _, c := range []struct {
		why  string
		args []string
	}{
		{"Permission denied", []string{"qemu-io", "-f", "raw", "-c", "write -P 0xee 0 4k", snap}},
		{"read-only", []string{"nbdcopy", file("b.raw"), snap}},
	} {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		b, err := exec.CommandContext(wctx, c.args[0], c.args[1:]...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(b), c.why) {
			t.Errorf("%s into the snapshot export: %v, want a failure saying %q\n%s", c.args[0], err, c.why, b)
		}
	}
	took("read-only checks")

	// 6. A clone of the snapshot is writable, and on its own.
	ci, err := e.cl.CloneVolume(ctx, "v@s", "w")
	if err != nil {
		t.Fatal(err)
	}
	if ci.Name != "w" || ci.ReadOnly || ci.Size != size {
		t.Fatalf("CloneVolume: %+v, want w, writable, size %d", ci, size)
	}
	cloneWrites := []patternWrite{
		{off: chunk - 2048, n: 4096, b: 0x77},
		{off: size/2 + 333, n: 3 << 20, b: 0x99},
	}
	qemuWrite(t, clone, cloneWrites)
	derive(t, file("w.raw"), file("a.raw"), "", cloneWrites)
	sameAs(t, file("w.raw"), clone, "clone w after its writes")
	sameAs(t, file("a.raw"), snap, "snapshot v@s after the clone's writes")
	sameAs(t, file("l.raw"), live, "volume v after the clone's writes")

	// 7. Rollback: the NBD server still has v open (since step 1); its
	// reads must see the snapshot's content. The clone keeps its own.
	if _, err := e.cl.RollbackVolume(ctx, "v", "s"); err != nil {
		t.Fatal(err)
	}
	sameAs(t, file("a.raw"), live, "volume v after the rollback, through the open export")
	sameAs(t, file("w.raw"), clone, "clone w after the rollback")
	took("rollback checks")
}
