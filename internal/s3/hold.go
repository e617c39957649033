package s3

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/catena-io/catena/client"
)

// A GET of more than one read holds its file open in the master, as a
// FUSE mount holds an open file (client.Hold): when the key is
// overwritten or deleted meanwhile, the old file lives on, nameless,
// until the GET lets go, so the GET finishes with the version it began
// with, as on S3. The holds belong to one mount session of the gateway,
// opened on first use and renewed by Run; a gateway that dies lets go of
// everything when its session expires (holdTTL).

// holdTTL is the life of the gateway's session without renewal.
const holdTTL = time.Minute

// holder is the gateway's mount session.
type holder struct {
	mu      sync.Mutex
	session uint64 // 0 until opened
}

// newSessionID is a random non-zero session id.
func newSessionID() uint64 {
	for {
		b := make([]byte, 8)
		randomBytes(b)
		if id := binary.LittleEndian.Uint64(b); id != 0 {
			return id
		}
	}
}

// sessionID opens the session when needed and returns it.
func (s *Server) sessionID(ctx context.Context) (uint64, error) {
	s.holds.mu.Lock()
	defer s.holds.mu.Unlock()
	if s.holds.session != 0 {
		return s.holds.session, nil
	}
	id := newSessionID()
	if err := s.c.RenewMount(ctx, id, holdTTL); err != nil {
		return 0, err
	}
	s.holds.session = id
	return id, nil
}

// renewSession renews the session, if open; a session the master
// forgot (expired while the master was unreachable) is opened anew.
func (s *Server) renewSession(ctx context.Context) {
	s.holds.mu.Lock()
	id := s.holds.session
	s.holds.mu.Unlock()
	if id == 0 {
		return
	}
	if err := s.c.RenewMount(ctx, id, holdTTL); err != nil {
		s.log.Warn("s3: renewing the gateway's mount session", "err", err)
	}
}

// endSession lets go of every hold.
func (s *Server) endSession(ctx context.Context) {
	s.holds.mu.Lock()
	id := s.holds.session
	s.holds.session = 0
	s.holds.mu.Unlock()
	if id != 0 {
		if err := s.c.EndMount(ctx, id); err != nil {
			s.log.Warn("s3: ending the gateway's mount session", "err", err)
		}
	}
}

// hold holds file ino open for the request on ctx; release lets go.
func (s *Server) hold(ctx context.Context, ino uint64) (release func(), err error) {
	id, err := s.sessionID(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.c.Hold(ctx, id, ino); err != nil {
		return nil, err
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := s.c.Unhold(uctx, id, ino); err != nil && !errors.Is(err, client.ErrNotFound) {
			s.log.Warn("s3: letting go of a file", "ino", ino, "err", err)
		}
	}, nil
}

// lookupHeld looks key k of bucket b up and holds its file when a GET
// of it takes more than one read; it retries when the key is replaced
// between the two.
func (s *Server) lookupHeld(ctx context.Context, b, k string, head bool) (*object, func(), error) {
	for attempt := 0; ; attempt++ {
		o, err := s.lookupObject(ctx, b, k)
		if err != nil || head || o.size <= copyBuf {
			return o, func() {}, err
		}
		release, err := s.hold(ctx, o.ino)
		if err == nil {
			return o, release, nil
		}
		if !errors.Is(err, client.ErrNotFound) || attempt == 2 {
			// Serve it unheld: an overwrite during the GET cuts it short.
			s.log.Debug("s3: serving a GET without holding its file", "key", k, "err", err)
			return o, func() {}, nil
		}
	}
}
