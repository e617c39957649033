package master

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/catena-io/catena/internal/meta"
)

// fsm applies Raft entries to a meta.State. Raft calls Apply, Snapshot and
// Restore from its own goroutines; handlers read through view.
//
// applied is the index of the last entry in state. Raft's own
// AppliedIndex runs ahead of it: Raft counts an entry applied when it
// queues it for the state machine, which may be seconds behind while a
// restarted master replays its log.
type fsm struct {
	log *slog.Logger

	mu      sync.RWMutex
	state   *meta.State
	applied uint64
}

var _ raft.FSM = (*fsm)(nil)

func newFSM(log *slog.Logger) *fsm { return &fsm{log: log, state: meta.New()} }

// Apply returns a meta.Result.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return meta.Result{}
	}
	cmd, err := meta.Decode(l.Data)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = l.Index
	if err != nil {
		// Every replica fails the same way, so the states stay equal; but an
		// entry we wrote and cannot read is a bug worth shouting about.
		f.log.Error("master: undecodable raft entry", "index", l.Index, "err", err)
		return meta.Result{Err: err}
	}
	return f.state.Apply(cmd)
}

// checkpoint encodes the state and returns the index it is at.
func (f *fsm) checkpoint() (uint64, []byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := f.state.Checkpoint()
	return f.applied, b, err
}

// view runs fn with the state under the read lock; fn must not keep it.
func (f *fsm) view(fn func(s *meta.State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

// A snapshot is snapshotMagic, the applied index in decimal and a
// newline, then the state's checkpoint. A snapshot written before the
// index was kept is the checkpoint alone (a JSON object); it restores at
// index 0 until the next entry.
const snapshotMagic = "catena-fsm-snapshot "

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	index, b, err := f.checkpoint()
	if err != nil {
		return nil, err
	}
	head := fmt.Appendf(nil, "%s%d\n", snapshotMagic, index)
	return fsmSnapshot(append(head, b...)), nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("master: read snapshot: %w", err)
	}
	index, b, err := splitSnapshot(b)
	if err != nil {
		return err
	}
	s, err := meta.RestoreCheckpoint(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.state, f.applied = s, index
	f.mu.Unlock()
	return nil
}

// splitSnapshot parses a snapshot's header.
func splitSnapshot(b []byte) (index uint64, checkpoint []byte, err error) {
	rest, ok := bytes.CutPrefix(b, []byte(snapshotMagic))
	if !ok {
		return 0, b, nil
	}
	num, ckpt, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return 0, nil, fmt.Errorf("master: snapshot header: no end")
	}
	index, err = strconv.ParseUint(string(num), 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("master: snapshot header: %w", err)
	}
	return index, ckpt, nil
}

type fsmSnapshot []byte

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return fmt.Errorf("master: write snapshot: %w", err)
	}
	return sink.Close()
}

func (fsmSnapshot) Release() {}
