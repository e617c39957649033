package chunkstore

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Request ids. A chain's head deduplicates a client's retry by the
// request id its first attempt carried: a retry of a write the chain
// applied is answered, not applied a second time (over a later write).
// The ids a replica's updates carried are kept with the replica, durably
// and in the same step as the updates they name, so that a node rebuilt
// from the replica (after a restart, or after the chunkserver dropped an
// idle node) or a clone of it remembers them as its node did.
//
// Each replica keeps the newest MaxRequests ids; the whole store keeps
// at most Config.RequestMemory, the oldest of the store (in the order
// they were recorded) forgotten first. They reach the log in the
// replica's markers: a meta record carries the ids recorded since the
// replica's previous marker (or the whole table, when it was replaced),
// and the checkpoint every replica's table; recovery rebuilds the tables
// from both. SetAppliedAt records ids together with the applied seq
// that accounts for their updates, so a marker never carries an id
// without the seq that covers it (a crash can lose both, never one).

// Request is a client request id one of a replica's updates carried,
// with the sequence number the update got in its chain and the offset
// it was applied at (a record append's answer).
type Request struct {
	Client, ID uint64 // the client's request id (never both 0)
	Seq        uint64
	Offset     int64
}

const (
	// MaxRequests is how many request ids a replica keeps: the newest.
	MaxRequests = 4096
	// DefaultRequestMemory is Config.RequestMemory's default: request
	// ids kept by the whole store (about 56 bytes each in memory).
	DefaultRequestMemory = 1 << 20
	// reqSize is an id's encoded size: client, id, seq, offset.
	reqSize = 32
	// reqSectionMax is the largest request section of a meta record:
	// flags u8, count u32, then the ids.
	reqSectionMax = 5 + MaxRequests*reqSize
	// reqReset: the section's ids replace the replica's table.
	reqReset = 1
)

// reqEnt is a remembered id and its stamp: the store-wide order in
// which ids were recorded (increasing along a replica's table).
type reqEnt struct {
	Request
	stamp uint64
}

// reqTable is a replica's request ids, oldest first, and what of them
// its last marker did not carry. Guarded by the store's appendMu (the
// store-wide bound evicts ids of any replica).
type reqTable struct {
	ents  []reqEnt // ents[start:] are the ids, oldest first
	start int
	// fresh: the newest fresh ids are not in a marker yet; reset: the
	// table was replaced since the last marker, whose successor must
	// carry it whole.
	fresh int
	reset bool
}

func (t *reqTable) len() int { return len(t.ents) - t.start }

// dropOldest forgets the oldest id.
func (t *reqTable) dropOldest() {
	t.ents[t.start] = reqEnt{}
	t.start++
	t.fresh = min(t.fresh, t.len())
	if t.start >= 64 && t.start*2 >= len(t.ents) {
		t.ents = append(t.ents[:0], t.ents[t.start:]...)
		t.start = 0
	}
}

// reqRef names an id of the store-wide order: replica r's id of that
// stamp, unless r forgot it meanwhile.
type reqRef struct {
	r     *Replica
	stamp uint64
}

// rememberLocked appends reqs to r's table, as fresh ids unless replay
// (recovery, which rebuilds what markers already hold), and enforces
// the bounds. The caller holds e.appendMu (or is recovery).
func (e *Store) rememberLocked(r *Replica, reqs []Request, replay bool) {
	if len(reqs) == 0 {
		return
	}
	if r.reqs == nil {
		r.reqs = &reqTable{}
	}
	t := r.reqs
	for _, q := range reqs {
		if q.Client == 0 && q.ID == 0 {
			continue
		}
		e.reqStamp++
		t.ents = append(t.ents, reqEnt{Request: q, stamp: e.reqStamp})
		e.reqFIFO = append(e.reqFIFO, reqRef{r: r, stamp: e.reqStamp})
		e.reqLive++
		if !replay {
			t.fresh++
		}
		if t.len() > MaxRequests {
			t.dropOldest()
			e.reqLive--
		}
	}
	e.boundRequestsLocked()
}

// clearRequestsLocked forgets r's ids (the caller holds e.appendMu).
func (e *Store) clearRequestsLocked(r *Replica) {
	if r.reqs == nil {
		return
	}
	e.reqLive -= r.reqs.len()
	r.reqs = nil
}

// replaceRequestsLocked makes reqs r's whole table, carried whole by its
// next marker unless replay (the caller holds e.appendMu).
func (e *Store) replaceRequestsLocked(r *Replica, reqs []Request, replay bool) {
	e.clearRequestsLocked(r)
	if len(reqs) > MaxRequests {
		reqs = reqs[len(reqs)-MaxRequests:]
	}
	e.rememberLocked(r, reqs, replay)
	if !replay {
		if r.reqs == nil {
			r.reqs = &reqTable{}
		}
		r.reqs.reset = true
	}
}

// boundRequestsLocked forgets the store's oldest ids beyond its bound,
// and compacts the store-wide order when forgotten ids crowd it.
func (e *Store) boundRequestsLocked() {
	for e.reqLive > e.reqLimit && e.reqHead < len(e.reqFIFO) {
		ref := e.reqFIFO[e.reqHead]
		e.reqFIFO[e.reqHead] = reqRef{}
		e.reqHead++
		if t := ref.r.reqs; t != nil && t.len() > 0 && t.ents[t.start].stamp == ref.stamp {
			t.dropOldest()
			e.reqLive--
			if t.len() == 0 && !t.reset {
				ref.r.reqs = nil
			}
		}
	}
	if n := len(e.reqFIFO) - e.reqHead; n > 2*e.reqLive+4096 {
		// Most refs name ids forgotten by their replica's own bound, a
		// replacement or a delete: keep those still held.
		live := e.reqFIFO[:0]
		for _, ref := range e.reqFIFO[e.reqHead:] {
			if ref.r.reqs.holds(ref.stamp) {
				live = append(live, ref)
			}
		}
		clear(e.reqFIFO[len(live):])
		e.reqFIFO, e.reqHead = live, 0
	} else if e.reqHead >= 4096 && e.reqHead*2 >= len(e.reqFIFO) {
		n := copy(e.reqFIFO, e.reqFIFO[e.reqHead:])
		clear(e.reqFIFO[n:])
		e.reqFIFO, e.reqHead = e.reqFIFO[:n], 0
	}
}

// holds reports whether the table holds the id of stamp.
func (t *reqTable) holds(stamp uint64) bool {
	if t == nil {
		return false
	}
	_, ok := slices.BinarySearchFunc(t.ents[t.start:], stamp, func(x reqEnt, s uint64) int {
		switch {
		case x.stamp < s:
			return -1
		case x.stamp > s:
			return 1
		}
		return 0
	})
	return ok
}

// overlap returns reqs without its first ids when they are the table's
// newest, in order: a marker written after a checkpoint may carry ids
// the checkpoint holds already (they were not in a marker when it was
// taken), and replay adds them once.
func (t *reqTable) overlap(reqs []Request) []Request {
	if t == nil || len(reqs) == 0 {
		return reqs
	}
	have := t.ents[t.start:]
	for k := min(len(have), len(reqs)); k > 0; k-- {
		if have[len(have)-k].Request != reqs[0] {
			continue
		}
		same := true
		for i := range k {
			if have[len(have)-k+i].Request != reqs[i] {
				same = false
				break
			}
		}
		if same {
			return reqs[k:]
		}
	}
	return reqs
}

// requestsLocked returns r's ids, oldest first (the caller holds
// e.appendMu).
func (r *Replica) requestsLocked() []Request {
	t := r.reqs
	if t == nil || t.len() == 0 {
		return nil
	}
	out := make([]Request, t.len())
	for i, x := range t.ents[t.start:] {
		out[i] = x.Request
	}
	return out
}

// Requests returns the request ids the replica keeps, oldest first:
// those recorded with SetAppliedAt (and ReplaceRequestsAt), or loaded
// with the replica, the newest MaxRequests at most.
func (r *Replica) Requests() []Request {
	r.e.appendMu.Lock()
	defer r.e.appendMu.Unlock()
	return r.requestsLocked()
}

// ReplaceRequestsAt records the applied (epoch, seq), as SetAppliedAt,
// and makes reqs the replica's whole request-id table, in one step
// (durable at the next Sync): the replica's content was replaced by a
// copy of another replica's, whose ids these are.
func (r *Replica) ReplaceRequestsAt(epoch, seq uint64, reqs []Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	e := r.e
	e.appendMu.Lock()
	defer e.appendMu.Unlock()
	e.replaceRequestsLocked(r, reqs, false)
	r.meta.AppliedSeq, r.meta.AppliedEpoch = seq, epoch
	r.coverLocked(r.lastLSN)
	r.noteLocked()
}

// markerRequestsLocked encodes, after a meta record's Meta, the ids its
// marker must carry (nil: none), and counts them as carried. The caller
// holds e.appendMu and appends the marker.
func (r *Replica) markerRequestsLocked(b []byte) []byte {
	t := r.reqs
	if t == nil || (t.fresh == 0 && !t.reset) {
		return b
	}
	n, flags := t.fresh, byte(0)
	if t.reset {
		n, flags = t.len(), reqReset
	}
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	for _, x := range t.ents[len(t.ents)-n:] {
		b = appendRequest(b, x.Request)
	}
	t.fresh, t.reset = 0, false
	if t.len() == 0 {
		r.reqs = nil
	}
	return b
}

func appendRequest(b []byte, q Request) []byte {
	le := binary.LittleEndian
	b = le.AppendUint64(b, q.Client)
	b = le.AppendUint64(b, q.ID)
	b = le.AppendUint64(b, q.Seq)
	return le.AppendUint64(b, uint64(q.Offset))
}

func decodeRequest(b []byte) Request {
	le := binary.LittleEndian
	return Request{Client: le.Uint64(b[0:]), ID: le.Uint64(b[8:]), Seq: le.Uint64(b[16:]), Offset: int64(le.Uint64(b[24:]))}
}

// decodeRequestSection decodes a meta record's request section (b empty:
// none).
func decodeRequestSection(b []byte) (reqs []Request, reset bool, err error) {
	if len(b) == 0 {
		return nil, false, nil
	}
	if len(b) < 5 || b[0]&^reqReset != 0 {
		return nil, false, fmt.Errorf("%w: request section of %d bytes, flags %#x", errBadRecord, len(b), b[0])
	}
	n := int(binary.LittleEndian.Uint32(b[1:]))
	if n > MaxRequests || len(b) != 5+n*reqSize {
		return nil, false, fmt.Errorf("%w: request section of %d bytes for %d ids", errBadRecord, len(b), n)
	}
	reqs = make([]Request, n)
	for i := range reqs {
		reqs[i] = decodeRequest(b[5+i*reqSize:])
	}
	return reqs, b[0] == reqReset, nil
}
