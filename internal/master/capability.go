package master

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/meta"
)

// Capability keys live in the Raft state (meta.AddCapabilityKey), so
// every master signs with the same keys; the leader adds the first when
// it takes office and a new one every capKeyRotate; the chunkservers get
// them with every Register and Heartbeat answer.
const (
	// capKeyRotate is how long a key signs before the leader adds another.
	capKeyRotate = 24 * time.Hour
	// capKeyWarmup is how long a new key waits before it signs, while an
	// older one exists: the chunkservers learn it in the meantime from
	// their heartbeats.
	capKeyWarmup = 30 * time.Second
)

// ensureCapabilityKey adds a capability key when there is none or the
// newest is capKeyRotate old.
func (m *Master) ensureCapabilityKey(ctx context.Context) error {
	// One at a time (the election and the repair loop both call it), so
	// that a second caller sees the first one's key.
	m.capKeyMu.Lock()
	defer m.capKeyMu.Unlock()
	var keys []meta.CapabilityKey
	m.fsm.view(func(st *meta.State) { keys = st.CapabilityKeys() })
	now := m.cfg.Clock.Now()
	var id uint64
	if n := len(keys); n > 0 {
		if now.Sub(time.Unix(0, keys[n-1].Time)) < capKeyRotate {
			return nil
		}
		id = keys[n-1].ID
	}
	secret := make([]byte, meta.CapabilityKeySize)
	rand.Read(secret)
	_, err := (&server{m: m}).propose(ctx, meta.AddCapabilityKey{ID: id + 1, Secret: secret, Time: now.UnixNano()})
	if err == nil {
		m.log.Info("master: capability key added", "id", id+1)
	}
	return err
}

// capabilityKeys are the keys as the chunkservers get them.
func capabilityKeys(st *meta.State) []*api.CapabilityKey {
	var out []*api.CapabilityKey
	for _, k := range st.CapabilityKeys() {
		out = append(out, &api.CapabilityKey{Id: k.ID, Secret: k.Secret})
	}
	return out
}

// grant is what the chunk capabilities of one answer allow.
type grant struct {
	rights  auth.Rights
	expires time.Time
	key     auth.CapabilityKey
	ok      bool // a key exists
}

// grantFor is the grant for the caller on ctx to the data of inode ino:
// what its permissions allow (read, write; root both), and never write
// for a reader's certificate. st must be read-locked.
func (s *server) grantFor(ctx context.Context, st *meta.State, ino uint64) grant {
	now := s.m.cfg.Clock.Now()
	g := grant{rights: auth.RightRead | auth.RightWrite, expires: now.Add(auth.CapabilityLifetime)}
	if u := s.m.caller(ctx); !u.Root {
		g.rights = 0
		read, write := st.Rights(u, ino)
		if read {
			g.rights |= auth.RightRead
		}
		if write {
			g.rights |= auth.RightWrite
		}
	}
	if otherWriter(ctx, st, ino) {
		g.rights &^= auth.RightWrite // a volume's writer is another session
	}
	if s.m.cfg.TLS != nil {
		if role, _, _ := auth.PeerIdentity(ctx); role == auth.RoleReader {
			g.rights &^= auth.RightWrite
		}
	}
	if k, ok := st.SigningKey(now.UnixNano(), int64(capKeyWarmup)); ok {
		g.key, g.ok = auth.CapabilityKey{ID: k.ID, Secret: k.Secret}, true
	}
	return g
}

// sign attaches the capability for ci (its handle, epoch, size, chain)
// under g.
func (g grant) sign(ci *api.ChunkInfo) {
	if !g.ok {
		return
	}
	body := &api.CapabilityBody{Handle: ci.Handle, Epoch: ci.Epoch, Rights: uint32(g.rights),
		ExpiresUnixMilli: g.expires.UnixMilli(), ChunkSize: ci.ChunkSize}
	for _, sv := range ci.Chain {
		body.Chain = append(body.Chain, sv.Id)
	}
	ci.Capability = auth.Sign(g.key, body)
}
