package main

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/fusefs"
)

func newMountCmds(g *globals) []*cobra.Command {
	var timeout time.Duration
	var allowOther bool
	var metricsAddr string
	mount := &cobra.Command{
		Use:   "mount [--master ADDR] MOUNTPOINT [--timeout D] [--allow-other]",
		Short: "Mount the namespace with FUSE until unmounted, SIGINT or SIGTERM",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := g.checkTransport(g.masterList()); err != nil {
				return fail("mount", err)
			}
			ccfg := g.clientConfig(cmd.ErrOrStderr())
			ccfg.OpTimeout = timeout
			c, err := client.New(ccfg)
			if err != nil {
				return fail("mount", err)
			}
			defer c.Close()
			ctx := cmd.Context()
			err = g.waitForMaster(ctx, cmd.ErrOrStderr(), "mount", func(ctx context.Context) error {
				_, err := c.Stat(ctx, "/")
				return err
			})
			if ctx.Err() != nil {
				return nil // stopped while waiting: nothing was mounted
			}
			if err != nil {
				return fail("mount", err)
			}
			log := g.serverLogger(cmd.ErrOrStderr())
			reg, stopMetrics, err := startMetrics(metricsAddr, "mount", cmd.OutOrStdout(), log)
			if err != nil {
				return fail("mount", err)
			}
			defer stopMetrics()
			srv, err := fusefs.Mount(a[0], fusefs.Config{Client: c, Logger: log,
				AllowOther: allowOther, Debug: g.verbose, Metrics: reg})
			if err != nil {
				return fail("mount", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "catena mount: %s mounted (catena umount %s to stop)\n", a[0], a[0])
			done := make(chan struct{})
			go func() { srv.Wait(); close(done) }()
			select {
			case <-done:
				return nil
			case <-cmd.Context().Done():
			}
			// A busy mount refuses a plain unmount; retry lazily so the
			// process can exit.
			if err := srv.Unmount(); err != nil {
				if out, lerr := exec.Command("fusermount3", "-u", "-z", a[0]).CombinedOutput(); lerr != nil {
					return fail("mount", fmt.Errorf("unmount %s: %v; %s", a[0], err, out))
				}
			}
			<-done
			return nil
		},
	}
	mount.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long an operation waits for a lost master or chunkserver before EIO")
	mount.Flags().BoolVar(&allowOther, "allow-other", false, "let other users use the mount")
	metricsFlag(mount.Flags(), &metricsAddr)
	umount := &cobra.Command{
		Use:   "umount MOUNTPOINT",
		Short: "Unmount a catena mount",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if out, err := exec.Command("fusermount3", "-u", a[0]).CombinedOutput(); err != nil {
				return fail("umount", fmt.Errorf("%v: %s", err, out))
			}
			return nil
		},
	}
	return []*cobra.Command{mount, umount}
}
