package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/durable"
	"github.com/catena-io/catena/internal/s3"
)

// devDir is catena dev's default data directory; devTLSDir, under it,
// holds the admin client credentials a client run beside it finds.
const (
	devDir    = "./catena-data"
	devTLSDir = devDir + "/tls/admin"
	// devHTTPAddr is where catena dev serves the console by default.
	devHTTPAddr = "127.0.0.1:7090"
	// devS3Addr is where catena dev serves the S3 gateway by default.
	devS3Addr = "127.0.0.1:9000"
)

func newDevCmd(g *globals) *cobra.Command {
	cfg := cluster.Config{}
	var insecure bool
	var metricsAddr, s3Addr string
	cmd := &cobra.Command{
		Use:   "dev [--dir DIR] [--chunkservers N] [--listen ADDR] [--metrics-listen ADDR]",
		Short: "Run a master and N chunkservers in one process, for trying Catena out",
		Long: "Run a master and N chunkservers in one process on loopback, with all data\n" +
			"under one directory. State survives a restart. Stop with Ctrl-C.\n\n" +
			"Every connection is mutual TLS: dev makes a cluster CA and certificates in\n" +
			"DIR/tls, and an admin client's credentials in DIR/tls/admin, which client\n" +
			"commands run in the directory holding " + devDir + " find by themselves\n" +
			"(elsewhere: --tls-dir DIR/tls/admin or CATENA_TLS_DIR).",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			if cfg.Chunkservers < 1 {
				return &usageError{cmd: cmd, err: fmt.Errorf("--chunkservers must be at least 1")}
			}
			if cfg.Masters != 1 && cfg.Masters != 3 && cfg.Masters != 5 {
				return &usageError{cmd: cmd, err: fmt.Errorf("--masters must be 1, 3 or 5")}
			}
			if err := durable.MkdirAll(cfg.Dir, 0o755); err != nil {
				return fail("dev", localErr(err))
			}
			// dev is for trying Catena out: errors only (Raft's routine
			// election warnings would read as trouble), everything with -v.
			cfg.Logger = g.loggerAt(cmd.ErrOrStderr(), slog.LevelError)
			cfg.Insecure = insecure
			reg, stopMetrics, err := startMetrics(metricsAddr, "dev", cmd.OutOrStdout(), cfg.Logger)
			if err != nil {
				return fail("dev", err)
			}
			defer stopMetrics()
			cfg.Metrics = reg
			ctx := cmd.Context()
			if !cmd.Flags().Changed("http-listen") && !portFree(cfg.MasterHTTPAddr) {
				cfg.MasterHTTPAddr = "127.0.0.1:0" // the default is taken: any port will do
			}
			c, err := cluster.Start(ctx, cfg)
			if err != nil && !cmd.Flags().Changed("http-listen") && errors.Is(err, syscall.EADDRINUSE) && cfg.MasterHTTPAddr == devHTTPAddr {
				// Taken since portFree looked (another catena dev
				// starting): any port will do.
				cfg.MasterHTTPAddr = "127.0.0.1:0"
				c, err = cluster.Start(ctx, cfg)
			}
			if err != nil {
				return fail("dev", err)
			}
			addr := strings.Join(c.MasterAddrs(), ",")
			out := cmd.OutOrStdout()
			transport := "mutual TLS, client credentials in " + c.TLSDir()
			if insecure {
				transport = "plain TCP, no authentication"
			}
			fmt.Fprintf(out, "catena dev: master listening on %s (%d chunkservers, data in %s; %s)\n", addr, cfg.Chunkservers, cfg.Dir, transport)
			if a := c.MasterHTTPAddr(0); a != "" {
				fmt.Fprintf(out, "catena dev: console on http://%s/\n", a)
			}
			var env []string
			if addr != client.DefaultMaster {
				env = append(env, envMaster+"="+addr)
			}
			if !insecure && filepath.Clean(cfg.Dir) != filepath.Clean(devDir) {
				abs, err := filepath.Abs(c.TLSDir())
				if err != nil {
					abs = c.TLSDir()
				}
				env = append(env, envTLSDir+"="+abs)
			}
			if len(env) == 0 {
				fmt.Fprintln(out, "  try: catena put ./file /file && catena ls -l /")
			} else {
				fmt.Fprintf(out, "  try: export %s; catena put ./file /file && catena ls -l /\n", strings.Join(env, " "))
			}
			stop := c.Close
			if s3Addr != "" {
				gw, err := startDevS3(ctx, c, s3Addr, !cmd.Flags().Changed("s3-listen"), cfg.Logger)
				if err != nil {
					c.Close()
					return fail("dev", err)
				}
				stop = func() error { gw.Close(); return c.Close() }
				fmt.Fprintf(out, "catena dev: S3 on http://%s/ (access keys: catena admin s3 key create NAME)\n", gw.addr)
			}
			return fail("dev", serveUntilDone(ctx, stop))
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "dir", devDir, "data directory")
	f.BoolVar(&insecure, "insecure", false, "plain TCP, no certificates: anyone who can reach a port may call anything (for trusted labs only)")
	f.IntVar(&cfg.Chunkservers, "chunkservers", 3, "number of chunkservers")
	f.IntVar(&cfg.Masters, "masters", 1, "number of master voters (1, 3 or 5); more than 1 listen on free loopback ports")
	f.StringVar(&cfg.MasterAddr, "listen", client.DefaultMaster, "master listen address")
	f.StringVar(&cfg.MasterHTTPAddr, "http-listen", devHTTPAddr, "serve the web console at http://ADDR/ (plain HTTP; empty: off; a free port when the default is taken)")
	f.StringVar(&s3Addr, "s3-listen", devS3Addr, "serve the S3 gateway (buckets under /s3) at http://ADDR/ (empty: off; a free port when the default is taken)")
	f.StringVar(&metricsAddr, "metrics-listen", "", "serve every process's Prometheus metrics (labelled node=m1, cs1, ...) at http://ADDR/metrics (empty: off)")
	return cmd
}

// portFree reports whether addr can be listened on now.
func portFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// startDevS3 starts catena dev's S3 gateway on addr, or on any free port
// when anyPort and addr is taken.
func startDevS3(ctx context.Context, c *cluster.Cluster, addr string, anyPort bool, log *slog.Logger) (*s3Gateway, error) {
	cl, err := c.NewClient()
	if err != nil {
		return nil, err
	}
	if anyPort && !portFree(addr) {
		addr = "127.0.0.1:0"
	}
	gw, err := startS3(ctx, cl, s3.Config{}, addr, log)
	if err != nil && anyPort && errors.Is(err, syscall.EADDRINUSE) {
		// Taken since portFree looked: any port will do.
		gw, err = startS3(ctx, cl, s3.Config{}, "127.0.0.1:0", log)
	}
	if err != nil {
		cl.Close()
		return nil, err
	}
	gw.onClose = func() { cl.Close() }
	return gw, nil
}
