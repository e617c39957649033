package mirror

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/mirror"
	"github.com/catena-io/catena/internal/proctest"
	"github.com/catena-io/catena/internal/testtools"
)

// TestSyncFlushSurvivesSiteLoss: output buffering. A mirror runs with
// --sync-flush and an interval of an hour, so that after its first
// checkpoint only a flush makes it take another. qemu-io writes a
// pattern through a real catena nbd at A and flushes; as soon as the
// flush returns, everything at A is killed (catena nbd and the mirror
// with SIGKILL, A's masters and chunkservers stopped). B, promoted,
// holds the pattern: the flush returned only once a checkpoint holding
// it was applied there.
func TestSyncFlushSurvivesSiteLoss(t *testing.T) {
	testtools.Programs(t, "tests/mirror", "qemu-io")
	a, b, _, cb := twoClusters(t, cluster.Config{})
	p := proctest.Spawn(t, catenaBin, "mirror", proctest.Options{},
		"mirror", "run", "--from", a.MasterAddr(), "--from-tls-dir", a.TLSDir(),
		"--to", b.MasterAddr(), "--to-tls-dir", b.TLSDir(), "--interval", "1h", "--sync-flush",
		"--log-level", "info", volName)
	first := awaitRecord(t, cb, "the first checkpoint", p, func(r *mirror.Record) bool { return r.Applied >= 1 && r.SyncFlush })

	addr := proctest.FreeAddr(t)
	nbd := proctest.Start(t, catenaBin, "nbd", "catena nbd: serving on", nil,
		"nbd", "--tls-dir", a.TLSDir(), "--master", a.MasterAddr(), "--listen", addr, "--volume", volName)
	qemu := func(cmds ...string) time.Duration {
		t.Helper()
		args := []string{"-f", "raw"}
		for _, c := range cmds {
			args = append(args, "-c", c)
		}
		args = append(args, fmt.Sprintf("nbd://%s/%s", addr, volName))
		ctx, cancel := context.WithTimeout(t.Context(), waitLong)
		defer cancel()
		start := time.Now()
		out, err := exec.CommandContext(ctx, "qemu-io", args...).CombinedOutput()
		if err != nil || strings.Contains(string(out), "error") {
			t.Fatalf("qemu-io %v: %v\n%s\nnbd stderr:\n%s\nmirror stderr:\n%s", cmds, err, out, nbd.Stderr(), p.Stderr())
		}
		return time.Since(start)
	}
	took := qemu("write -P 0x5a 1M 64k", "flush")
	after, err := mirror.ReadRecord(t.Context(), cb, volName)
	if err != nil {
		t.Fatal(err)
	}
	// The interval is an hour: a checkpoint after the first is the
	// flush's doing.
	if after.Applied <= first.Applied {
		t.Fatalf("the flush returned with B still at checkpoint %d (was %d)", after.Applied, first.Applied)
	}
	t.Logf("write + flush through NBD took %v; B at checkpoint %d (was %d)", took.Round(time.Millisecond), after.Applied, first.Applied)
	if out, err := catena(t, "mirror", "status", "--to", b.MasterAddr(), "--cluster-tls-dir", b.TLSDir(), volName); err != nil || !strings.Contains(out, "sync-flush: on") {
		t.Fatalf("mirror status at B = %q, %v; want it to say sync-flush is on", out, err)
	}

	// The site is lost.
	nbd.Kill()
	p.Kill()
	if err := a.Close(); err != nil {
		t.Fatalf("stopping A: %v", err)
	}
	if out, err := catena(t, "mirror", "promote", "--at", b.MasterAddr(), "--cluster-tls-dir", b.TLSDir(), volName); err != nil {
		t.Fatalf("promote at B: %v (%s)", err, out)
	}
	v, err := cb.OpenVolume(t.Context(), volName)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	got := make([]byte, 64<<10)
	if _, err := v.ReadAt(got, 1<<20); err != nil {
		t.Fatal(err)
	}
	if want := bytes.Repeat([]byte{0x5a}, len(got)); !bytes.Equal(got, want) {
		t.Fatalf("B, promoted, does not hold the flushed write: first bytes %x", got[:16])
	}
}

// TestFlushBarrierWithoutMirror: a volume without a mirror record, or
// whose mirror runs without --sync-flush, flushes at once; one whose
// --sync-flush mirror was killed (its record still says so) fails the
// flush after the barrier's timeout, naming the cause, instead of
// returning as if the data were at B.
func TestFlushBarrierWithoutMirror(t *testing.T) {
	ca := clustertest.Client(t, clustertest.New(t, cluster.Config{}))
	if _, err := ca.CreateVolume(t.Context(), volName, volSize, client.VolumeOptions{ChunkSize: chunkSize}); err != nil {
		t.Fatal(err)
	}
	fb := mirror.NewFlushBarrier(ca, nil)
	if err := fb.Wait(t.Context(), volName); err != nil {
		t.Fatalf("no record: %v", err)
	}
	rec := &mirror.Record{Version: 1, Volume: volName, Side: mirror.SideSource, Applied: 3, Done: -1}
	if err := mirror.WriteRecord(t.Context(), ca, rec); err != nil {
		t.Fatal(err)
	}
	fb = mirror.NewFlushBarrier(ca, nil)
	if err := fb.Wait(t.Context(), volName); err != nil {
		t.Fatalf("a mirror without --sync-flush: %v", err)
	}
	rec.SyncFlush = true
	if err := mirror.WriteRecord(t.Context(), ca, rec); err != nil {
		t.Fatal(err)
	}
	fb = mirror.NewFlushBarrier(ca, nil)
	fb.Timeout = time.Second
	err := fb.Wait(t.Context(), volName)
	if err == nil || !strings.Contains(err.Error(), "is the mirror running") {
		t.Fatalf("a killed --sync-flush mirror: %v, want a timeout naming the mirror", err)
	}
	// Through a volume's Flush, as catena nbd does.
	ca.SetFlushBarrier(fb.Wait)
	defer ca.SetFlushBarrier(nil)
	v, err := ca.OpenVolume(t.Context(), volName)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.Flush(); err == nil || !strings.Contains(err.Error(), "is the mirror running") {
		t.Fatalf("Volume.Flush under a killed --sync-flush mirror: %v", err)
	}
}
