package master

import (
	"bytes"
	"io"
	"log/slog"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/catena-io/catena/internal/meta"
)

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

func applyCmd(t *testing.T, f *fsm, index uint64, c meta.Command) {
	t.Helper()
	b, err := meta.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: b}).(meta.Result); r.Err != nil {
		t.Fatal(r.Err)
	}
}

func snapshotBytes(t *testing.T, f *fsm) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

// The state machine's applied index travels with its snapshots, so a
// master restored from one reports the index its state is at; a snapshot
// from before the index was kept restores at 0.
func TestFSMSnapshotIndex(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	f := newFSM(log)
	applyCmd(t, f, 3, meta.Mkdir{Path: "/a", Mode: 0o755})
	applyCmd(t, f, 7, meta.Mkdir{Path: "/b", Mode: 0o755})
	index, want, err := f.checkpoint()
	if err != nil || index != 7 {
		t.Fatalf("checkpoint at %d, %v; want 7", index, err)
	}
	snap := snapshotBytes(t, f)

	g := newFSM(log)
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if index, got, _ := g.checkpoint(); index != 7 || !bytes.Equal(got, want) {
		t.Fatalf("restored at %d (want 7), state equal: %v", index, bytes.Equal(got, want))
	}

	old := newFSM(log)
	if err := old.Restore(io.NopCloser(bytes.NewReader(want))); err != nil {
		t.Fatal(err)
	}
	if index, got, _ := old.checkpoint(); index != 0 || !bytes.Equal(got, want) {
		t.Fatalf("old-format snapshot restored at %d (want 0), state equal: %v", index, bytes.Equal(got, want))
	}
	applyCmd(t, old, 8, meta.Mkdir{Path: "/c", Mode: 0o755})
	if index, _, _ := old.checkpoint(); index != 8 {
		t.Fatalf("after an entry: index %d, want 8", index)
	}

	for _, bad := range []string{snapshotMagic, snapshotMagic + "x\n{}", snapshotMagic + "-1\n{}", snapshotMagic + "5\nnot json"} {
		h := newFSM(log)
		if err := h.Restore(io.NopCloser(bytes.NewReader([]byte(bad)))); err == nil {
			t.Errorf("Restore(%q) succeeded", bad)
		}
		if index, _, _ := h.checkpoint(); index != 0 {
			t.Errorf("Restore(%q) failed but moved the index to %d", bad, index)
		}
	}
}

// FuzzFSMRestore: a snapshot (from disk or a peer's InstallSnapshot) of
// any bytes is restored or refused, never a panic; a restored state
// snapshots to bytes that restore to the same state and index.
func FuzzFSMRestore(f *testing.F) {
	log := slog.New(slog.DiscardHandler)
	seed := newFSM(log)
	b, _ := meta.Encode(meta.Mkdir{Path: "/a", Mode: 0o755})
	seed.Apply(&raft.Log{Index: 4, Type: raft.LogCommand, Data: b})
	var sink memSink
	s, _ := seed.Snapshot()
	s.Persist(&sink)
	f.Add(sink.Bytes())
	_, ckpt, _ := seed.checkpoint()
	f.Add(ckpt)
	f.Add([]byte(snapshotMagic + "18446744073709551615\n{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g := newFSM(log)
		if g.Restore(io.NopCloser(bytes.NewReader(data))) != nil {
			return
		}
		index, want, err := g.checkpoint()
		if err != nil {
			t.Fatalf("restored state does not checkpoint: %v", err)
		}
		h := newFSM(log)
		if err := h.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, g)))); err != nil {
			t.Fatalf("a snapshot of a restored state does not restore: %v", err)
		}
		if i2, got, _ := h.checkpoint(); i2 != index || !bytes.Equal(got, want) {
			t.Fatalf("round trip: index %d -> %d, state equal %v", index, i2, bytes.Equal(got, want))
		}
	})
}
