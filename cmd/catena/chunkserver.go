package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/chunkserver"
	"github.com/catena-io/catena/internal/durable"
	"github.com/catena-io/catena/internal/meta"
)

// defaultMemoryLimit is the chunkserver's soft memory limit unless
// --memory-limit or GOMEMLIMIT says otherwise: a million small replicas
// fit under it (docs/benchmarks.md, "1 million replicas"); the garbage
// collector works harder near it instead of letting the heap grow to
// twice what is live.
const defaultMemoryLimit = "440MiB"

func newChunkserverCmd(g *globals) *cobra.Command {
	cfg := chunkserver.Config{}
	var insecure bool
	var labels []string
	var memLimit, capacity, metricsAddr, scrubRate string
	cmd := &cobra.Command{
		Use:     "chunkserver --master ADDR --dir DIR [--listen ADDR] [--label K=V ...]",
		Short:   "Run a chunkserver (until SIGINT or SIGTERM)",
		Example: "  catena chunkserver --master 10.0.0.1:7070 --dir /data/catena --listen 10.0.0.5:7080 --label rack=r1 --tls-dir /etc/catena/tls-cs1",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			if cfg.Dir == "" {
				return &usageError{cmd: cmd, err: fmt.Errorf("--dir is required")}
			}
			l, err := parseLabels(labels)
			if err != nil {
				return &usageError{cmd: cmd, err: err}
			}
			cfg.Labels = l
			if capacity != "" {
				if cfg.Capacity, err = parseSize(capacity); err != nil || cfg.Capacity <= 0 {
					return &usageError{cmd: cmd, err: fmt.Errorf("bad --capacity %q (want a size such as 500GiB)", capacity)}
				}
			}
			if memLimit == "" && os.Getenv("GOMEMLIMIT") == "" {
				memLimit = defaultMemoryLimit
			}
			if memLimit != "" && memLimit != "none" {
				n, err := parseSize(memLimit)
				if err != nil || n == 0 {
					return &usageError{cmd: cmd, err: fmt.Errorf("bad --memory-limit %q (want a size such as 480MiB)", memLimit)}
				}
				// A soft limit: the garbage collector works harder as the
				// heap nears it, instead of letting it grow to twice
				// what is live (GOMEMLIMIT does the same).
				debug.SetMemoryLimit(n)
			}
			if err := needTLS(g, insecure, "chunkserver"); err != nil {
				return &usageError{cmd: cmd, err: err}
			}
			if cfg.TLS, err = g.creds(); err != nil {
				return fail("chunkserver", err)
			}
			if cfg.TLS != nil && cfg.TLS.Role != auth.RoleChunkserver {
				return fail("chunkserver", fmt.Errorf("--tls-dir %s holds a %s certificate, want a chunkserver one", g.tlsDir, cfg.TLS.Role))
			}
			cfg.Masters = g.masterList()
			cfg.Logger = g.serverLogger(cmd.ErrOrStderr())
			if err := durable.MkdirAll(cfg.Dir, 0o755); err != nil {
				return fail("chunkserver", localErr(err))
			}
			if cfg.ScrubInterval < 0 {
				return &usageError{cmd: cmd, err: fmt.Errorf("--scrub-interval %v: want 0 (default) or more", cfg.ScrubInterval)}
			}
			if scrubRate != "" {
				n, err := parseSize(scrubRate)
				if err != nil || n <= 0 {
					return &usageError{cmd: cmd, err: fmt.Errorf("bad --scrub-rate %q (want bytes per second such as 16MiB)", scrubRate)}
				}
				cfg.ScrubBytesPerSec = n
			}
			if cfg.Name != "" {
				if err := meta.ValidServerName(cfg.Name); err != nil {
					return &usageError{cmd: cmd, err: err}
				}
			}
			reg, stopMetrics, err := startMetrics(metricsAddr, "chunkserver", cmd.OutOrStdout(), cfg.Logger)
			if err != nil {
				return fail("chunkserver", err)
			}
			defer stopMetrics()
			cfg.Metrics = reg
			ctx := cmd.Context()
			s, err := chunkserver.Start(ctx, cfg)
			if err != nil {
				return fail("chunkserver", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "catena chunkserver: id %d listening on %s as %s (data in %s)\n", s.ID(), s.Addr(), s.Name(), cfg.Dir)
			return fail("chunkserver", serveUntilDone(ctx, s.Close))
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "dir", "", "data directory (required)")
	f.StringVar(&cfg.ListenAddr, "listen", "127.0.0.1:0", "gRPC listen address; clients and peers dial it")
	f.StringArrayVar(&labels, "label", nil, "failure-domain label KEY=VALUE (repeatable)")
	f.StringVar(&cfg.Name, "name", "", "the server's name, unique in the cluster, shown by catena status and accepted by catena admin chunkserver (default: the host's name and the --dir's last element)")
	f.DurationVar(&cfg.ScrubInterval, "scrub-interval", 0, "pause between two scrubs (reads verifying every replica's checksums) (default 1h)")
	f.StringVar(&scrubRate, "scrub-rate", "", "read rate of the scrub, bytes per second (default 16MiB)")
	metricsFlag(f, &metricsAddr)
	f.StringVar(&capacity, "capacity", "", "space offered to the cluster, when less than the disk's (placement and rebalancing use it; no quota)")
	f.DurationVar(&cfg.HeartbeatInterval, "heartbeat", 0, "heartbeat interval (default: chunkserver default)")
	f.BoolVar(&insecure, "insecure", false, "run without --tls-dir: plain TCP, and anyone who can reach a port may call anything (for trusted labs only)")
	f.StringVar(&memLimit, "memory-limit", "", "soft limit on the process's memory, or none (default "+defaultMemoryLimit+" unless $GOMEMLIMIT is set; raise it for a server of more than a million replicas)")
	f.DurationVar(&cfg.ColdAfter, "cold-after", 0, "how long a replica stays unused before its chain state is dropped (default 5m; keep it above every client's operation timeout: a retry older than that may apply twice)")
	return cmd
}
