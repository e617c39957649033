package master

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/master/decide"
	"github.com/catena-io/catena/internal/meta"
	"github.com/catena-io/catena/internal/rpcerr"
)

// Overlays and writer sessions (meta/overlay.go has the model). The
// leader's part: it fences what each command moved to a new epoch before
// it answers (the old writer's next write is refused from then on); it
// keeps each session's renewals as soft state, counting a session renewed
// at its election (a writer's renewals may have gone to the previous
// leader), refuses a second writer while the first one's lease runs, and
// detaches an overlay whose lease lapsed; and it signs write capabilities
// for a volume with a session only to calls naming the session in
// MDSession.

// MDSession is the metadata key of a writer's session on its chunk calls.
const MDSession = "catena-session"

// defaultWriterLease is a session's lease when its writer names none.
const defaultWriterLease = 30 * time.Second

// maxWriterLease bounds a lease a writer may ask for.
const maxWriterLease = 24 * time.Hour

// callerSession is the writer session the call on ctx names ("": none).
func callerSession(ctx context.Context) string {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ""
	}
	if v := md.Get(MDSession); len(v) == 1 {
		return v[0]
	}
	return ""
}

// otherWriter reports whether inode ino is a volume whose writer session
// is set and not the one the call on ctx names. st must be read-locked.
func otherWriter(ctx context.Context, st *meta.State, ino uint64) bool {
	sess, _, _, _, ok := st.VolumeWriter(ino)
	return ok && sess != "" && sess != callerSession(ctx)
}

func errOtherWriter(ino uint64) error {
	return rpcerr.New(api.ErrorCode_FENCED, "volume inode %d has another writer: this writer's session was fenced or never held (catena nbd holds one per volume)", ino)
}

// leaseOf is the lease of a volume's session: an overlay's own, else
// the one its writer asked for, else the default.
func (m *Master) leaseOf(ino uint64, overlayLease int64) time.Duration {
	if overlayLease > 0 {
		return time.Duration(overlayLease)
	}
	m.soft.mu.Lock()
	defer m.soft.mu.Unlock()
	if d, ok := m.soft.lease[ino]; ok {
		return d
	}
	return defaultWriterLease
}

// lastRenewal is the latest of the session's last renewal here, this
// master's election and attached (unix ns; 0 for none).
func (m *Master) lastRenewal(ino uint64, attached int64) time.Time {
	m.soft.mu.Lock()
	defer m.soft.mu.Unlock()
	t := m.soft.leaderSince
	if r, ok := m.soft.renewed[ino]; ok && r.After(t) {
		t = r
	}
	if a := time.Unix(0, attached); attached != 0 && a.After(t) {
		t = a
	}
	return t
}

func (m *Master) renew(ino uint64, lease time.Duration) {
	m.soft.mu.Lock()
	defer m.soft.mu.Unlock()
	m.soft.renewed[ino] = m.cfg.Clock.Now()
	if lease > 0 {
		m.soft.lease[ino] = lease
	}
}

func newSession() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func leaseFromMillis(ms int64) (time.Duration, error) {
	switch {
	case ms < 0 || ms > maxWriterLease.Milliseconds():
		return 0, rpcerr.New(api.ErrorCode_INVALID, "lease of %d ms is not in [0, %d]", ms, maxWriterLease.Milliseconds())
	case ms == 0:
		return defaultWriterLease, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func (v *volumeServer) AttachOverlay(ctx context.Context, req *api.AttachOverlayRequest) (*api.AttachOverlayResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	if err := checkVolumeName(req.Name); err != nil {
		return nil, err
	}
	lease, err := leaseFromMillis(req.LeaseMs)
	if err != nil {
		return nil, err
	}
	r, err := v.s.proposeOnce(ctx, meta.AttachOverlay{Volume: req.Volume, Name: req.Name, Lease: int64(lease), Replace: req.Replace, Time: v.s.now()})
	if err != nil {
		return nil, err
	}
	// A replaced overlay's chunks (its writer's next write is refused),
	// then the volume's, now shared with the overlay: the writer's
	// capabilities for their old epoch die before the attach answers.
	info, err := v.fenceBoth(ctx, r)
	if err != nil {
		return nil, err
	}
	v.s.m.event("overlay", "overlay %s attached (lease %s)", r.Info.Name, lease)
	v.s.m.schedulePreFork(req.Volume)
	return &api.AttachOverlayResponse{Info: info}, nil
}

func (v *volumeServer) ListOverlays(ctx context.Context, req *api.ListOverlaysRequest) (*api.ListOverlaysResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	type ov struct {
		fi              meta.FileInfo
		info            *api.VolumeInfo
		session, owner  string
		lease, attached int64
		own             []uint64 // its chunks no other view names
	}
	var ovs []ov
	var err error
	ev := v.s.m.evidence()
	members := map[uint64][]*api.ServerRef{}
	v.s.m.fsm.view(func(st *meta.State) {
		var l []meta.FileInfo
		if l, err = st.Overlays(req.Volume); err != nil {
			return
		}
		for _, fi := range l {
			o := ov{fi: fi, info: volumeInfo(st, fi, ev)}
			o.session, _, o.lease, o.attached, _ = st.VolumeWriter(fi.Inode)
			o.owner = st.VolumeOwner(fi.Inode)
			if _, refs, err := st.FileChunks(fi.Inode, 0, 0); err == nil {
				for _, r := range refs {
					if ch, ok := st.Chunk(r.Handle); ok && ch.Refs <= 1 && r.Fork == 0 {
						o.own = append(o.own, r.Handle)
						members[r.Handle] = serverRefs(st, ch.Chain)
					}
				}
			}
			ovs = append(ovs, o)
		}
	})
	if err != nil {
		return nil, metaErr(err)
	}
	// Exclusive bytes at block granularity: a forked chunk's blocks the
	// overlay did not write are still its origin's (or another view's)
	// on disk; its members say what deleting it would free.
	if own := v.s.m.ownBytes(ctx, members); len(own) > 0 {
		for i := range ovs {
			var n int64
			for _, h := range ovs[i].own {
				b, ok := own[h]
				if !ok {
					n = -1 // a member did not answer: keep the reported figure
					break
				}
				n += b
			}
			if n >= 0 {
				ovs[i].info.ExclusiveBytes = n
			}
		}
	}
	now := v.s.m.cfg.Clock.Now()
	resp := &api.ListOverlaysResponse{}
	for _, o := range ovs {
		resp.Overlays = append(resp.Overlays, &api.OverlayInfo{
			Name: strings.TrimPrefix(o.fi.Name, req.Volume+meta.VolumeOverlaySep), Info: o.info,
			AttachedUnixNano: o.attached, LeaseMs: time.Duration(o.lease).Milliseconds(), Writer: o.session != "",
			RenewedAgoMs: now.Sub(v.s.m.lastRenewal(o.fi.Inode, o.attached)).Milliseconds(), Owner: o.owner,
		})
	}
	return resp, nil
}

func (v *volumeServer) DetachOverlay(ctx context.Context, req *api.DetachOverlayRequest) (*api.DetachOverlayResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	if err := v.s.m.detachOverlay(ctx, v.s.proposeOnce, req.Volume, req.Name, "detached"); err != nil {
		return nil, err
	}
	return &api.DetachOverlayResponse{}, nil
}

// detachOverlay commits the detach of overlay name of vol and fences its
// chunks (its writer's next write is refused).
func (m *Master) detachOverlay(ctx context.Context, propose func(context.Context, meta.Command) (meta.Result, error), vol, name, why string) error {
	r, err := propose(ctx, meta.DetachOverlay{Volume: vol, Name: name, Time: m.cfg.Clock.Now().UnixNano()})
	if err != nil {
		return err
	}
	if err := m.fence(ctx, r.Fenced); err != nil {
		return err
	}
	m.event("overlay", "overlay %s %s", meta.VolumeOverlayName(vol, name), why)
	return nil
}

func (v *volumeServer) PromoteOverlay(ctx context.Context, req *api.PromoteOverlayRequest) (*api.PromoteOverlayResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	start := v.s.m.cfg.Clock.Now()
	r, err := v.s.proposeOnce(ctx, meta.PromoteOverlay{Volume: req.Volume, Name: req.Name, Time: v.s.now()})
	if err != nil {
		return nil, err
	}
	// The volume's former chunks (empty for a retry answered from its
	// record: heartbeats carry their epochs then): the old writer's next
	// write is refused, and none lands after this answer.
	if err := v.s.m.fence(ctx, r.Fenced); err != nil {
		return nil, err
	}
	v.s.m.event("overlay", "overlay %s promoted: it is volume %s (%d chunks fenced, %s)",
		meta.VolumeOverlayName(req.Volume, req.Name), req.Volume, len(r.Fenced), v.s.m.cfg.Clock.Now().Sub(start).Round(time.Millisecond))
	v.s.m.schedulePreFork(req.Volume) // the new writer's chunks the other overlays share
	var info *api.VolumeInfo
	v.s.m.fsm.view(func(st *meta.State) { info = volumeInfo(st, r.Info) })
	return &api.PromoteOverlayResponse{Info: info}, nil
}

func (v *volumeServer) AttachWriter(ctx context.Context, req *api.AttachWriterRequest) (*api.AttachWriterResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	var (
		fi       meta.FileInfo
		cur      string
		owner    string
		olease   int64
		attached int64
		err      error
	)
	v.s.m.fsm.view(func(st *meta.State) {
		if fi, err = st.Volume(req.Volume); err == nil {
			cur, _, olease, attached, _ = st.VolumeWriter(fi.Inode)
			owner = st.VolumeOwner(fi.Inode)
		}
	})
	if err != nil {
		return nil, metaErr(err)
	}
	if fi.ReadOnly {
		return nil, rpcerr.New(api.ErrorCode_READ_ONLY, "volume %q is a snapshot: it has no writer", req.Volume)
	}
	lease, err := leaseFromMillis(req.LeaseMs)
	if err != nil {
		return nil, err
	}
	if olease > 0 {
		lease = time.Duration(olease)
	}
	if len(req.Owner) > meta.MaxNameLen {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "writer owner of %d bytes, more than %d", len(req.Owner), meta.MaxNameLen)
	}
	ask := decide.WriterAsk{Session: cur, Owner: owner, Asker: req.Owner, TakeOver: req.TakeOver}
	if cur != "" {
		ask.SinceRenewal = v.s.m.cfg.Clock.Now().Sub(v.s.m.lastRenewal(fi.Inode, attached))
		ask.Lease = v.s.m.leaseOf(fi.Inode, olease)
	}
	switch decide.Writer(ask) {
	case decide.WriterJoin:
		// The same writer (restarted, or another of its processes): it
		// shares the session.
		v.s.m.renew(fi.Inode, lease)
		var info *api.VolumeInfo
		v.s.m.fsm.view(func(st *meta.State) { info = volumeInfo(st, fi) })
		return &api.AttachWriterResponse{Session: cur, Info: info, LeaseMs: lease.Milliseconds(), Joined: true}, nil
	case decide.WriterRefuse:
		return nil, rpcerr.New(api.ErrorCode_EXISTS,
			"volume %q has a writer (%s, renewed %s ago, lease %s): a second writer is refused until the first is fenced (catena overlay promote), its lease lapses, or it is taken over (catena nbd --take-over)",
			req.Volume, owner, ask.SinceRenewal.Round(time.Millisecond), ask.Lease)
	}
	session := newSession()
	r, err := v.s.propose(ctx, meta.SetWriter{Volume: req.Volume, Session: session, Owner: req.Owner, Time: v.s.now()})
	if err != nil {
		return nil, err
	}
	// A session replaced: the old writer's capabilities die here.
	if err := v.s.m.fence(ctx, r.Fenced); err != nil {
		return nil, err
	}
	v.s.m.renew(fi.Inode, lease)
	if cur != "" {
		v.s.m.event("overlay", "volume %s: writer replaced (the previous one fenced)", req.Volume)
	}
	var info *api.VolumeInfo
	v.s.m.fsm.view(func(st *meta.State) { info = volumeInfo(st, r.Info) })
	return &api.AttachWriterResponse{Session: session, Info: info, LeaseMs: lease.Milliseconds()}, nil
}

// checkSession is nil when session is inode ino's writer session.
func (v *volumeServer) checkSession(ino uint64, session string) (name string, err error) {
	var cur string
	var ok bool
	v.s.m.fsm.view(func(st *meta.State) {
		cur, _, _, _, ok = st.VolumeWriter(ino)
		if ok {
			if fi, err := st.Stat(ino); err == nil {
				name = fi.Name
			}
		}
	})
	if !ok || session == "" || cur != session {
		return "", rpcerr.New(api.ErrorCode_FENCED, "volume inode %d: this writer session is fenced (the volume is gone, promoted over, or has another writer)", ino)
	}
	return name, nil
}

func (v *volumeServer) RenewWriter(ctx context.Context, req *api.RenewWriterRequest) (*api.RenewWriterResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	if _, err := v.checkSession(req.Inode, req.Session); err != nil {
		return nil, err
	}
	v.s.m.renew(req.Inode, 0)
	return &api.RenewWriterResponse{}, nil
}

func (v *volumeServer) ReleaseWriter(ctx context.Context, req *api.ReleaseWriterRequest) (*api.ReleaseWriterResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	name, err := v.checkSession(req.Inode, req.Session)
	if err != nil {
		return nil, err
	}
	if _, err := v.s.propose(ctx, meta.SetWriter{Volume: name, Session: "", Prev: req.Session, Time: v.s.now()}); err != nil {
		return nil, err
	}
	return &api.ReleaseWriterResponse{}, nil
}

// expireOverlays detaches every overlay whose lease lapsed: its writer
// stopped renewing (a dead copier) and the writer of the volume never
// waits for it.
func (m *Master) expireOverlays(ctx context.Context) {
	type ov struct {
		ino             uint64
		of, name        string
		lease, attached int64
	}
	var ovs []ov
	var attached []uint64
	m.fsm.view(func(st *meta.State) {
		attached = st.AttachedVolumes()
		for _, ino := range attached {
			_, of, lease, attached, _ := st.VolumeWriter(ino)
			if of == "" {
				continue
			}
			fi, err := st.Stat(ino)
			if err != nil {
				continue
			}
			ovs = append(ovs, ov{ino, of, strings.TrimPrefix(fi.Name, of+meta.VolumeOverlaySep), lease, attached})
		}
	})
	// Renewals of volumes gone or released long since are forgotten (not
	// at once: a session committed after the view above is renewed
	// before it shows there).
	m.soft.mu.Lock()
	for ino, at := range m.soft.renewed {
		if _, ok := slices.BinarySearch(attached, ino); !ok && m.cfg.Clock.Now().Sub(at) > maxWriterLease {
			delete(m.soft.renewed, ino)
			delete(m.soft.lease, ino)
		}
	}
	m.soft.mu.Unlock()
	now := m.cfg.Clock.Now()
	s := &server{m: m}
	for _, o := range ovs {
		ago := now.Sub(m.lastRenewal(o.ino, o.attached))
		if ago <= time.Duration(o.lease) {
			continue
		}
		err := m.detachOverlay(ctx, s.propose, o.of, o.name, "detached: no renewal for "+ago.Round(time.Millisecond).String())
		if err != nil && ctx.Err() == nil {
			m.log.Warn("master: detach lapsed overlay", "volume", o.of, "overlay", o.name, "err", err)
		}
	}
}

// ownBytes asks the members of the chunks in members (handle -> chain)
// for each chunk's own bytes (ReplicaSpace: what deleting it would free
// there), one call per server, and returns the most any member holds of
// each chunk that one answered for.
func (m *Master) ownBytes(ctx context.Context, members map[uint64][]*api.ServerRef) map[uint64]int64 {
	byAddr := map[string][]uint64{}
	for h, chain := range members {
		for _, ref := range chain {
			byAddr[ref.Addr] = append(byAddr[ref.Addr], h)
		}
	}
	out := map[uint64]int64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for addr, hs := range byAddr {
		wg.Go(func() {
			cs, err := m.pool.chunkserver(addr)
			if err != nil {
				return
			}
			cctx, cancel := context.WithTimeout(ctx, pushTimeout)
			defer cancel()
			for batch := range slices.Chunk(hs, 1<<16) {
				resp, err := cs.ReplicaSpace(cctx, &api.ReplicaSpaceRequest{Handles: batch})
				if err != nil {
					m.log.Debug("master: replica space", "server", addr, "err", err)
					return
				}
				mu.Lock()
				for _, r := range resp.GetReplicas() {
					out[r.GetHandle()] = max(out[r.GetHandle()], r.GetOwnBytes())
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}
