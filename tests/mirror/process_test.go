package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/mirror"
	"github.com/catena-io/catena/internal/proctest"
)

// catenaBin is the binary under test, built once by TestMain.
var catenaBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "catena-mirror-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if catenaBin, err = proctest.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startMirror runs "catena mirror run" from a to b as a real process.
func startMirror(t *testing.T, a, b *cluster.Cluster) *proctest.Proc {
	t.Helper()
	return proctest.Spawn(t, catenaBin, "mirror", proctest.Options{},
		"mirror", "run", "--from", a.MasterAddr(), "--from-tls-dir", a.TLSDir(),
		"--to", b.MasterAddr(), "--to-tls-dir", b.TLSDir(), "--interval", "100ms",
		"--keep-source-checkpoints", "--log-level", "info", volName)
}

// catena runs the binary to completion and returns its stdout.
func catena(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, catenaBin, args...)
	cmd.Env = append(os.Environ(), "CATENA_MASTER=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("catena %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// awaitRecord polls B's record until cond holds (the record is the
// event: a checkpoint applied, a slot shipped).
func awaitRecord(t *testing.T, cb *client.Client, what string, p *proctest.Proc, cond func(*mirror.Record) bool) *mirror.Record {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for time.Now().Before(deadline) {
		if r, err := mirror.ReadRecord(t.Context(), cb, volName); err == nil && cond(r) {
			return r
		}
		select {
		case <-p.Done():
			t.Fatalf("mirror process exited (%v) while awaiting %s; stderr:\n%s", p.Err(), what, p.Stderr())
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("no %s within %s; mirror stderr:\n%s", what, waitLong, p.Stderr())
	return nil
}

// TestMirrorProcessKilled: the mirror runs as a real process while A is
// written; it is killed with SIGKILL in the middle of shipping a
// checkpoint, right after applying one, and at once after a restart;
// each restart resumes from B's record. B's volume, read throughout,
// always equals one of A's checkpoints. Then catena mirror status and
// promote: B's volume becomes writable and a mirror refuses to run onto
// it again.
func TestMirrorProcessKilled(t *testing.T) {
	t.Parallel()
	a, b, ca, cb := twoClusters(t, cluster.Config{})
	w := startWriter(t, ca, 2)
	s := startSampler(cb)

	p := startMirror(t, a, b)
	awaitRecord(t, cb, "a first checkpoint", p, func(r *mirror.Record) bool { return r.Applied >= 1 })

	// 1. In the middle of shipping: a stage attached, slots shipped.
	r := awaitRecord(t, cb, "a checkpoint half shipped", p, func(r *mirror.Record) bool { return r.Stage != 0 && r.Done >= 0 })
	p.Kill()
	t.Logf("killed while shipping checkpoint %d (slot %d done, B at %d)", r.Pending, r.Done, r.Applied)
	before := r.Applied
	p = startMirror(t, a, b)
	r = awaitRecord(t, cb, "a checkpoint after the restart", p, func(r *mirror.Record) bool { return r.Applied > before })
	resumed := strings.Contains(p.Stderr(), "resuming the staged checkpoint")

	// 2. Right after a checkpoint was applied.
	before = r.Applied
	awaitRecord(t, cb, "the next checkpoint", p, func(r *mirror.Record) bool { return r.Applied > before })
	p.Kill()

	// 3. At once after a restart, whatever it was doing.
	p = startMirror(t, a, b)
	if line, ok := p.NextLine(waitLong); !ok {
		t.Fatalf("restarted mirror printed nothing: %s", p.Stderr())
	} else {
		t.Logf("after the restart: %s", line)
	}
	p.Kill()

	p = startMirror(t, a, b)
	r = awaitRecord(t, cb, "a checkpoint", p, func(r *mirror.Record) bool { return r.Applied > before+1 })
	w.halt(t)
	before = r.Applied
	awaitRecord(t, cb, "two checkpoints after the writes", p, func(r *mirror.Record) bool { return r.Applied >= before+2 })
	out, err := catena(t, "mirror", "sync", "--from", a.MasterAddr(), "--from-tls-dir", a.TLSDir(),
		"--to", b.MasterAddr(), "--to-tls-dir", b.TLSDir(), volName)
	if err != nil || !strings.Contains(out, "at checkpoint") {
		t.Fatalf("mirror sync = %q, %v", out, err)
	}
	t.Logf("mirror sync: %s", strings.TrimSpace(out))
	p.Stop(t, time.Minute)
	last, err := mirror.ReadRecord(t.Context(), cb, volName)
	if err != nil {
		t.Fatal(err)
	}
	samples, voided := s.halt()

	ckpts := checkpoints(t, ca)
	seen := checkSamples(t, samples, ckpts)
	final, err := image(t.Context(), cb, volName)
	if err != nil {
		t.Fatal(err)
	}
	live, err := image(t.Context(), ca, volName)
	if err != nil {
		t.Fatal(err)
	}
	if string(final) != string(live) {
		t.Fatalf("B's volume at checkpoint %d differs from A's volume after the writes stopped", last.Applied)
	}
	changed := changedBytes(ckpts, last.Applied)
	t.Logf("%d writes, %d checkpoints, 3 kills (resumed a staged checkpoint: %v); %d samples of B (%d void) saw %d checkpoints; shipped %d bytes (recorded) for %d changed (%.3f), %d fallbacks",
		w.count.Load(), last.Applied, resumed, len(samples), voided, len(seen), last.ShippedBytes, changed,
		float64(last.ShippedBytes)/float64(changed), last.Fallbacks)

	// Status at both sides.
	out, err = catena(t, "mirror", "status", "--to", b.MasterAddr(), "--cluster-tls-dir", b.TLSDir(), "--json", volName)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Applied  uint64 `json:"applied"`
		Side     string `json:"side"`
		Shipped  int64  `json:"shipped_bytes"`
		Promoted bool   `json:"promoted"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Applied != last.Applied || st.Side != "target" || st.Shipped != last.ShippedBytes {
		t.Fatalf("mirror status --to --json = %s (%v); want applied %d", out, err, last.Applied)
	}
	out, err = catena(t, "mirror", "status", "--from", a.MasterAddr(), "--cluster-tls-dir", a.TLSDir(), volName)
	if err != nil || !strings.Contains(out, fmt.Sprintf("checkpoint %d", last.Applied)) || !strings.Contains(out, "at source:") {
		t.Fatalf("mirror status --from = %q, %v", out, err)
	}

	// While the mirror holds B's volume, no other writer may open it.
	if _, err := cb.OpenVolumeWriter(t.Context(), volName, client.WriterOptions{Owner: "someone"}); err == nil {
		t.Fatal("a writer opened B's mirror volume before the promote")
	}
	out, err = catena(t, "mirror", "promote", "--at", b.MasterAddr(), "--cluster-tls-dir", b.TLSDir(), volName)
	if err != nil || !strings.Contains(out, "promoted at checkpoint") {
		t.Fatalf("mirror promote = %q, %v", out, err)
	}
	v, err := cb.OpenVolumeWriter(t.Context(), volName, client.WriterOptions{Owner: "someone"})
	if err != nil {
		t.Fatalf("open B's volume as its writer after the promote: %v", err)
	}
	if _, err := v.WriteAt([]byte("promoted"), 0); err != nil {
		t.Fatalf("write B's volume after the promote: %v", err)
	}
	v.Close()
	if _, err := catena(t, "mirror", "run", "--from", a.MasterAddr(), "--from-tls-dir", a.TLSDir(),
		"--to", b.MasterAddr(), "--to-tls-dir", b.TLSDir(), volName); err == nil || !strings.Contains(err.Error(), "promoted") {
		t.Fatalf("mirror run onto a promoted volume: %v; want a refusal naming the promote", err)
	}

	// Failback: B is written, A returns with writes of its own after
	// the last checkpoint; mirror B -> A --resync rolls A back to the
	// last common checkpoint and ships only the blocks B changed.
	writeAt := func(c *client.Client, off int64, what string) {
		t.Helper()
		v, err := c.OpenVolume(t.Context(), volName)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		if _, err := v.WriteAt([]byte(what), off); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := catena(t, "mirror", "run", "--from", b.MasterAddr(), "--from-tls-dir", b.TLSDir(),
		"--to", a.MasterAddr(), "--to-tls-dir", a.TLSDir(), volName); err == nil || !strings.Contains(err.Error(), "--resync") {
		t.Fatalf("mirror run onto the old source without --resync: %v; want a refusal naming --resync", err)
	}
	v, err = cb.OpenVolumeWriter(t.Context(), volName, client.WriterOptions{Owner: "someone"})
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{5 << 20, 5<<20 + 4096, 7<<20 + 100} {
		if _, err := v.WriteAt([]byte("written at B after the promote"), off); err != nil {
			t.Fatal(err)
		}
	}
	v.Close()
	writeAt(ca, 3<<20, "written at A after its last checkpoint: lost with the site")
	wantB, err := image(t.Context(), cb, volName)
	if err != nil {
		t.Fatal(err)
	}
	changedSince := 0
	for off := 0; off < volSize; off += mirror.BlockSize {
		if string(wantB[off:off+mirror.BlockSize]) != string(final[off:off+mirror.BlockSize]) {
			changedSince += mirror.BlockSize
		}
	}
	back := proctest.Spawn(t, catenaBin, "failback", proctest.Options{},
		"mirror", "run", "--from", b.MasterAddr(), "--from-tls-dir", b.TLSDir(),
		"--to", a.MasterAddr(), "--to-tls-dir", a.TLSDir(), "--interval", "100ms", "--resync", volName)
	ra := awaitRecord(t, ca, "a checkpoint at A after the resync", back, func(r *mirror.Record) bool {
		return r.Side == mirror.SideTarget && r.Applied > last.Applied
	})
	back.Stop(t, time.Minute)
	gotA, err := image(t.Context(), ca, volName)
	if err != nil {
		t.Fatal(err)
	}
	if string(gotA) != string(wantB) {
		t.Fatal("A after the failback differs from B")
	}
	t.Logf("failback: A rolled back to checkpoint %d, then at %d; shipped %d bytes for %d changed at B since the promote (volume %d)",
		last.Applied, ra.Applied, ra.ShippedBytes, changedSince, volSize)
	if ra.ShippedBytes != int64(changedSince) {
		t.Fatalf("failback shipped %d bytes; %d changed at B", ra.ShippedBytes, changedSince)
	}
}
