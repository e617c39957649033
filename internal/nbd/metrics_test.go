package nbd

import (
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetrics: requests are counted by command and result, bytes by
// direction, and the memory gauge returns to zero once replies are sent.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := NewServer(Config{Exports: MapExports{"v": NewMemDevice(1 << 16)}, MaxPayload: 1 << 20, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	go s.ServeConn(b)
	t.Cleanup(func() { a.Close(); s.Close() })
	a.SetDeadline(time.Now().Add(20 * time.Second))
	tc := &testClient{t: t, c: a}
	tc.goExport("", false)
	if n := testutil.ToFloat64(gaugeNamed(t, reg, "catena_nbd_connections")); n != 1 {
		t.Fatalf("connections = %v, want 1", n)
	}
	data := make([]byte, 4096)
	for i := range 3 {
		tc.request(Request{Type: cmdWrite, Cookie: uint64(i), Offset: uint64(i) * 4096, Length: 4096}, data)
		if errno, _, _ := tc.simpleReply(0); errno != 0 {
			t.Fatalf("write: errno %d", errno)
		}
	}
	tc.request(Request{Type: cmdRead, Cookie: 9, Offset: 0, Length: 8192}, nil)
	if errno, _, _ := tc.simpleReply(8192); errno != 0 {
		t.Fatalf("read: errno %d", errno)
	}
	tc.request(Request{Type: cmdRead, Cookie: 10, Offset: 1 << 16, Length: 4096}, nil) // past the end
	if errno, _, _ := tc.simpleReply(0); errno == 0 {
		t.Fatal("read past the end succeeded")
	}
	m := s.mx
	// The memory of the last request is given back after its reply:
	// Close returns once every request has ended.
	a.Close()
	s.Close()
	for _, c := range []struct {
		got, want float64
		what      string
	}{
		{testutil.ToFloat64(m.requests.WithLabelValues("write", "ok")), 3, "ok writes"},
		{testutil.ToFloat64(m.requests.WithLabelValues("read", "ok")), 1, "ok reads"},
		{testutil.ToFloat64(m.requests.WithLabelValues("read", "error")), 1, "failed reads"},
		{testutil.ToFloat64(m.bytes.WithLabelValues("write")), 3 * 4096, "bytes written"},
		{testutil.ToFloat64(m.bytes.WithLabelValues("read")), 8192, "bytes read"},
		{float64(m.memUsed.Load()), 0, "memory held once the server closed"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.duration); n != 2 {
		t.Errorf("latency series = %d, want 2 (read, write)", n)
	}
}

// gaugeNamed finds a registered collector by its metric's name.
func gaugeNamed(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "copy"})
			g.Set(mf.GetMetric()[0].GetGauge().GetValue())
			return g
		}
	}
	t.Fatalf("no %s gathered", name)
	return nil
}
