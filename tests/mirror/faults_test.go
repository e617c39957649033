package mirror

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/mirror"
)

// TestMirrorTargetFaults: B's chunkserver and then B's master are killed
// while a checkpoint is being shipped, and come back; the mirror goes on
// by itself, and every read of B's volume equals one of A's checkpoints.
// B has 4 chunkservers: with one dead, a chunk new at B still finds the
// 3 its replication needs (with 3, the mirror waits for the server to
// return, retrying, B still at its checkpoint).
func TestMirrorTargetFaults(t *testing.T) {
	t.Parallel()
	a, b, ca, cb := twoClusters(t, cluster.Config{Chunkservers: 4})
	applied := make(chan mirror.Record, 1024)
	m, err := mirror.New(mirror.Config{Volume: volName, From: endpoint(a), To: endpoint(b),
		Interval: 50 * time.Millisecond, KeepSource: true, Logger: clustertest.Logger(),
		OnApplied: func(r mirror.Record) { applied <- r }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- m.Run(ctx) }()
	w := startWriter(t, ca, 3)
	s := startSampler(cb)
	awaitApplied(t, applied, 1)

	// shipping waits until B's record shows a checkpoint half shipped.
	shipping := func() *mirror.Record {
		t.Helper()
		var r *mirror.Record
		clustertest.Eventually(t, waitLong, func() error {
			var err error
			if r, err = mirror.ReadRecord(t.Context(), cb, volName); err != nil {
				return err
			}
			if r.Stage == 0 || r.Done < 0 {
				return fmt.Errorf("no checkpoint half shipped (record %+v)", r)
			}
			return nil
		})
		return r
	}

	r := shipping()
	if err := b.Kill(1); err != nil {
		t.Fatal(err)
	}
	t.Logf("chunkserver 1 of B killed while shipping checkpoint %d", r.Pending)
	awaitApplied(t, applied, 2)
	if err := b.Restart(t.Context(), 1); err != nil {
		t.Fatal(err)
	}

	r = shipping()
	if err := b.KillMaster(0); err != nil {
		t.Fatal(err)
	}
	t.Logf("B's master killed while shipping checkpoint %d", r.Pending)
	if err := b.RestartMaster(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	awaitApplied(t, applied, 2)

	w.halt(t)
	last := awaitApplied(t, applied, 2)
	samples, voided := s.halt()
	cancel()
	if err := <-runDone; err != nil {
		t.Fatalf("mirror run: %v", err)
	}
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
	if !bytes.Equal(final, live) {
		t.Fatalf("B's volume at checkpoint %d differs from A's after the writes stopped", last.Applied)
	}
	t.Logf("%d checkpoints; %d samples of B (%d void) saw %d checkpoints; shipped %d bytes, %d fallbacks",
		last.Applied, len(samples), voided, len(seen), last.ShippedBytes, last.Fallbacks)
}
