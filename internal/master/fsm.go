package master

import (
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/catena-io/catena/internal/meta"
)

// fsm applies Raft entries to a meta.State. Raft calls Apply, Snapshot and
// Restore from its own goroutines; handlers read through view.
type fsm struct {
	log *slog.Logger

	mu    sync.RWMutex
	state *meta.State
}

var _ raft.FSM = (*fsm)(nil)

func newFSM(log *slog.Logger) *fsm { return &fsm{log: log, state: meta.New()} }

// Apply returns a meta.Result.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return meta.Result{}
	}
	cmd, err := meta.Decode(l.Data)
	if err != nil {
		// Every replica fails the same way, so the states stay equal; but an
		// entry we wrote and cannot read is a bug worth shouting about.
		f.log.Error("master: undecodable raft entry", "index", l.Index, "err", err)
		return meta.Result{Err: err}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Apply(cmd)
}

// view runs fn with the state under the read lock; fn must not keep it.
func (f *fsm) view(fn func(s *meta.State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := f.state.Checkpoint()
	if err != nil {
		return nil, err
	}
	return fsmSnapshot(b), nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("master: read snapshot: %w", err)
	}
	s, err := meta.RestoreCheckpoint(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.state = s
	f.mu.Unlock()
	return nil
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
