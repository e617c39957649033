package master

import "github.com/catena-io/catena/internal/meta"

// CheckState runs the metadata fsck (meta.State.Check) on this master's
// replicated state as it stands, under the state's read lock. The cluster
// harness runs it on every master when a test ends, then compares the
// masters with AppliedIndex and Snapshot.
func (m *Master) CheckState() error {
	var err error
	m.fsm.view(func(st *meta.State) { err = st.Check() })
	return err
}
