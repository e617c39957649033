package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/mirror"
	"github.com/catena-io/catena/internal/nbd"
)

func newNbdCmd(g *globals) *cobra.Command {
	var listen, metricsAddr string
	var volumes []string
	var lease time.Duration
	var takeOver bool
	var writerID string
	cmd := &cobra.Command{
		Use:   "nbd [--listen ADDR] [--volume NAME ...]",
		Short: "Serve volumes as NBD exports (every volume unless --volume is given)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := g.checkTransport(g.masterList()); err != nil {
				return fail("nbd", err)
			}
			c, err := client.New(g.clientConfig(cmd.ErrOrStderr()))
			if err != nil {
				return fail("nbd", err)
			}
			defer c.Close()
			ctx := cmd.Context()
			err = g.waitForMaster(ctx, cmd.ErrOrStderr(), "nbd", func(ctx context.Context) error {
				_, err := c.ListVolumes(ctx)
				return err
			})
			if ctx.Err() != nil {
				return nil // stopped while waiting
			}
			if err != nil {
				return fail("nbd", err)
			}
			for _, v := range volumes {
				if _, err := c.VolumeInfo(ctx, v); err != nil {
					return fail("nbd", err)
				}
			}
			// A volume under a --sync-flush mirror: a FLUSH (or FUA)
			// returns once its checkpoint is applied at the target.
			c.SetFlushBarrier(mirror.NewFlushBarrier(c, nil).Wait)
			exports := nbd.NewVolumeExports(c, volumes)
			defer exports.Close()
			log := g.serverLogger(cmd.ErrOrStderr())
			if writerID == "" {
				host, _ := os.Hostname()
				writerID = "nbd@" + host + "/" + listen
			}
			exports.SetWriter(client.WriterOptions{Lease: lease, TakeOver: takeOver, Owner: writerID, OnFenced: func(err error) {
				log.Warn("catena nbd: fenced: this process may no longer write the volume", "err", err)
			}})
			reg, stopMetrics, err := startMetrics(metricsAddr, "nbd", cmd.OutOrStdout(), log)
			if err != nil {
				return fail("nbd", err)
			}
			defer stopMetrics()
			srv, err := nbd.NewServer(nbd.Config{Exports: exports, Logger: log, Metrics: reg})
			if err != nil {
				return fail("nbd", err)
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return fail("nbd", localErr(err))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "catena nbd: serving on %s (try: nbdinfo --list nbd://%s)\n", l.Addr(), l.Addr())
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(l) }()
			select {
			case <-ctx.Done():
				srv.Close()
				<-errc
				return nil
			case err := <-errc:
				srv.Close()
				if errors.Is(err, nbd.ErrServerClosed) {
					return nil
				}
				return fail("nbd", err)
			}
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:10809", "address to listen on")
	cmd.Flags().StringArrayVar(&volumes, "volume", nil, "serve only this volume (repeatable)")
	cmd.Flags().DurationVar(&lease, "lease", 0, "writer lease: another catena nbd may take a volume over after this long without renewals (0: the master's default, 30s; an overlay's own lease wins)")
	cmd.Flags().StringVar(&writerID, "writer-id", "", "this writer's identity: a catena nbd restarted with the same one takes its volumes back at once (default nbd@HOST/LISTEN)")
	cmd.Flags().BoolVar(&takeOver, "take-over", false, "fence a volume's live writer instead of refusing the export (for a writer known dead, e.g. after its host restarted)")
	metricsFlag(cmd.Flags(), &metricsAddr)
	return cmd
}
