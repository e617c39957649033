package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/mirror"
)

// mirrorStatusJSON is "catena mirror status --json".
type mirrorStatusJSON struct {
	Volume           string   `json:"volume"`
	Side             string   `json:"side"`
	Source           string   `json:"source,omitempty"`
	Target           string   `json:"target,omitempty"`
	Applied          uint64   `json:"applied"`
	AppliedAt        string   `json:"applied_at,omitempty"`
	AgeMs            int64    `json:"age_ms"`
	Pending          uint64   `json:"pending,omitempty"`
	PendingBytes     int64    `json:"pending_bytes"`
	PendingShipped   int64    `json:"pending_shipped"`
	Checkpoints      uint64   `json:"checkpoints"`
	ShippedBytes     int64    `json:"shipped_bytes"`
	LastShipped      int64    `json:"last_shipped"`
	LastDurationMs   int64    `json:"last_duration_ms"`
	ThroughputBps    float64  `json:"throughput_bytes_per_s"`
	Fallbacks        int64    `json:"fallbacks"`
	Promoted         bool     `json:"promoted"`
	SyncFlush        bool     `json:"sync_flush"`
	UpdatedAgoMs     int64    `json:"updated_ago_ms"`
	SourceCheckpoint []uint64 `json:"source_checkpoints,omitempty"`
}

func newMirrorCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mirror",
		Short: "Asynchronous, checkpointed replication of a volume or directory tree to a second cluster: run, status, promote",
		Long: `A mirror keeps a volume, or a directory tree, of cluster A copied to cluster
B, in checkpoints (Remus): every --interval it snapshots the source at A
(VOL@mirror-N, or DIR/.snapshot/mirror-N), ships the 64 KiB blocks changed
since the previous checkpoint (and, for a tree, the entries made, renamed
and removed), and applies them at B atomically, so B's copy is always
exactly at one checkpoint of A's. SOURCE is a volume name, or a directory
given as an absolute path. See docs/mirror.md.`,
	}
	cmd.AddCommand(newMirrorRunCmd(g), newMirrorStatusCmd(g), newMirrorPromoteCmd(g), newMirrorSyncCmd(g))
	return cmd
}

func newMirrorRunCmd(g *globals) *cobra.Command {
	var from, to, fromTLS, toTLS, metricsAddr string
	var interval, lease time.Duration
	var keep, resync, syncFlush bool
	cmd := &cobra.Command{
		Use:   "run --from A --to B SOURCE",
		Short: "Mirror volume (or directory, an absolute path) SOURCE from cluster A to cluster B until stopped",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if from == "" || to == "" {
				return &usageError{cmd: cmd, err: fmt.Errorf("--from and --to are required")}
			}
			if interval <= 0 || lease < 0 {
				return &usageError{cmd: cmd, err: fmt.Errorf("--interval must be positive and --stage-lease not negative")}
			}
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			reg, stopMetrics, err := startMetrics(metricsAddr, "mirror", stderr, g.logger(stderr))
			if err != nil {
				return fail("mirror run "+a[0], err)
			}
			defer stopMetrics()
			m, err := mirror.New(mirror.Config{
				Metrics:    reg,
				Volume:     a[0],
				From:       mirror.Endpoint{Masters: splitList(from), TLSDir: orDefault(fromTLS, g.tlsDir)},
				To:         mirror.Endpoint{Masters: splitList(to), TLSDir: orDefault(toTLS, g.tlsDir)},
				Interval:   interval,
				StageLease: lease,
				KeepSource: keep,
				SyncFlush:  syncFlush,
				Logger:     g.logger(stderr),
				OnApplied: func(r mirror.Record) {
					fmt.Fprintf(stdout, "checkpoint %d applied: %s shipped in %s\n", r.Applied,
						formatSize(r.LastShipped), time.Duration(r.LastDuration).Round(time.Millisecond))
				},
			})
			if err != nil {
				return fail("mirror run "+a[0], err)
			}
			defer m.Close()
			if resync {
				n, err := m.Resync(cmd.Context())
				if err != nil {
					return fail("mirror run "+a[0], err)
				}
				fmt.Fprintf(stderr, "catena mirror: resync: %s at %s is at checkpoint %d again; shipping what changed at %s since\n", sourceKind(a[0]), to, n, from)
			}
			how := ""
			if syncFlush {
				how = ", flushes at the source wait for their checkpoint (--sync-flush)"
			}
			fmt.Fprintf(stderr, "catena mirror: mirroring %s from %s to %s every %s%s\n", sourceKind(a[0]), from, to, interval, how)
			return fail("mirror run "+a[0], m.Run(cmd.Context()))
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "cluster A's master address(es), comma-separated (the source)")
	cmd.Flags().StringVar(&to, "to", "", "cluster B's master address(es), comma-separated (the target)")
	cmd.Flags().StringVar(&fromTLS, "from-tls-dir", "", "TLS directory of a client or admin certificate of A's CA (default --tls-dir)")
	cmd.Flags().StringVar(&toTLS, "to-tls-dir", "", "TLS directory of an admin certificate of B's CA (default --tls-dir)")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "time between checkpoints")
	cmd.Flags().DurationVar(&lease, "stage-lease", 0, "lease of the staging overlay and of the writer session at B (0: 10m); a mirror restarted within it resumes its checkpoint")
	metricsFlag(cmd.Flags(), &metricsAddr)
	cmd.Flags().BoolVar(&resync, "resync", false, "fail back: --from is a promoted mirror, --to its old source; roll --to back to the last checkpoint both hold and ship only what changed since (blocks of a volume; entries and blocks of a tree)")
	cmd.Flags().BoolVar(&syncFlush, "sync-flush", false, "output buffering (Remus): a FLUSH or FUA write through catena nbd at A (for a tree: File.Sync through the client library with the flush barrier) returns only once a checkpoint holding it is applied at B (each flush starts one at once; while this mirror is down, such flushes wait up to a minute and fail)")
	cmd.Flags().BoolVar(&keep, "keep-source-checkpoints", false, "keep every checkpoint snapshot at A instead of releasing each once the next is applied (audits, tests)")
	return cmd
}

// sourceKind names a mirror's source: "volume VOL" or "directory DIR".
func sourceKind(src string) string {
	if mirror.IsTree(src) {
		return "directory " + src
	}
	return "volume " + src
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

func newMirrorStatusCmd(g *globals) *cobra.Command {
	var from, to, tlsDir string
	cmd := &cobra.Command{
		Use:   "status (--to B | --from A) SOURCE",
		Short: "A mirror's last applied checkpoint, its age (the recovery point), bytes pending and shipped, throughput",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if (from == "") == (to == "") {
				return &usageError{cmd: cmd, err: fmt.Errorf("give one of --to and --from")}
			}
			side, addrs := "target", to
			if from != "" {
				side, addrs = "source", from
			}
			c, err := client.New(client.Config{Masters: splitList(addrs), TLSDir: orDefault(tlsDir, g.tlsDir), Logger: g.debugLogger(cmd.ErrOrStderr())})
			if err != nil {
				return fail("mirror status "+a[0], err)
			}
			defer c.Close()
			r, err := mirror.ReadRecord(cmd.Context(), c, a[0])
			if err != nil {
				return fail("mirror status "+a[0], err)
			}
			var held []uint64
			if side == "source" {
				held, _ = mirror.Checkpoints(cmd.Context(), c, a[0]) // nil on error: status shows what it can
			}
			return printMirrorStatus(cmd.OutOrStdout(), g.json, side, r, held)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "read the status at cluster A (the source)")
	cmd.Flags().StringVar(&to, "to", "", "read the status at cluster B (the target)")
	cmd.Flags().StringVar(&tlsDir, "cluster-tls-dir", "", "TLS directory for that cluster (default --tls-dir)")
	cmd.Flags().BoolVar(&g.json, "json", false, "print JSON")
	return cmd
}

func printMirrorStatus(w io.Writer, asJSON bool, side string, r *mirror.Record, held []uint64) error {
	now := time.Now()
	if asJSON {
		j := mirrorStatusJSON{Volume: r.Volume, Side: side, Source: r.Source, Target: r.Target, Applied: r.Applied,
			AgeMs: r.Age(now).Milliseconds(), Pending: r.Pending, PendingBytes: r.PendingBytes, PendingShipped: r.PendingShipped,
			Checkpoints: r.Checkpoints, ShippedBytes: r.ShippedBytes, LastShipped: r.LastShipped,
			LastDurationMs: time.Duration(r.LastDuration).Milliseconds(), ThroughputBps: r.Throughput(), Fallbacks: r.Fallbacks,
			Promoted: r.Promoted, SyncFlush: r.SyncFlush, UpdatedAgoMs: now.Sub(time.Unix(0, r.Updated)).Milliseconds(), SourceCheckpoint: held}
		if r.AppliedAt != 0 {
			j.AppliedAt = timeString(time.Unix(0, r.AppliedAt))
		}
		return writeJSON(w, j)
	}
	fmt.Fprintf(w, "%s (%s side), from %s to %s\n", sourceKind(r.Volume), side, r.Source, r.Target)
	if r.Applied == 0 {
		fmt.Fprintf(w, "applied:    no checkpoint yet\n")
	} else {
		fmt.Fprintf(w, "applied:    checkpoint %d, taken %s ago (recovery point)\n", r.Applied, r.Age(now).Round(time.Millisecond))
	}
	if r.Pending != 0 {
		fmt.Fprintf(w, "pending:    checkpoint %d, %s shipped, %s to ship\n", r.Pending, formatSize(r.PendingShipped), formatSize(r.PendingBytes))
	}
	fmt.Fprintf(w, "shipped:    %s in %d checkpoints; last %s in %s (%s/s)\n", formatSize(r.ShippedBytes), r.Checkpoints,
		formatSize(r.LastShipped), time.Duration(r.LastDuration).Round(time.Millisecond), formatSize(int64(r.Throughput())))
	if r.Fallbacks > 0 {
		fmt.Fprintf(w, "fallbacks:  %d chunks shipped whole (no server could list their changed blocks)\n", r.Fallbacks)
	}
	if held != nil {
		fmt.Fprintf(w, "at source:  checkpoint snapshots %v\n", held)
	}
	if r.SyncFlush {
		fmt.Fprintf(w, "sync-flush: on, a flush at the source returns once its checkpoint is applied here\n")
	}
	if r.Promoted {
		fmt.Fprintf(w, "promoted:   yes, writable at the target and no longer mirrored\n")
	}
	fmt.Fprintf(w, "updated:    %s ago\n", now.Sub(time.Unix(0, r.Updated)).Round(time.Millisecond))
	return nil
}

func newMirrorPromoteCmd(g *globals) *cobra.Command {
	var at, tlsDir string
	cmd := &cobra.Command{
		Use:   "promote --at B SOURCE",
		Short: "Make the mirror of SOURCE at cluster B writable (after A is gone or fenced); it stays at its last applied checkpoint",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if at == "" {
				return &usageError{cmd: cmd, err: fmt.Errorf("--at is required")}
			}
			c, err := client.New(client.Config{Masters: splitList(at), TLSDir: orDefault(tlsDir, g.tlsDir), Logger: g.debugLogger(cmd.ErrOrStderr())})
			if err != nil {
				return fail("mirror promote "+a[0], err)
			}
			defer c.Close()
			r, err := mirror.Promote(cmd.Context(), c, a[0])
			if err != nil {
				return fail("mirror promote "+a[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s promoted at checkpoint %d: it is writable and no longer mirrored\n", sourceKind(a[0]), r.Applied)
			return nil
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "cluster B's master address(es), comma-separated")
	cmd.Flags().StringVar(&tlsDir, "cluster-tls-dir", "", "TLS directory of an admin certificate of B's CA (default --tls-dir)")
	return cmd
}

func newMirrorSyncCmd(g *globals) *cobra.Command {
	var from, to, fromTLS, toTLS string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "sync --from A --to B SOURCE",
		Short: "Return once every write to SOURCE at A acknowledged before it is in the checkpoint B is at",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if from == "" || to == "" {
				return &usageError{cmd: cmd, err: fmt.Errorf("--from and --to are required")}
			}
			ca, err := client.New(client.Config{Masters: splitList(from), TLSDir: orDefault(fromTLS, g.tlsDir)})
			if err != nil {
				return fail("mirror sync "+a[0], err)
			}
			defer ca.Close()
			cb, err := client.New(client.Config{Masters: splitList(to), TLSDir: orDefault(toTLS, g.tlsDir)})
			if err != nil {
				return fail("mirror sync "+a[0], err)
			}
			defer cb.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			start := time.Now()
			n, err := mirror.WaitApplied(ctx, ca, cb, a[0], nil, 20*time.Millisecond)
			if err != nil {
				return fail("mirror sync "+a[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s at checkpoint %d at %s after %s\n", sourceKind(a[0]), n, to, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "cluster A's master address(es) (the source)")
	cmd.Flags().StringVar(&to, "to", "", "cluster B's master address(es) (the target)")
	cmd.Flags().StringVar(&fromTLS, "from-tls-dir", "", "TLS directory for A (default --tls-dir)")
	cmd.Flags().StringVar(&toTLS, "to-tls-dir", "", "TLS directory for B (default --tls-dir)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long (a mirror must be running)")
	return cmd
}
