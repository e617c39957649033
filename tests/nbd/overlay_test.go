package nbd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/nbd"
	"github.com/catena-io/catena/internal/testtools"
)

// serveWriter runs an NBD server whose exports open each volume as its
// writer under identity owner (as catena nbd does), and returns its
// address.
func serveWriter(t *testing.T, cl *client.Client, owner string) string {
	t.Helper()
	exports := nbd.NewVolumeExports(cl, nil)
	exports.SetWriter(client.WriterOptions{Owner: owner})
	return serveExports(t, exports)
}

// TestOverlayPromoteWhileWriterWrites: the writer of volume v (fio random
// writes through one NBD server) keeps writing while a copier (another
// NBD server, another writer identity) promotes its overlay. Once the
// promote returns, the volume equals the copier's view byte for byte
// (qemu-img compare, after the old writer wrote on for a while), the old
// writer's writes fail, a second writer is refused, and the copier goes
// on writing the volume.
func TestOverlayPromoteWhileWriterWrites(t *testing.T) {
	testtools.Programs(t, "tests/nbd", "fio", "qemu-img", "qemu-io", "nbdcopy", "nbdinfo")
	const size = 64 << 20
	ctx := context.Background()
	e := start(t, 3)
	e.volume(t, "v", size, 3)
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	writerAddr := serveWriter(t, e.cl, "writer")
	copierAddr := serveWriter(t, e.cl, "copier")
	uri := func(addr, vol string) string { return "nbd://" + addr + "/" + vol }

	// The volume's first content, then the copier's overlay as of now.
	writePattern(t, file("a.raw"), size, 1)
	run(t, time.Minute, "nbdcopy", file("a.raw"), uri(writerAddr, "v"))
	if _, err := e.cl.AttachOverlay(ctx, "v", "c", 0); err != nil {
		t.Fatal(err)
	}
	// The copier writes its own blocks, across chunks.
	copierWrites := []patternWrite{
		{off: 0, n: 8192, b: 0x11},
		{off: 16<<20 - 4096, n: 12288, b: 0x22},
		{off: 40<<20 + 512, n: 1 << 20, b: 0x33},
	}
	qemuWrite(t, uri(copierAddr, "v+c"), copierWrites)
	derive(t, file("c.raw"), file("a.raw"), "", copierWrites)
	sameAs(t, file("c.raw"), e.uri("v+c"), "the copier's view before the promote")

	// The writer writes on, and on.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fio := exec.CommandContext(fctx, "fio", "--name=writer", "--ioengine=nbd", "--uri="+uri(writerAddr, "v"),
		"--rw=randwrite", "--bs=4k", "--size=64m", "--iodepth=8", "--time_based", "--runtime=600",
		"--continue_on_error=all", "--thread")
	var fout bytes.Buffer
	fio.Stdout, fio.Stderr = &fout, &fout
	fio.WaitDelay = 10 * time.Second
	if err := fio.Start(); err != nil {
		t.Fatal(err)
	}
	fioDone := make(chan error, 1)
	go func() { fioDone <- fio.Wait() }()
	// Until its writes show in the volume (and not in the overlay).
	clustertest.Eventually(t, time.Minute, func() error {
		out, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "raw", file("a.raw"), e.uri("v")).CombinedOutput()
		if !strings.Contains(string(out), "Content mismatch") {
			return fmt.Errorf("the writer's writes are not in the volume yet (%v: %s)", err, out)
		}
		return nil
	})
	sameAs(t, file("c.raw"), e.uri("v+c"), "the copier's view while the writer writes")

	start := time.Now()
	if _, err := e.cl.PromoteOverlay(ctx, "v", "c"); err != nil {
		t.Fatal(err)
	}
	t.Logf("promote: %v", time.Since(start).Round(time.Millisecond))
	// The old writer keeps sending for a while: none of it lands.
	sameAs(t, file("c.raw"), e.uri("v"), "the volume right after the promote")
	if _, err := e.cl.VolumeInfo(ctx, "v+c"); err == nil {
		t.Fatal("the overlay outlived its promote")
	}
	late := []patternWrite{{off: 8 << 20, n: 4096, b: 0x44}}
	for range 3 {
		if out, err := exec.Command("qemu-io", "-f", "raw", "-c", late[0].cmd(), uri(writerAddr, "v")).CombinedOutput(); err == nil && !strings.Contains(string(out), "error") {
			t.Fatalf("the old writer's write after the promote succeeded:\n%s", out)
		}
	}
	sameAs(t, file("c.raw"), e.uri("v"), "the volume after the old writer wrote on")
	cancel()
	<-fioDone

	// A third writer is refused, through the library and through a third
	// NBD server (at the handshake, with the reason): the copier holds
	// the volume now...
	if _, err := e.cl.OpenVolumeWriter(ctx, "v", client.WriterOptions{Owner: "third"}); err == nil {
		t.Fatal("a third writer was let in")
	}
	third := serveWriter(t, e.cl, "third")
	nbdinfo := exec.Command("nbdinfo", uri(third, "v"))
	nbdinfo.Env = append(os.Environ(), "LIBNBD_DEBUG=1") // the server's reason is in the debug log
	if out, err := nbdinfo.CombinedOutput(); err == nil || !strings.Contains(string(out), "has a writer") {
		t.Fatalf("nbdinfo through a third writer: %v, want the export refused for its writer: %q", err, out)
	}
	// ... and writes it, through its overlay's export and the volume's.
	more := []patternWrite{{off: 4 << 20, n: 65536, b: 0x55}}
	qemuWrite(t, uri(copierAddr, "v"), more)
	derive(t, file("d.raw"), file("c.raw"), "", more)
	run(t, time.Minute, "qemu-img", "compare", "-f", "raw", "-F", "raw", file("d.raw"), e.uri("v"))
}

// TestOverlayDetachFreesSpace: a copier's own writes take space on the
// chunkservers beside the volume's; detaching the overlay returns it, and
// so does re-attaching (a copier's restart); the volume is untouched.
func TestOverlayDetachFreesSpace(t *testing.T) {
	testtools.Programs(t, "tests/nbd", "qemu-io")
	ctx := context.Background()
	e := start(t, 3)
	e.volume(t, "v", 64<<20, 3)
	qemuWrite(t, e.uri("v"), []patternWrite{{off: 0, n: 64 << 20, b: 0x5a}})
	// The space of the volume alone, once its writes are all on disk.
	base := e.c.DiskBytes()
	fill := func(name string) {
		t.Helper()
		if _, err := e.cl.AttachOverlay(ctx, "v", name, 0); err != nil {
			t.Fatal(err)
		}
		qemuWrite(t, e.uri("v+"+name), []patternWrite{{off: 0, n: 32 << 20, b: 0xa5}})
	}
	grown := func(want int64) {
		t.Helper()
		if got := e.c.DiskBytes(); got < base+want {
			t.Fatalf("disk usage %d after a copier wrote 32 MiB x3; the volume alone took %d", got, base)
		}
	}
	back := func(what string) {
		t.Helper()
		clustertest.Eventually(t, time.Minute, func() error {
			if got := e.c.DiskBytes(); got > base+8<<20 {
				return fmt.Errorf("%s: disk usage %d, the volume alone took %d", what, got, base)
			}
			return nil
		})
	}
	fill("a")
	grown(3 * 24 << 20)
	ovs, err := e.cl.ListOverlays(ctx, "v")
	if err != nil || len(ovs) != 1 || ovs[0].Volume.ExclusiveBytes == 0 {
		// Reported with the chunkservers' next reports.
		clustertest.Eventually(t, time.Minute, func() error {
			ovs, err := e.cl.ListOverlays(ctx, "v")
			if err != nil || len(ovs) != 1 || ovs[0].Volume.ExclusiveBytes < 32<<20 {
				return fmt.Errorf("overlay ls: %+v %v, want 32 MiB exclusive", ovs, err)
			}
			return nil
		})
	}
	if err := e.cl.DetachOverlay(ctx, "v", "a"); err != nil {
		t.Fatal(err)
	}
	back("after the detach")
	fill("b")
	grown(3 * 24 << 20)
	if _, err := e.cl.ReattachOverlay(ctx, "v", "b", 0); err != nil {
		t.Fatal(err)
	}
	back("after the re-attach")
	// The volume kept its content throughout.
	out := run(t, time.Minute, "qemu-io", "-f", "raw", "-c", "read -P 0x5a 0 64M", e.uri("v"))
	if strings.Contains(out, "failed") || strings.Contains(out, "error") || strings.Contains(out, "mismatch") {
		t.Fatalf("the volume after its overlays went:\n%s", out)
	}
}
