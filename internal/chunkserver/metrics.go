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
	// Activated: cold replicas made active (cold.go); MadeCold: active
	// replicas made cold. Active: replicas active now.
	Activated, MadeCold uint64
	Active              int
	// ReportPages: pages of full reports the master accepted with more to
	// follow (all but the last of each paged report).
	ReportPages uint64
	// WritesRefusedBusy: client writes refused because the write memory
	// (Config.WriteMemory) stayed full for writeMemoryWait.
	WritesRefusedBusy uint64
	// ChainMemory: bytes of chain updates the replicas hold now
	// (Config.ChainMemory); ChainMemoryPeak: the most they held at once;
	// RelaysDropped: updates from predecessors dropped for want of room
	// (their senders send them again).
	ChainMemory, ChainMemoryPeak int64
	RelaysDropped                uint64
}

// metrics holds the counters behind Metrics.
type metrics struct {
	createReplicaCalls atomic.Uint64
	createdByWrite     atomic.Uint64
	createdByUpdate    atomic.Uint64
	activated          atomic.Uint64
	madeCold           atomic.Uint64
	reportPages        atomic.Uint64
	writesRefusedBusy  atomic.Uint64
}

// Metrics returns a snapshot of the server's counters.
func (s *Server) Metrics() Metrics {
	s.mu.Lock()
	active := len(s.replicas)
	s.mu.Unlock()
	return Metrics{
		CreateReplicaCalls: s.metrics.createReplicaCalls.Load(),
		CreatedByWrite:     s.metrics.createdByWrite.Load(),
		CreatedByUpdate:    s.metrics.createdByUpdate.Load(),
		Activated:          s.metrics.activated.Load(),
		MadeCold:           s.metrics.madeCold.Load(),
		Active:             active,
		ReportPages:        s.metrics.reportPages.Load(),
		WritesRefusedBusy:  s.metrics.writesRefusedBusy.Load(),
		ChainMemory:        s.chainMem.used.Load(),
		ChainMemoryPeak:    s.chainMem.peak.Load(),
		RelaysDropped:      s.chainMem.dropped.Load(),
	}
}
