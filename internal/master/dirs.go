package master

import (
	"fmt"
	"path/filepath"

	"github.com/hashicorp/raft"

	"github.com/catena-io/catena/internal/durable"
)

// raftSnapshotsDir is where raft's FileSnapshotStore keeps snapshots,
// under the directory it is given.
const raftSnapshotsDir = "snapshots"

// makeRaftDirs creates Dir, Dir/raft and Dir/raft/snapshots, each fsynced
// into its parent, so a power cut after the first start cannot lose the
// directories that hold the synced Raft log. It returns Dir/raft.
func makeRaftDirs(dir string) (string, error) {
	raftDir := filepath.Join(dir, "raft")
	if err := durable.MkdirAll(filepath.Join(raftDir, raftSnapshotsDir), 0o755); err != nil {
		return "", fmt.Errorf("master: %w", err)
	}
	return raftDir, nil
}

// durableSnapshots is raft's file snapshot store plus the one fsync it
// lacks: it fsyncs the parent after moving a snapshot's directory into
// place, but never the snapshot directory itself, whose entries (state.bin,
// meta.json) were created inside it.
type durableSnapshots struct {
	*raft.FileSnapshotStore
	dir string // Dir/raft/snapshots
}

var _ raft.SnapshotStore = (*durableSnapshots)(nil)

func (d *durableSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := d.FileSnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return &durableSink{SnapshotSink: sink, dir: d.dir}, nil
}

// durableSink fsyncs the snapshot's directory once Close moved it into
// place; until then the snapshot is not complete.
type durableSink struct {
	raft.SnapshotSink
	dir string
}

func (s *durableSink) Close() error {
	if err := s.SnapshotSink.Close(); err != nil {
		return err
	}
	return durable.SyncDir(filepath.Join(s.dir, s.ID()))
}
