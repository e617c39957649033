package chunkserver

import (
	"bytes"

	"github.com/catena-io/catena/api"
)

// Record append (WriteRequest.append): the head is the sequencer. It
// writes each record at its replica's end — past the last non-zero byte,
// which is why a record must end with a non-zero byte — as an ordinary
// chain update carrying the client's request id, and answers the offset.
// Followers apply it as any write; every member remembers the request id
// with the offset (chain.Node), so a retry, also at a new head after a
// failover, is answered with the first offset and never appended twice.
// A record that does not fit before the chunk's end is answered full,
// with nothing written: the client goes on to the next chunk (no padding
// is written; readers skip the zeros left at a chunk's end).

// maxRecordFraction: a record is at most a quarter of the chunk, so at
// most a quarter of a chunk is left empty when records move on.
const maxRecordFraction = 4

// checkAppend validates a record append against a chunk of chunkSize.
func checkAppend(req *api.WriteRequest, chunkSize int64) error {
	data := req.GetData()
	switch {
	case req.GetKind() != api.UpdateKind_WRITE:
		return errInvalid("append of kind %v", req.GetKind())
	case req.GetRequestId() == 0:
		return errInvalid("append without a request id (it could be applied twice)")
	case len(data) == 0 || data[len(data)-1] == 0:
		return errInvalid("an appended record must end with a non-zero byte")
	case int64(len(data)) > chunkSize/maxRecordFraction:
		return errInvalid("record of %d bytes over a quarter of the %d-byte chunk", len(data), chunkSize)
	}
	return nil
}

// appendScan is the window appendEndLocked reads backwards in.
const appendScan = 1 << 20

// appendEndLocked returns where the next record goes: the end of the
// last non-zero byte of the replica. It reads the replica backwards once
// per chain epoch (a new head learns its end), then follows the writes
// it applies.
func (r *replica) appendEndLocked() (int64, error) {
	epoch := r.node.Config().Epoch
	if r.appendEpoch == epoch {
		return r.appendEnd, nil
	}
	buf := make([]byte, min(appendScan, r.chunkSize))
	end := int64(0)
	for hi := r.chunkSize; hi > 0; {
		lo := max(0, hi-int64(len(buf)))
		b := buf[:hi-lo]
		if _, err := r.store.ReadAt(b, lo); err != nil {
			return 0, err
		}
		if i := lastNonZero(b); i >= 0 {
			end = lo + int64(i) + 1
			break
		}
		hi = lo
	}
	r.appendEnd, r.appendEpoch = end, epoch
	return end, nil
}

// lastNonZero is the index of the last non-zero byte of b, or -1.
func lastNonZero(b []byte) int { return len(bytes.TrimRight(b, "\x00")) - 1 }
