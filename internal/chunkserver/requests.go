package chunkserver

import (
	"github.com/catena-io/catena/internal/chain"
	"github.com/catena-io/catena/internal/chunkstore"
)

// Request ids. A chain node remembers the request ids of the updates it
// applied (the last 4,096), so that as the head it answers a client's
// retry of a write its chain applied instead of applying it again over a
// later write. The node's memory is volatile; the replica's is not: every
// id goes to the store with the applied seq that accounts for its update
// (chunkstore.Replica.SetAppliedAt, durable with the same Sync), a copy
// or catch-up installs its source's ids with the seq it installs, and a
// clone takes its source's. A node rebuilt from the replica (a reloaded
// replica at its first use, or one made cold and used again) starts
// remembering the store's ids (chain.Start.Requests), so a reloaded
// replica that becomes its chain's sole member, or a rebuilt node that
// becomes the head, deduplicates retries as its predecessor did.

// storeRequests converts the node's request ids for the store.
func storeRequests(rs []chain.Remembered) []chunkstore.Request {
	if len(rs) == 0 {
		return nil
	}
	out := make([]chunkstore.Request, len(rs))
	for i, r := range rs {
		out[i] = chunkstore.Request{Client: r.Req.Client, ID: r.Req.Seq, Seq: r.Seq, Offset: r.Offset}
	}
	return out
}

// nodeRequests converts the store's request ids for a node.
func nodeRequests(qs []chunkstore.Request) []chain.Remembered {
	if len(qs) == 0 {
		return nil
	}
	out := make([]chain.Remembered, len(qs))
	for i, q := range qs {
		out[i] = chain.Remembered{Req: chain.RequestID{Client: q.Client, Seq: q.ID}, Seq: q.Seq, Offset: q.Offset}
	}
	return out
}

// installedRequests returns the ids of a copy's or catch-up's source that
// the replica takes with the copy installed at seq: those at or below
// seq, and for a catch-up (not replace) only those the node does not
// know (it keeps its own: the catch-up extends its history). r.mu held.
func (r *replica) installedRequests(src []chain.Remembered, seq uint64, replace bool) []chunkstore.Request {
	var out []chain.Remembered
	for _, q := range src {
		if q.Seq > 0 && q.Seq <= seq && (replace || !r.node.Known(q.Req)) {
			out = append(out, q)
		}
	}
	return storeRequests(out)
}
