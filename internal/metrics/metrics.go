// Package metrics is the Prometheus side of every Catena process: a
// registry per process (with the Go and process collectors), gRPC server
// interceptors counting and timing every call, and the HTTP server of
// /metrics (--metrics-listen). Components take a prometheus.Registerer
// in their configuration and register their own collectors into it; in
// the one process of `catena dev` each component registers through
// prometheus.WrapRegistererWith with a `node` label.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// NewRegistry returns a registry holding the Go runtime's and the
// process's collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Or returns reg, or a registry of its own (gathered by nobody) when reg
// is nil, so components register unconditionally.
func Or(reg prometheus.Registerer) prometheus.Registerer {
	if reg == nil {
		return prometheus.NewRegistry()
	}
	return reg
}

// Register registers cs into reg, replacing collectors registered
// before under the same descriptors (a component restarted in the same
// process, as the test cluster does).
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(fmt.Sprintf("metrics: %v", err))
			}
			reg.Unregister(are.ExistingCollector)
			reg.MustRegister(c)
		}
	}
}

// LatencyBuckets are the histogram buckets of request latencies, from
// 50 µs to about 13 s.
var LatencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 19)

// GRPC counts and times the calls a gRPC server serves, and logs the
// refused ones.
type GRPC struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	log      *slog.Logger
}

// NewGRPC registers the RPC metrics into reg (nil: nowhere); calls
// refused for want of a credential or a permission are logged at info
// on log (nil: nowhere), with the caller's address.
func NewGRPC(reg prometheus.Registerer, log *slog.Logger) *GRPC {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &GRPC{
		log: log,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catena_rpc_requests_total", Help: "gRPC calls served, by service, method and status code.",
		}, []string{"service", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "catena_rpc_duration_seconds", Help: "Time to serve a gRPC call (a stream: its whole life).", Buckets: LatencyBuckets,
		}, []string{"service", "method"}),
	}
	Register(Or(reg), g.requests, g.duration)
	return g
}

// splitMethod turns "/catena.v1.Master/Heartbeat" into its service and
// method.
func splitMethod(full string) (string, string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", full
}

func (g *GRPC) observe(ctx context.Context, full string, start time.Time, err error) {
	svc, m := splitMethod(full)
	code := status.Code(err)
	g.requests.WithLabelValues(svc, m, code.String()).Inc()
	g.duration.WithLabelValues(svc, m).Observe(time.Since(start).Seconds())
	if code == codes.PermissionDenied || code == codes.Unauthenticated {
		from := "unknown"
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			from = p.Addr.String()
		}
		g.log.Info("refused", "method", full, "from", from, "err", status.Convert(err).Message())
	}
}

// ServerOptions are the interceptors; put them first, so refused calls
// are counted too.
func (g *GRPC) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			start := time.Now()
			resp, err := h(ctx, req)
			g.observe(ctx, info.FullMethod, start, err)
			return resp, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			start := time.Now()
			err := h(srv, ss)
			g.observe(ss.Context(), info.FullMethod, start, err)
			return err
		}),
	}
}

// Server serves /metrics over HTTP.
type Server struct {
	srv *http.Server
	lis net.Listener
}

// Listen serves g's metrics at http://addr/metrics until Close.
func Listen(addr string, g prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	return Serve(lis, g, log), nil
}

// Serve serves g's metrics on lis until Close.
func Serve(lis net.Listener, g prometheus.Gatherer, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slogPrinter{log}}))
	s := &Server{lis: lis, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}}
	go func() {
		if err := s.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics: serve", "err", err)
		}
	}()
	return s
}

// Addr is the address served.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Close stops serving.
func (s *Server) Close() error { return s.srv.Close() }

type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics: " + fmt.Sprint(v...)) }
