package cluster_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/metrics"
)

// TestMetrics: with Config.Metrics every process registers its
// metrics, labelled by node, and they count what happened: a file's
// writes and reads at the chunkservers, fsyncs, the master's Raft state
// and the cluster's chunks, chunkservers and heartbeats.
func TestMetrics(t *testing.T) {
	reg := metrics.NewRegistry()
	c := clustertest.New(t, cluster.Config{Chunkservers: 3, Metrics: reg})
	cl := clustertest.Client(t, c)
	f := create(t, cl, "/m")
	data := make([]byte, 1<<20)
	writeAt(t, f, data, 0)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	rf, err := cl.Open(t.Context(), "/m")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rf.ReadAt(make([]byte, 1<<20), 0); err != nil {
		t.Fatal(err)
	}
	// Sum of a metric over its series whose labels include want.
	sum := func(name string, want map[string]string) (float64, int) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var total float64
		n := 0
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		series:
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				for k, v := range want {
					if labels[k] != v {
						continue series
					}
				}
				n++
				total += value(m)
			}
		}
		return total, n
	}
	if v, n := sum("catena_chunkserver_write_bytes_total", nil); v != 1<<20 || n != 3 {
		t.Errorf("write bytes: %v over %d servers, want %d over 3 (the head counts a write once)", v, n, 1<<20)
	}
	if v, _ := sum("catena_chunkserver_read_bytes_total", nil); v != 1<<20 {
		t.Errorf("read bytes: %v, want %d", v, 1<<20)
	}
	if _, n := sum("catena_chunkserver_fsync_duration_seconds", nil); n != 3 {
		t.Errorf("fsync histograms: %d, want 3", n)
	}
	if v, n := sum("catena_raft_is_leader", map[string]string{"node": "m1"}); v != 1 || n != 1 {
		t.Errorf("m1 leads: %v (%d series)", v, n)
	}
	if v, _ := sum("catena_rpc_requests_total", map[string]string{"service": "catena.v1.Chunkserver", "method": "Write", "code": "OK"}); v < 1 {
		t.Errorf("chunkserver Write calls: %v", v)
	}
	// The master's view follows heartbeats: await the chunk and the
	// servers' reports.
	clustertest.Eventually(t, 30*time.Second, func() error {
		if v, _ := sum("catena_chunks", map[string]string{"state": "total"}); v != 1 {
			return fmt.Errorf("catena_chunks{state=total} = %v, want 1", v)
		}
		if v, _ := sum("catena_chunkservers", map[string]string{"state": "alive"}); v != 3 {
			return fmt.Errorf("catena_chunkservers{state=alive} = %v, want 3", v)
		}
		if _, n := sum("catena_chunkserver_heartbeat_age_seconds", map[string]string{"node": "m1"}); n != 3 {
			return fmt.Errorf("heartbeat ages of %d servers, want 3", n)
		}
		return nil
	})
	// Chunkservers are named in the master's metrics.
	if _, n := sum("catena_chunkserver_heartbeat_age_seconds", map[string]string{"chunkserver": "cs2"}); n != 1 {
		t.Errorf("no heartbeat age for chunkserver cs2")
	}
	// A killed chunkserver is counted dead once its lease has run out.
	if err := c.Kill(0); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 30*time.Second, func() error {
		if v, _ := sum("catena_chunkservers", map[string]string{"state": "dead"}); v != 1 {
			return fmt.Errorf("catena_chunkservers{state=dead} = %v, want 1", v)
		}
		return nil
	})
	var names []string
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, want := range []string{"catena_chunkserver_write_duration_seconds", "catena_chunkserver_chain_memory_bytes",
		"catena_chunkserver_write_memory_limit_bytes", "catena_raft_term", "catena_raft_commit_index", "go_goroutines"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("no %s gathered", want)
		}
	}
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}
