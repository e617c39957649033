package master

import (
	"context"
	"testing"

	"github.com/catena-io/catena/api"
)

// BenchmarkHeartbeatDelta measures what the leader spends on an
// incremental heartbeat of a server that holds 100,000 replicas (the
// report itself carries ten changes): it merges the report into the
// server's inventory and decides from the whole of it, so the cost grows
// with the inventory, not the report (docs/benchmarks.md).
func BenchmarkHeartbeatDelta(b *testing.B) {
	const n = 100_000
	e := newFailureEnv(b, 3)
	ctx := context.Background()
	full := &api.HeartbeatRequest{ServerId: 1, Addr: e.cs[1].addr, ReportGen: 1, Full: true}
	for h := uint64(1); h <= n; h++ {
		full.Replicas = append(full.Replicas, &api.ReplicaInfo{Handle: h, Epoch: 1, AppliedSeq: 1, Verified: true})
	}
	if _, err := e.c.Heartbeat(ctx, full); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		gen := uint64(i) + 2
		req := &api.HeartbeatRequest{ServerId: 1, Addr: e.cs[1].addr, ReportGen: gen, BaseGen: gen - 1}
		for j := range uint64(10) {
			req.Replicas = append(req.Replicas, &api.ReplicaInfo{Handle: 1 + (uint64(i)*10+j)%n, Epoch: 1, AppliedSeq: 2, Verified: true})
		}
		resp, err := e.c.Heartbeat(ctx, req)
		if err != nil || resp.FullReport {
			b.Fatalf("delta %d: %v, full_report %v", gen, err, resp.GetFullReport())
		}
	}
}
