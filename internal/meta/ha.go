package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Request-id deduplication and the master address book, the replicated
// state a highly available master needs.
//
// A mutating call from a client carries (client id, request id); the
// handler wraps its command in a Request. The state keeps, per client, the
// results of its last MaxSessionResults requests, so a retry after a
// failover (the first attempt may have been committed by the old leader)
// returns the recorded result instead of applying the command twice. A
// client whose last request is older than SessionIdle (by command times,
// so every replica drops it at the same entry) is forgotten.

// Bounds of the request sessions.
const (
	// MaxSessionResults is how many recent results a client keeps.
	MaxSessionResults = 1024
	// SessionIdle is how long (in command time, nanoseconds) a client may
	// stay silent before its session is dropped: 1 hour.
	SessionIdle int64 = 3600 * 1e9
)

// ErrRequestExpired: a retried request is older than the results kept for
// its client, so whether it was applied is unknown.
var ErrRequestExpired = errors.New("meta: request expired")

// Request applies Cmd at most once per (Client, Seq).
type Request struct {
	Client uint64
	Seq    uint64
	Time   int64 // leader's clock when proposed, for session expiry
	Cmd    Command
}

// SetMaster records master ID's gRPC address (Addr "" forgets it).
type SetMaster struct {
	ID   string
	Addr string
}

// AddCapabilityKey adds a key the master signs chunk capabilities with
// (internal/auth): ID above every kept key's, Secret CapabilityKeySize
// random bytes chosen by the leader, Time the leader's clock. The newest
// MaxCapabilityKeys are kept, so capabilities signed with the one before
// stay valid through a rotation.
type AddCapabilityKey struct {
	ID     uint64
	Secret []byte
	Time   int64
}

// CapabilityKey is a kept capability key.
type CapabilityKey struct {
	ID     uint64
	Secret []byte
	Time   int64 // when it was added, by the leader's clock
}

// Capability key bounds.
const (
	CapabilityKeySize = 32
	MaxCapabilityKeys = 2
)

func (Request) commandType() string          { return "request" }
func (SetMaster) commandType() string        { return "setmaster" }
func (AddCapabilityKey) commandType() string { return "addcapkey" }

// MarshalJSON nests the inner command's envelope.
func (r Request) MarshalJSON() ([]byte, error) {
	inner, err := Encode(r.Cmd)
	if err != nil {
		return nil, err
	}
	return json.Marshal(requestWire{Client: r.Client, Seq: r.Seq, Time: r.Time, Cmd: inner})
}

type requestWire struct {
	Client uint64
	Seq    uint64
	Time   int64
	Cmd    json.RawMessage
}

func decodeHA(typ string, raw json.RawMessage) (Command, bool, error) {
	switch typ {
	case "setmaster":
		c, err := decodeAs[SetMaster](raw)
		return c, true, err
	case "addcapkey":
		c, err := decodeAs[AddCapabilityKey](raw)
		return c, true, err
	case "request":
		w, err := decodeWire(raw)
		if err != nil {
			return nil, true, err
		}
		inner, err := Decode(w.Cmd)
		if err != nil {
			return nil, true, err
		}
		if _, nested := inner.(Request); nested {
			return nil, true, fmt.Errorf("nested request")
		}
		return Request{Client: w.Client, Seq: w.Seq, Time: w.Time, Cmd: inner}, true, nil
	}
	return nil, false, nil
}

func decodeWire(raw json.RawMessage) (requestWire, error) {
	var w requestWire
	err := json.Unmarshal(raw, &w)
	return w, err
}

// haState is the replicated HA part of State.
type haState struct {
	masters  map[string]string // master id -> gRPC address
	sessions map[uint64]*session
	capKeys  []CapabilityKey // ascending ID, at most MaxCapabilityKeys
}

// session is one client's recent results, Seq ascending.
type session struct {
	last    int64    // Time of its latest request
	floor   uint64   // highest Seq evicted; older retries are expired
	results []record // ascending Seq
}

// record is a recorded Result in a form that survives checkpoints.
type record struct {
	Seq       uint64
	Err       string `json:",omitempty"` // error text
	ErrKind   int    `json:",omitempty"` // 1 + index in recordedSentinels; 0 none
	Detail    string `json:",omitempty"` // the error's detail (Error.Detail)
	Info      FileInfo
	Chunk     ChunkRef
	Allocated bool `json:",omitempty"`
}

// recordedSentinels are the errors a recorded result can wrap; the order is
// part of the checkpoint encoding (append only).
var recordedSentinels = [...]error{ErrNotFound, ErrExists, ErrNotDir, ErrIsDir,
	ErrNotEmpty, ErrInvalid, ErrEpochMismatch, ErrCorrupt, ErrRequestExpired, ErrNameTooLong,
	ErrPermission, ErrReadOnly}

// kindOrder is the order toRecord tries recordedSentinels in: the most
// specific first (ErrNameTooLong wraps ErrInvalid).
var kindOrder = [...]int{9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11}

// recordedErr is a recorded error of no known kind.
type recordedErr struct{ msg string }

func (e *recordedErr) Error() string { return e.msg }

func toRecord(seq uint64, r Result) record {
	rec := record{Seq: seq, Info: r.Info, Chunk: r.Chunk, Allocated: r.Allocated}
	if r.Err != nil {
		rec.Err = r.Err.Error()
		if me := (*Error)(nil); errors.As(r.Err, &me) {
			rec.Detail = me.Detail
		}
		for _, i := range kindOrder {
			if errors.Is(r.Err, recordedSentinels[i]) {
				rec.ErrKind = i + 1
				break
			}
		}
	}
	return rec
}

func (rec record) result() Result {
	r := Result{Info: rec.Info, Chunk: rec.Chunk, Allocated: rec.Allocated}
	if rec.Err != "" {
		if rec.ErrKind > 0 && rec.ErrKind <= len(recordedSentinels) {
			detail := rec.Detail
			if detail == "" {
				detail = rec.Err // recorded before details were kept apart
			}
			r.Err = &Error{Kind: recordedSentinels[rec.ErrKind-1], Detail: detail}
		} else {
			r.Err = &recordedErr{msg: rec.Err}
		}
	}
	return r
}

// applyHA applies the commands of this file; ok is false for others.
func (s *State) applyHA(c Command) (Result, bool) {
	switch c := c.(type) {
	case SetMaster:
		if c.ID == "" {
			return fail(errorf(ErrInvalid, "empty master id")), true
		}
		if s.ha.masters == nil {
			s.ha.masters = map[string]string{}
		}
		if c.Addr == "" {
			delete(s.ha.masters, c.ID)
		} else {
			s.ha.masters[c.ID] = c.Addr
		}
		return Result{}, true
	case Request:
		return s.applyRequest(c), true
	case AddCapabilityKey:
		if len(c.Secret) != CapabilityKeySize {
			return fail(errorf(ErrInvalid, "capability key of %d bytes, want %d", len(c.Secret), CapabilityKeySize)), true
		}
		if n := len(s.ha.capKeys); n > 0 && c.ID <= s.ha.capKeys[n-1].ID {
			return fail(errorf(ErrExists, "capability key %d: not above key %d", c.ID, s.ha.capKeys[n-1].ID)), true
		}
		s.ha.capKeys = append(s.ha.capKeys, CapabilityKey{ID: c.ID, Secret: slices.Clone(c.Secret), Time: c.Time})
		if n := len(s.ha.capKeys) - MaxCapabilityKeys; n > 0 {
			s.ha.capKeys = slices.Delete(s.ha.capKeys, 0, n)
		}
		return Result{}, true
	}
	return Result{}, false
}

// SigningKey is the key to sign capabilities with at now: the newest
// one added at least warmup before (the chunkservers learn a new key from
// their heartbeats meanwhile), else the newest; ok is false when there is
// none. Its Secret is the state's: the caller must not keep or change it
// past its read lock.
func (s *State) SigningKey(now, warmup int64) (k CapabilityKey, ok bool) {
	keys := s.ha.capKeys
	for i := len(keys) - 1; i >= 0; i-- {
		if i == 0 || now-keys[i].Time >= warmup {
			return keys[i], true
		}
	}
	return CapabilityKey{}, false
}

// CapabilityKeys returns the kept capability keys, oldest first (a copy).
func (s *State) CapabilityKeys() []CapabilityKey {
	out := slices.Clone(s.ha.capKeys)
	for i := range out {
		out[i].Secret = slices.Clone(out[i].Secret)
	}
	return out
}

func (s *State) applyRequest(c Request) Result {
	if c.Cmd == nil {
		return fail(errorf(ErrInvalid, "empty request"))
	}
	if _, nested := c.Cmd.(Request); nested {
		return fail(errorf(ErrInvalid, "nested request"))
	}
	if c.Client == 0 {
		return s.apply(c.Cmd) // no id: no deduplication
	}
	s.expireSessions(c.Time)
	if s.ha.sessions == nil {
		s.ha.sessions = map[uint64]*session{}
	}
	ss := s.ha.sessions[c.Client]
	if ss == nil {
		ss = &session{}
		s.ha.sessions[c.Client] = ss
	}
	ss.last = max(ss.last, c.Time)
	if c.Seq <= ss.floor {
		return fail(errorf(ErrRequestExpired, "client %x request %d", c.Client, c.Seq))
	}
	i, found := slices.BinarySearchFunc(ss.results, c.Seq, func(r record, seq uint64) int {
		switch {
		case r.Seq < seq:
			return -1
		case r.Seq > seq:
			return 1
		}
		return 0
	})
	if found {
		return ss.results[i].result()
	}
	r := s.apply(c.Cmd)
	ss.results = slices.Insert(ss.results, i, toRecord(c.Seq, r))
	if n := len(ss.results) - MaxSessionResults; n > 0 {
		ss.floor = ss.results[n-1].Seq
		ss.results = slices.Delete(ss.results, 0, n)
	}
	return r
}

// expireSessions drops clients idle for SessionIdle before now.
func (s *State) expireSessions(now int64) {
	for id, ss := range s.ha.sessions {
		if now-ss.last > SessionIdle {
			delete(s.ha.sessions, id)
		}
	}
}

// Masters returns the recorded master id -> gRPC address map (a copy).
func (s *State) Masters() map[string]string { return maps.Clone(s.ha.masters) }

// MasterAddr returns master id's recorded gRPC address, "" when unknown.
func (s *State) MasterAddr(id string) string { return s.ha.masters[id] }

// Sessions returns the number of client sessions kept.
func (s *State) Sessions() int { return len(s.ha.sessions) }

// ckptHA is the HA part of a checkpoint; absent in older checkpoints.
type ckptHA struct {
	Masters  map[string]string `json:",omitempty"`
	Sessions []ckptSession     `json:",omitempty"`
	CapKeys  []CapabilityKey   `json:",omitempty"`
}

type ckptSession struct {
	Client  uint64
	Last    int64
	Floor   uint64 `json:",omitempty"`
	Results []record
}

func (s *State) ckptHA() ckptHA {
	var out ckptHA
	if len(s.ha.masters) > 0 {
		out.Masters = s.ha.masters
	}
	out.CapKeys = s.ha.capKeys
	for _, id := range slices.Sorted(maps.Keys(s.ha.sessions)) {
		ss := s.ha.sessions[id]
		out.Sessions = append(out.Sessions, ckptSession{Client: id, Last: ss.last, Floor: ss.floor, Results: ss.results})
	}
	return out
}

// restoreHA rebuilds the HA part of a checkpoint; Check judges it
// (checkRequests).
func restoreHA(sn ckptHA) (haState, error) {
	h := haState{masters: maps.Clone(sn.Masters), capKeys: slices.Clone(sn.CapKeys)}
	for _, ss := range sn.Sessions {
		if h.sessions[ss.Client] != nil {
			return h, fmt.Errorf("client session %x twice", ss.Client)
		}
		if h.sessions == nil {
			h.sessions = map[uint64]*session{}
		}
		h.sessions[ss.Client] = &session{last: ss.Last, floor: ss.Floor, results: slices.Clone(ss.Results)}
	}
	return h, nil
}
