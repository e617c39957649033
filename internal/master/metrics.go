package master

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/metrics"
)

// masterMetrics are the master's own metrics besides its RPCs': Raft's
// state on every master, the cluster's (chunks, chunkservers, repairs)
// on the leader, read at each scrape.
type masterMetrics struct {
	rpc           *metrics.GRPC
	leaderChanges prometheus.Counter
}

func newMasterMetrics(m *Master, reg prometheus.Registerer) *masterMetrics {
	reg = metrics.Or(reg)
	mx := &masterMetrics{
		rpc: metrics.NewGRPC(reg, m.log),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "catena_raft_leader_changes_total", Help: "Times this master gained or lost the leadership.",
		}),
	}
	metrics.Register(reg, mx.leaderChanges, &masterCollector{m: m})
	return mx
}

var (
	descTerm      = prometheus.NewDesc("catena_raft_term", "This master's current Raft term.", nil, nil)
	descCommit    = prometheus.NewDesc("catena_raft_commit_index", "The highest Raft log index known committed.", nil, nil)
	descApplied   = prometheus.NewDesc("catena_raft_applied_index", "The highest Raft log index applied to the namespace.", nil, nil)
	descIsLeader  = prometheus.NewDesc("catena_raft_is_leader", "1 while this master leads and serves.", nil, nil)
	descChunks    = prometheus.NewDesc("catena_chunks", "Chunks by state (leader only).", []string{"state"}, nil)
	descRepairs   = prometheus.NewDesc("catena_repairs_done_total", "Re-replications completed since this master began leading.", nil, nil)
	descRepaired  = prometheus.NewDesc("catena_repaired_bytes_total", "Bytes copied by re-replications since this master began leading.", nil, nil)
	descServers   = prometheus.NewDesc("catena_chunkservers", "Registered chunkservers by state (leader only).", []string{"state"}, nil)
	descHBAge     = prometheus.NewDesc("catena_chunkserver_heartbeat_age_seconds", "Time since the chunkserver's last heartbeat (leader only).", []string{"chunkserver"}, nil)
	descUsed      = prometheus.NewDesc("catena_chunkserver_used_bytes", "Bytes the chunkserver's replicas use, as it reports them (leader only).", []string{"chunkserver"}, nil)
	descCapacity  = prometheus.NewDesc("catena_chunkserver_capacity_bytes", "The chunkserver's capacity, as it reports it (leader only).", []string{"chunkserver"}, nil)
	descFiles     = prometheus.NewDesc("catena_files", "Files in the namespace (leader only).", nil, nil)
	descDirs      = prometheus.NewDesc("catena_directories", "Directories in the namespace (leader only).", nil, nil)
	masterDescsOf = []*prometheus.Desc{descTerm, descCommit, descApplied, descIsLeader, descChunks, descRepairs, descRepaired,
		descServers, descHBAge, descUsed, descCapacity, descFiles, descDirs}
)

// masterCollector reads the master's state at each scrape.
type masterCollector struct{ m *Master }

func (c *masterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range masterDescsOf {
		ch <- d
	}
}

func (c *masterCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	stats := m.raft.Stats()
	for d, key := range map[*prometheus.Desc]string{descTerm: "term", descCommit: "commit_index", descApplied: "applied_index"} {
		if v, err := strconv.ParseUint(stats[key], 10, 64); err == nil {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
		}
	}
	leading := m.IsLeader()
	ch <- prometheus.MustNewConstMetric(descIsLeader, prometheus.GaugeValue, b2f(leading))
	if !leading {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := (&server{m: m}).Status(ctx, &api.StatusRequest{})
	if err != nil {
		return // lost the leadership meanwhile
	}
	cs := st.GetChunks()
	for state, v := range map[string]uint64{"total": cs.GetTotal(), "under_replicated": cs.GetUnderReplicated(),
		"over_replicated": cs.GetOverReplicated(), "re_replicating": cs.GetReReplicating(), "lost": cs.GetLost()} {
		ch <- prometheus.MustNewConstMetric(descChunks, prometheus.GaugeValue, float64(v), state)
	}
	ch <- prometheus.MustNewConstMetric(descRepairs, prometheus.CounterValue, float64(cs.GetRepairsDone()))
	ch <- prometheus.MustNewConstMetric(descRepaired, prometheus.CounterValue, float64(cs.GetRepairedBytes()))
	ch <- prometheus.MustNewConstMetric(descFiles, prometheus.GaugeValue, float64(st.GetFiles()))
	ch <- prometheus.MustNewConstMetric(descDirs, prometheus.GaugeValue, float64(st.GetDirectories()))
	var alive, dead, draining float64
	now := m.cfg.Clock.Now()
	for _, s := range st.GetChunkservers() {
		if s.GetAlive() {
			alive++
		} else {
			dead++
		}
		if s.GetDraining() {
			draining++
		}
		name := chunkserverLabel(s)
		if hb := s.GetLastHeartbeatUnixNano(); hb != 0 {
			ch <- prometheus.MustNewConstMetric(descHBAge, prometheus.GaugeValue, now.Sub(time.Unix(0, hb)).Seconds(), name)
		}
		ch <- prometheus.MustNewConstMetric(descUsed, prometheus.GaugeValue, float64(s.GetUsedBytes()), name)
		ch <- prometheus.MustNewConstMetric(descCapacity, prometheus.GaugeValue, float64(s.GetCapacityBytes()), name)
	}
	ch <- prometheus.MustNewConstMetric(descServers, prometheus.GaugeValue, alive, "alive")
	ch <- prometheus.MustNewConstMetric(descServers, prometheus.GaugeValue, dead, "dead")
	ch <- prometheus.MustNewConstMetric(descServers, prometheus.GaugeValue, draining, "draining")
}

// chunkserverLabel names a chunkserver in metrics: its name, else its id.
func chunkserverLabel(s *api.ChunkserverStatus) string {
	if s.GetName() != "" {
		return s.GetName()
	}
	return strconv.FormatUint(s.GetId(), 10)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
