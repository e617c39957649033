package fusefs

import (
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/catena-io/catena/internal/metrics"
)

// metered is the FUSE requests' entry, counting and timing the
// operations a user meets (catena_fuse_requests_total and
// catena_fuse_request_duration_seconds, by op); the rest pass through.
type metered struct {
	fuse.RawFileSystem
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetered(fs fuse.RawFileSystem, reg prometheus.Registerer) *metered {
	m := &metered{RawFileSystem: fs,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "catena_fuse_requests_total",
			Help: "FUSE requests served, by operation and result (ok, or the errno's name)."}, []string{"op", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "catena_fuse_request_duration_seconds",
			Help: "Time to serve a FUSE request.", Buckets: metrics.LatencyBuckets}, []string{"op"}),
	}
	metrics.Register(metrics.Or(reg), m.requests, m.duration)
	return m
}

func (m *metered) done(op string, start time.Time, st fuse.Status) fuse.Status {
	result := "ok"
	if !st.Ok() {
		result = st.String()
	}
	m.requests.WithLabelValues(op, result).Inc()
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	return st
}

func (m *metered) Lookup(c <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	return m.done("lookup", time.Now(), m.RawFileSystem.Lookup(c, h, name, out))
}

func (m *metered) GetAttr(c <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	return m.done("getattr", time.Now(), m.RawFileSystem.GetAttr(c, in, out))
}

func (m *metered) SetAttr(c <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	return m.done("setattr", time.Now(), m.RawFileSystem.SetAttr(c, in, out))
}

func (m *metered) Mkdir(c <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	return m.done("mkdir", time.Now(), m.RawFileSystem.Mkdir(c, in, name, out))
}

func (m *metered) Unlink(c <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return m.done("unlink", time.Now(), m.RawFileSystem.Unlink(c, h, name))
}

func (m *metered) Rmdir(c <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return m.done("rmdir", time.Now(), m.RawFileSystem.Rmdir(c, h, name))
}

func (m *metered) Rename(c <-chan struct{}, in *fuse.RenameIn, from, to string) fuse.Status {
	return m.done("rename", time.Now(), m.RawFileSystem.Rename(c, in, from, to))
}

func (m *metered) Create(c <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	return m.done("create", time.Now(), m.RawFileSystem.Create(c, in, name, out))
}

func (m *metered) Open(c <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return m.done("open", time.Now(), m.RawFileSystem.Open(c, in, out))
}

func (m *metered) Read(c <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	start := time.Now()
	r, st := m.RawFileSystem.Read(c, in, buf)
	return r, m.done("read", start, st)
}

func (m *metered) Write(c <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := m.RawFileSystem.Write(c, in, data)
	return n, m.done("write", start, st)
}

func (m *metered) Writev(c <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := m.RawFileSystem.Writev(c, in, data)
	if st == fuse.ENOSYS {
		return n, st // the server falls back to Write, counted there
	}
	return n, m.done("write", start, st)
}

func (m *metered) Flush(c <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	return m.done("flush", time.Now(), m.RawFileSystem.Flush(c, in))
}

func (m *metered) Fsync(c <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return m.done("fsync", time.Now(), m.RawFileSystem.Fsync(c, in))
}

func (m *metered) ReadDirPlus(c <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return m.done("readdir", time.Now(), m.RawFileSystem.ReadDirPlus(c, in, out))
}

func (m *metered) ReadDir(c <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return m.done("readdir", time.Now(), m.RawFileSystem.ReadDir(c, in, out))
}
