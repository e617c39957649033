package metrics

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func TestSplitMethod(t *testing.T) {
	for in, want := range map[string][2]string{
		"/catena.v1.Master/Heartbeat": {"catena.v1.Master", "Heartbeat"},
		"/a.b.C/D":                    {"a.b.C", "D"},
		"weird":                       {"unknown", "weird"},
	} {
		if s, m := splitMethod(in); s != want[0] || m != want[1] {
			t.Errorf("splitMethod(%q) = %q, %q; want %q", in, s, m, want)
		}
	}
}

// TestGRPCInterceptors: a real gRPC server's calls are counted by
// service, method and code, and timed.
func TestGRPCInterceptors(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := NewGRPC(reg, nil)
	hc := healthServer(t, g.ServerOptions()...)
	for range 3 {
		if _, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "known"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "unknown"}); err == nil {
		t.Fatal("check of an unknown service succeeded")
	}
	const svc = "grpc.health.v1.Health"
	if n := testutil.ToFloat64(g.requests.WithLabelValues(svc, "Check", "OK")); n != 3 {
		t.Fatalf("OK calls = %v, want 3", n)
	}
	if n := testutil.ToFloat64(g.requests.WithLabelValues(svc, "Check", "NotFound")); n != 1 {
		t.Fatalf("NotFound calls = %v, want 1", n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(""), "catena_rpc_duration_seconds"); err == nil {
		t.Fatal("no duration histogram gathered")
	}
	if n := testutil.CollectAndCount(g.duration); n != 1 {
		t.Fatalf("duration series = %d, want 1 (one method)", n)
	}
}

// TestRegisterReplaces: a component started again in the same process
// registers its collectors over the old ones instead of panicking.
func TestRegisterReplaces(t *testing.T) {
	reg := prometheus.NewRegistry()
	for i := range 2 {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "catena_test_total", Help: "test"})
		Register(reg, c)
		c.Add(float64(i + 1))
	}
	if v, err := testutil.GatherAndCount(reg, "catena_test_total"); err != nil || v != 1 {
		t.Fatalf("series: %d, %v", v, err)
	}
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetMetric()[0].GetCounter().GetValue() != 2 {
		t.Fatalf("gathered %v, %v; want the second counter's 2", mfs, err)
	}
}

// TestListen: /metrics answers in the Prometheus text format with the
// registry's metrics, the Go and process collectors included.
func TestListen(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "catena_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(7)
	s, err := Listen("127.0.0.1:0", reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Get("http://" + s.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"catena_test_total 7", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if _, err := Listen(s.Addr(), reg, nil); err == nil {
		t.Fatal("a second Listen on a busy address succeeded")
	}
}

// TestRefusedLogged: a call refused for a permission is logged at info
// with its method and the caller's address, and counted.
func TestRefusedLogged(t *testing.T) {
	var logs strings.Builder
	g := NewGRPC(prometheus.NewRegistry(), slog.New(slog.NewTextHandler(&logs, nil)))
	deny := grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return nil, status.Error(codes.PermissionDenied, "role client may not call it")
	})
	if _, err := healthServer(t, append(g.ServerOptions(), deny)...).Check(context.Background(), &healthpb.HealthCheckRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("check: %v, want PermissionDenied", err)
	}
	out := logs.String()
	for _, want := range []string{"level=INFO", "msg=refused", "method=/grpc.health.v1.Health/Check", "from=127.0.0.1:", "role client may not call it"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if n := testutil.ToFloat64(g.requests.WithLabelValues("grpc.health.v1.Health", "Check", "PermissionDenied")); n != 1 {
		t.Errorf("refused calls counted %v, want 1", n)
	}
}

// healthServer serves gRPC's health service (a service "known" serving)
// with opts on 127.0.0.1 until the test ends, and returns a client of it.
func healthServer(t *testing.T, opts ...grpc.ServerOption) healthpb.HealthClient {
	t.Helper()
	srv := grpc.NewServer(opts...)
	hs := health.NewServer()
	hs.SetServingStatus("known", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}
