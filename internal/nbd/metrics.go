package nbd

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catena-io/catena/internal/metrics"
)

// serverMetrics are the server's Prometheus instruments.
type serverMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
	memUsed  atomic.Int64 // bytes of MaxMemory held now
}

func newServerMetrics(s *Server, reg prometheus.Registerer) *serverMetrics {
	m := &serverMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "catena_nbd_requests_total",
			Help: "NBD requests served, by command and result (ok, error: an errno was sent)."}, []string{"op", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "catena_nbd_request_duration_seconds",
			Help: "Time from an NBD request's arrival (its payload read) to its reply.", Buckets: metrics.LatencyBuckets}, []string{"op"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "catena_nbd_bytes_total",
			Help: "Bytes read and written through NBD."}, []string{"direction"}),
	}
	metrics.Register(metrics.Or(reg), m.requests, m.duration, m.bytes,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "catena_nbd_connections", Help: "NBD connections open now."},
			func() float64 {
				s.mu.Lock()
				defer s.mu.Unlock()
				return float64(len(s.conns))
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "catena_nbd_memory_bytes",
			Help: "Bytes of request data held now (bounded by the memory budget, catena_nbd_memory_limit_bytes)."},
			func() float64 { return float64(m.memUsed.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "catena_nbd_memory_limit_bytes", Help: "The memory budget of request data (--max-memory)."},
			func() float64 { return float64(s.cfg.MaxMemory) }),
	)
	return m
}

// opName names an NBD command in metrics.
func opName(t uint16) string {
	switch t {
	case cmdRead:
		return "read"
	case cmdWrite:
		return "write"
	case cmdFlush:
		return "flush"
	case cmdTrim:
		return "trim"
	case cmdWriteZeroes:
		return "write_zeroes"
	}
	return "other"
}

// served counts one request answered with errno after start.
func (m *serverMetrics) served(req Request, errno uint32, start time.Time) {
	op := opName(req.Type)
	result := "ok"
	if errno != 0 {
		result = "error"
	}
	m.requests.WithLabelValues(op, result).Inc()
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if errno == 0 {
		switch req.Type {
		case cmdRead:
			m.bytes.WithLabelValues("read").Add(float64(req.Length))
		case cmdWrite:
			m.bytes.WithLabelValues("write").Add(float64(req.Length))
		}
	}
}
