package mirror

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catena-io/catena/internal/clock"
	"github.com/catena-io/catena/internal/metrics"
)

// mirrorMetrics exposes B's record as the mirror last wrote it, and the
// duration of each checkpoint, labelled by volume.
type mirrorMetrics struct {
	last     atomic.Pointer[Record]
	duration prometheus.Observer
}

func newMetrics(reg prometheus.Registerer, vol string, clk clock.Clock) *mirrorMetrics {
	m := &mirrorMetrics{}
	labels := prometheus.Labels{"volume": vol}
	get := func(f func(*Record) float64) func() float64 {
		return func() float64 {
			if r := m.last.Load(); r != nil {
				return f(r)
			}
			return 0
		}
	}
	hist := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "catena_mirror_checkpoint_seconds", ConstLabels: labels,
		Help:    "Time from a checkpoint's snapshot at the source to its activation at the target.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
	})
	m.duration = hist
	metrics.Register(metrics.Or(reg),
		hist,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "catena_mirror_applied_checkpoint", ConstLabels: labels,
			Help: "The checkpoint the target's volume is at."}, get(func(r *Record) float64 { return float64(r.Applied) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "catena_mirror_recovery_point_seconds", ConstLabels: labels,
			Help: "Age of the checkpoint the target is at: what a loss of the source would lose."},
			get(func(r *Record) float64 { return r.Age(clk.Now()).Seconds() })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "catena_mirror_pending_bytes", ConstLabels: labels,
			Help: "Bytes of the checkpoint in flight not yet shipped (an upper bound)."},
			get(func(r *Record) float64 { return float64(r.PendingBytes) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "catena_mirror_shipped_bytes_total", ConstLabels: labels,
			Help: "Bytes written at the target by applied checkpoints."},
			get(func(r *Record) float64 { return float64(r.ShippedBytes) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "catena_mirror_checkpoints_total", ConstLabels: labels,
			Help: "Checkpoints applied at the target."},
			get(func(r *Record) float64 { return float64(r.Checkpoints) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "catena_mirror_fallbacks_total", ConstLabels: labels,
			Help: "Chunks shipped whole because no server could list their changed blocks."},
			get(func(r *Record) float64 { return float64(r.Fallbacks) })),
	)
	return m
}

// saw records the record last written at the target.
func (m *mirrorMetrics) saw(r *Record) {
	cp := *r
	m.last.Store(&cp)
}

// applied observes a checkpoint's duration.
func (m *mirrorMetrics) applied(d time.Duration) { m.duration.Observe(d.Seconds()) }
