package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/durable"
	"github.com/catena-io/catena/internal/master"
)

func newMasterCmd(g *globals) *cobra.Command {
	cfg := master.Config{}
	var insecure bool
	var repairRate, metricsAddr string
	cmd := &cobra.Command{
		Use:   "master --dir DIR [--listen ADDR] [--raft-addr ADDR] [--id ID] [--peers ...|--join]",
		Short: "Run a metadata master (until SIGINT or SIGTERM)",
		Example: "  catena master --dir /var/lib/catena/master --tls-dir /etc/catena/tls-m1\n" +
			"  catena master --dir d1 --id m1 --raft-addr 10.0.0.1:7071 --peers m1=10.0.0.1:7071,m2=10.0.0.2:7071,m3=10.0.0.3:7071 --tls-dir /etc/catena/tls-m1\n" +
			"  catena master --dir d4 --id m4 --listen 10.0.0.4:7070 --raft-addr 10.0.0.4:7071 --join --tls-dir /etc/catena/tls-m4   # then: catena admin master add m4 10.0.0.4:7071",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			if cfg.Dir == "" {
				return &usageError{cmd: cmd, err: fmt.Errorf("--dir is required")}
			}
			if err := needTLS(g, insecure, "master"); err != nil {
				return &usageError{cmd: cmd, err: err}
			}
			cfg.Logger = g.serverLogger(cmd.ErrOrStderr())
			creds, err := g.creds()
			if err != nil {
				return fail("master", err)
			}
			if creds != nil && creds.Role != auth.RoleMaster {
				return fail("master", fmt.Errorf("--tls-dir %s holds a %s certificate, want a master one", g.tlsDir, creds.Role))
			}
			cfg.TLS = creds
			if err := durable.MkdirAll(cfg.Dir, 0o755); err != nil {
				return fail("master", localErr(err))
			}
			ctx := cmd.Context()
			if cfg.Peers != "" && cfg.ID == "" {
				return &usageError{cmd: cmd, err: fmt.Errorf("--peers needs --id")}
			}
			if cfg.Join && (cfg.ID == "" || cfg.Peers != "") {
				return &usageError{cmd: cmd, err: fmt.Errorf("--join needs --id and excludes --peers")}
			}
			if cfg.RepairConcurrency < 1 {
				return &usageError{cmd: cmd, err: fmt.Errorf("--repair-concurrency %d: want at least 1", cfg.RepairConcurrency)}
			}
			if cfg.RebalanceConcurrency < 0 {
				return &usageError{cmd: cmd, err: fmt.Errorf("--rebalance-concurrency %d: want 0 (off) or more", cfg.RebalanceConcurrency)}
			}
			if cfg.RebalanceConcurrency == 0 {
				cfg.RebalanceConcurrency = -1 // off
			}
			if repairRate != "" {
				n, err := parseSize(repairRate)
				if err != nil || n <= 0 {
					return &usageError{cmd: cmd, err: fmt.Errorf("bad --repair-rate %q (want bytes per second such as 64MiB)", repairRate)}
				}
				cfg.RepairBytesPerSec = n
			}
			if cfg.Lease < 0 || cfg.DeadAfter < 0 {
				return &usageError{cmd: cmd, err: fmt.Errorf("--lease and --dead-after must not be negative")}
			}
			if cfg.DeadAfter != 0 && cfg.Lease != 0 && cfg.DeadAfter < cfg.Lease {
				return &usageError{cmd: cmd, err: fmt.Errorf("--dead-after %v is shorter than --lease %v: a server would be declared dead while its lease runs", cfg.DeadAfter, cfg.Lease)}
			}
			reg, stopMetrics, err := startMetrics(metricsAddr, "master", cmd.OutOrStdout(), cfg.Logger)
			if err != nil {
				return fail("master", err)
			}
			defer stopMetrics()
			cfg.Metrics = reg
			m, err := master.Start(ctx, cfg)
			if err != nil {
				return fail("master", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "catena master: listening on %s (data in %s)\n", m.Addr(), cfg.Dir)
			if a := m.HTTPAddr(); a != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "catena master: console on http://%s/\n", a)
			}
			return fail("master", serveUntilDone(ctx, m.Close))
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "dir", "", "data directory (required)")
	f.StringVar(&cfg.ListenAddr, "listen", "127.0.0.1:7070", "gRPC listen address")
	f.StringVar(&cfg.RaftAddr, "raft-addr", "", "Raft address (default: listen port + 1)")
	f.StringVar(&cfg.ID, "id", "", "Raft server id (default m1)")
	f.StringVar(&cfg.Peers, "peers", "", "initial Raft voters, id=raftaddr,... the same on every master (empty: a single master)")
	f.BoolVar(&cfg.Join, "join", false, "start without bootstrapping and wait to be added to a running group (catena admin master add); needed at the first start only")
	f.StringVar(&cfg.AdvertiseAddr, "advertise", "", "gRPC address others reach this master at (default: the listen address)")
	f.DurationVar(&cfg.Lease, "lease", 0, "how long a chunkserver may serve after a heartbeat the master answered (default 1s); a dead member stalls its chains' writes for about this long")
	f.DurationVar(&cfg.DeadAfter, "dead-after", 0, "declare a silent chunkserver dead after this long, at least --lease (default: the lease plus a drift margin)")
	metricsFlag(f, &metricsAddr)
	f.StringVar(&cfg.HTTPAddr, "http-listen", "", "serve the web console at http://ADDR/ (empty: off); plain HTTP, read-only and unauthenticated even with --tls-dir: bind it to loopback or an operators' network")
	f.IntVar(&cfg.RepairConcurrency, "repair-concurrency", 4, "re-replications (and rebalancing moves) in flight at once")
	f.StringVar(&repairRate, "repair-rate", "64MiB", "copy rate of each re-replication or move, bytes per second")
	f.IntVar(&cfg.RebalanceConcurrency, "rebalance-concurrency", 2, "rebalancing moves (and a drain's copies) in flight at once, within --repair-concurrency (0: no rebalancing; drains then copy one at a time)")
	f.BoolVar(&insecure, "insecure", false, "run without --tls-dir: plain TCP, and anyone who can reach a port may call anything (for trusted labs only)")
	return cmd
}

// needTLS refuses to run server role without credentials unless the user
// asked for an insecure server.
func needTLS(g *globals, insecure bool, role string) error {
	switch {
	case g.tlsDir == "" && !insecure:
		return fmt.Errorf("no --tls-dir: give it a %s certificate's directory (catena admin ca init, then catena admin cert issue --role %s), or --insecure to run without authentication", role, role)
	case g.tlsDir != "" && insecure:
		return fmt.Errorf("--tls-dir and --insecure exclude each other")
	}
	return nil
}

// serveUntilDone waits for ctx (a signal) and then closes the server.
func serveUntilDone(ctx context.Context, closeFn func() error) error {
	<-ctx.Done()
	return closeFn()
}
