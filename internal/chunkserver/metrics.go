package chunkserver

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catena-io/catena/api"
	cmetrics "github.com/catena-io/catena/internal/metrics"
)

// Metrics counts what a server did since it started.
type Metrics struct {
	// CreateReplicaCalls: CreateReplica RPCs served (the master's explicit
	// creations; a new chunk's first write needs none).
	CreateReplicaCalls uint64
	// Clones: replicas made by CloneReplica (a shared chunk forked).
	Clones uint64
	// CreatedByWrite: replicas created at the head by a client write
	// (WriteRequest.create).
	CreatedByWrite uint64
	// CreatedByUpdate: replicas created at a successor by the first chain
	// update it received (ChainMessage.create).
	CreatedByUpdate uint64
	// EarlyStepped: chain messages of an epoch a replica had not yet
	// installed, held and stepped once it did (holdEarlyLocked).
	EarlyStepped uint64
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
	clones             atomic.Uint64
	createdByWrite     atomic.Uint64
	createdByUpdate    atomic.Uint64
	earlyStepped       atomic.Uint64
	activated          atomic.Uint64
	madeCold           atomic.Uint64
	reportPages        atomic.Uint64
	writesRefusedBusy  atomic.Uint64
	// writeMemUsed: bytes of client writes holding write memory now.
	writeMemUsed atomic.Int64
	// Client I/O served (the heartbeat's IOCounters): counts, bytes and
	// nanoseconds.
	writes, writeBytes, writeNanos atomic.Uint64
	reads, readBytes, readNanos    atomic.Uint64

	prom *promMetrics
}

// promMetrics are the server's Prometheus instruments.
type promMetrics struct {
	rpc                   *cmetrics.GRPC
	writeBytes, readBytes prometheus.Counter
	writeDur, readDur     prometheus.Histogram
	fsync                 prometheus.Histogram
}

// register creates the server's Prometheus instruments in reg (nil:
// nowhere) and the gauges that read its state at each scrape.
func (s *Server) registerMetrics(reg prometheus.Registerer) {
	reg = cmetrics.Or(reg)
	hist := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: cmetrics.LatencyBuckets})
	}
	p := &promMetrics{
		rpc: cmetrics.NewGRPC(reg, s.log),
		writeBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "catena_chunkserver_write_bytes_total",
			Help: "Bytes of client writes this server applied as a chain's head."}),
		readBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "catena_chunkserver_read_bytes_total",
			Help: "Bytes of client reads this server served."}),
		writeDur: hist("catena_chunkserver_write_duration_seconds", "Time from a client write's arrival at the head to its acknowledgement by the whole chain."),
		readDur:  hist("catena_chunkserver_read_duration_seconds", "Time to serve a client read."),
		fsync:    hist("catena_chunkserver_fsync_duration_seconds", "Time of each fdatasync of the chunk store's log (one covers every write before it)."),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	cmetrics.Register(reg, p.writeBytes, p.readBytes, p.writeDur, p.readDur, p.fsync,
		gauge("catena_chunkserver_chain_memory_bytes", "Bytes of chain updates held for successors or out of order.",
			func() float64 { return float64(s.chainMem.used.Load()) }),
		gauge("catena_chunkserver_chain_memory_limit_bytes", "The chain memory's bound (--chain-memory).",
			func() float64 { return float64(s.chainMem.limit.Load()) }),
		gauge("catena_chunkserver_write_memory_bytes", "Bytes of client writes in flight at this server as a head.",
			func() float64 { return float64(s.metrics.writeMemUsed.Load()) }),
		gauge("catena_chunkserver_write_memory_limit_bytes", "The write memory's bound (the in-flight budget of client writes).",
			func() float64 { return float64(s.cfg.WriteMemory) }),
		gauge("catena_chunkserver_replicas_active", "Replicas active (not cold) now.", func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			return float64(len(s.replicas))
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "catena_chunkserver_writes_refused_busy_total",
			Help: "Client writes refused because the write memory stayed full."},
			func() float64 { return float64(s.metrics.writesRefusedBusy.Load()) }),
	)
	s.metrics.prom = p
}

// wrote counts a client write served as the head.
func (s *Server) wrote(n int, d time.Duration) {
	s.metrics.writes.Add(1)
	s.metrics.writeBytes.Add(uint64(n))
	s.metrics.writeNanos.Add(uint64(d))
	s.metrics.prom.writeBytes.Add(float64(n))
	s.metrics.prom.writeDur.Observe(d.Seconds())
}

// read counts a client read served.
func (s *Server) read(n int, d time.Duration) {
	s.metrics.reads.Add(1)
	s.metrics.readBytes.Add(uint64(n))
	s.metrics.readNanos.Add(uint64(d))
	s.metrics.prom.readBytes.Add(float64(n))
	s.metrics.prom.readDur.Observe(d.Seconds())
}

// ioCounters is the heartbeat's report of client I/O.
func (s *Server) ioCounters() *api.IOCounters {
	sec := func(ns uint64) float64 { return math.Round(float64(ns)/1e3) / 1e6 }
	return &api.IOCounters{
		Writes: s.metrics.writes.Load(), WriteBytes: s.metrics.writeBytes.Load(), WriteSeconds: sec(s.metrics.writeNanos.Load()),
		Reads: s.metrics.reads.Load(), ReadBytes: s.metrics.readBytes.Load(), ReadSeconds: sec(s.metrics.readNanos.Load()),
	}
}

// Metrics returns a snapshot of the server's counters.
func (s *Server) Metrics() Metrics {
	s.mu.Lock()
	active := len(s.replicas)
	s.mu.Unlock()
	return Metrics{
		CreateReplicaCalls: s.metrics.createReplicaCalls.Load(),
		Clones:             s.metrics.clones.Load(),
		CreatedByWrite:     s.metrics.createdByWrite.Load(),
		CreatedByUpdate:    s.metrics.createdByUpdate.Load(),
		EarlyStepped:       s.metrics.earlyStepped.Load(),
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
