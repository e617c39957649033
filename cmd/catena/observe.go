package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/catena-io/catena/internal/metrics"
)

// metricsFlag adds --metrics-listen to a server command's flags.
func metricsFlag(f *pflag.FlagSet, addr *string) {
	f.StringVar(addr, "metrics-listen", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9100; empty: off)")
}

// startMetrics serves a new registry's metrics on addr and says where on
// out; with addr empty it returns a nil registerer (nothing gathered).
// stop ends the serving.
func startMetrics(addr, who string, out io.Writer, log *slog.Logger) (reg prometheus.Registerer, stop func(), err error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	r := metrics.NewRegistry()
	srv, err := metrics.Listen(addr, r, log)
	if err != nil {
		return nil, nil, localErr(err)
	}
	fmt.Fprintf(out, "catena %s: metrics on http://%s/metrics\n", who, srv.Addr())
	return r, func() { srv.Close() }, nil
}
