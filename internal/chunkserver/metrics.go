package chunkserver

import "sync/atomic"

// Metrics counts what a server did since it started.
type Metrics struct {
	// CreateReplicaCalls: CreateReplica RPCs served (the master's explicit
	// creations; a new chunk's first write needs none).
	CreateReplicaCalls uint64
	// CreatedByWrite: replicas created at the head by a client write
	// (WriteRequest.create).
	CreatedByWrite uint64
	// CreatedByUpdate: replicas created at a successor by the first chain
	// update it received (ChainMessage.create).
	CreatedByUpdate uint64
}

// metrics holds the counters behind Metrics.
type metrics struct {
	createReplicaCalls atomic.Uint64
	createdByWrite     atomic.Uint64
	createdByUpdate    atomic.Uint64
}

// Metrics returns a snapshot of the server's counters.
func (s *Server) Metrics() Metrics {
	return Metrics{
		CreateReplicaCalls: s.metrics.createReplicaCalls.Load(),
		CreatedByWrite:     s.metrics.createdByWrite.Load(),
		CreatedByUpdate:    s.metrics.createdByUpdate.Load(),
	}
}
