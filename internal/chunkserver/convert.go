package chunkserver

import (
	"fmt"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chain"
	"github.com/catena-io/catena/internal/chunkstore"
)

// Wire types stay here: api <-> chain translation at the edge.

func kindToAPI(k chain.Kind) api.UpdateKind {
	switch k {
	case chain.KindWrite:
		return api.UpdateKind_WRITE
	case chain.KindZero:
		return api.UpdateKind_ZERO
	}
	return api.UpdateKind_UPDATE_KIND_UNSPECIFIED
}

func kindFromAPI(k api.UpdateKind) (chain.Kind, bool) {
	switch k {
	case api.UpdateKind_WRITE:
		return chain.KindWrite, true
	case api.UpdateKind_ZERO:
		return chain.KindZero, true
	}
	return 0, false
}

// messageToAPI translates a message of replica h for the wire.
func messageToAPI(h chunkstore.Handle, m chain.Message) *api.ChainMessage {
	out := &api.ChainMessage{From: uint64(m.From), ChainEpoch: m.Epoch}
	switch m.Type {
	case chain.MsgUpdate:
		u := m.Update
		out.Msg = &api.ChainMessage_Update{Update: &api.Update{
			Handle:    uint64(h),
			Epoch:     u.Epoch,
			Seq:       u.Seq,
			Kind:      kindToAPI(u.Kind),
			Offset:    u.Offset,
			Data:      u.Data,
			Length:    u.Length,
			ClientId:  u.Req.Client,
			RequestId: u.Req.Seq,
		}}
	case chain.MsgAck:
		out.Msg = &api.ChainMessage_Ack{Ack: &api.Ack{Handle: uint64(h), Epoch: m.Epoch, Seq: m.Seq}}
	}
	return out
}

// messageFromAPI decodes a message received by server self. It checks the
// message's shape, not its range against the chunk (the caller knows the
// chunk size).
func messageFromAPI(self chain.NodeID, in *api.ChainMessage) (chunkstore.Handle, chain.Message, error) {
	m := chain.Message{From: chain.NodeID(in.GetFrom()), To: self, Epoch: in.GetChainEpoch()}
	if m.From == 0 {
		return 0, m, fmt.Errorf("%w: no sender", ErrBadMessage)
	}
	switch {
	case in.GetUpdate() != nil:
		u := in.GetUpdate()
		kind, ok := kindFromAPI(u.GetKind())
		if !ok {
			return 0, m, fmt.Errorf("%w: update kind %v", ErrBadMessage, u.GetKind())
		}
		up := chain.Update{
			Epoch:  u.GetEpoch(),
			Seq:    u.GetSeq(),
			Kind:   kind,
			Offset: u.GetOffset(),
			Length: u.GetLength(),
			Req:    chain.RequestID{Client: u.GetClientId(), Seq: u.GetRequestId()},
		}
		switch kind {
		case chain.KindWrite:
			up.Data = u.GetData()
			up.Length = int64(len(up.Data))
		case chain.KindZero:
			if len(u.GetData()) != 0 {
				return 0, m, fmt.Errorf("%w: zero update carries data", ErrBadMessage)
			}
		}
		if up.Offset < 0 || up.Length < 0 || up.Offset > maxChunkSize || up.Length > maxChunkSize {
			return 0, m, fmt.Errorf("%w: range [%d,+%d)", ErrBadMessage, up.Offset, up.Length)
		}
		if up.Seq == 0 {
			return 0, m, fmt.Errorf("%w: update seq 0", ErrBadMessage)
		}
		m.Type = chain.MsgUpdate
		m.Update = up
		return chunkstore.Handle(u.GetHandle()), m, nil
	case in.GetAck() != nil:
		a := in.GetAck()
		m.Type = chain.MsgAck
		m.Seq = a.GetSeq()
		return chunkstore.Handle(a.GetHandle()), m, nil
	}
	return 0, m, fmt.Errorf("%w: empty", ErrBadMessage)
}
