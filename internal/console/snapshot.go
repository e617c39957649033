package console

import "time"

// Snapshot is the cluster as the leading master sees it at one moment.
// It travels as JSON (the console's /api/snapshot, the Admin RPC a
// following master fetches it with), so it holds plain values only;
// 64-bit ids are JSON strings (JavaScript's numbers hold 53 bits).
type Snapshot struct {
	Time time.Time `json:"time"`
	// Master is the id of the master whose console serves the snapshot
	// (a follower's console shows the leader's snapshot under its own id).
	Master       string        `json:"master"`
	Masters      []Master      `json:"masters"`
	Chunkservers []Chunkserver `json:"chunkservers"`
	Chunks       ChunkStats    `json:"chunks"`
	// Repairs are the re-replications (and block restores) in flight.
	Repairs     []Repair `json:"repairs"`
	Volumes     []Volume `json:"volumes"`
	Files       uint64   `json:"files"`
	Directories uint64   `json:"directories"`
	// Events are the leader's recent events, oldest first.
	Events []Event `json:"events"`
}

// Master is a member of the master group.
type Master struct {
	ID     string `json:"id"`
	Addr   string `json:"addr"`
	Leader bool   `json:"leader"`
}

// Chunkserver is one registered chunkserver.
type Chunkserver struct {
	ID            uint64            `json:"id,string"`
	Name          string            `json:"name"`
	Addr          string            `json:"addr"`
	Alive         bool              `json:"alive"`
	Draining      bool              `json:"draining"`
	CapacityBytes int64             `json:"capacity_bytes"`
	UsedBytes     int64             `json:"used_bytes"`
	FreeBytes     int64             `json:"free_bytes"`
	Replicas      uint64            `json:"replicas"`
	Chains        uint64            `json:"chains"`
	Labels        map[string]string `json:"labels"`
	// Domain is the failure domain (the zone label), "" when unlabelled.
	Domain string `json:"domain"`
	// LastHeartbeat is zero when this leader has not heard from it.
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// IO is the server's client I/O since it started; nil until it
	// reported any.
	IO *IOCounters `json:"io,omitempty"`
}

// IOCounters are a chunkserver's cumulative client I/O counters.
type IOCounters struct {
	Writes       uint64  `json:"writes"`
	WriteBytes   uint64  `json:"write_bytes"`
	WriteSeconds float64 `json:"write_seconds"`
	Reads        uint64  `json:"reads"`
	ReadBytes    uint64  `json:"read_bytes"`
	ReadSeconds  float64 `json:"read_seconds"`
}

// ChunkStats counts chunks by health.
type ChunkStats struct {
	Total           uint64    `json:"total"`
	UnderReplicated uint64    `json:"under_replicated"`
	OverReplicated  uint64    `json:"over_replicated"`
	ReReplicating   uint64    `json:"re_replicating"`
	Lost            uint64    `json:"lost"`
	RepairsDone     uint64    `json:"repairs_done"`
	RepairedBytes   int64     `json:"repaired_bytes"`
	Problems        []Problem `json:"problems"`
}

// Problem is a chunk that needs attention, with why.
type Problem struct {
	Handle     uint64   `json:"handle,string"`
	Reason     string   `json:"reason"`
	LostBlocks int      `json:"lost_blocks"`
	Paths      []string `json:"paths"`
}

// Repair is a copy in flight onto Target.
type Repair struct {
	Handle uint64 `json:"handle,string"`
	Target uint64 `json:"target,string"`
}

// Volume is a block volume; Export is its NBD export name (catena nbd
// serves every volume under its name).
type Volume struct {
	Name        string `json:"name"`
	SizeBytes   int64  `json:"size_bytes"`
	Replication int    `json:"replication"`
	Export      string `json:"export"`
}

// Event is something that happened in the cluster. Count > 1 when
// several of one kind came in a row (the latest message is kept).
type Event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
	Count   int       `json:"count"`
}

// Event kinds.
const (
	EventRegistered   = "registered"
	EventDead         = "dead"
	EventAlive        = "alive"
	EventChain        = "chain"
	EventRepairDone   = "repair-done"
	EventRepairFailed = "repair-failed"
	EventLeader       = "leader"
	EventFollower     = "follower"
	EventDrain        = "drain"
	EventRemoved      = "removed"
)
