package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
)

// overlayJSON is one overlay as "catena overlay ls --json" prints it.
type overlayJSON struct {
	Name           string     `json:"name"`
	Volume         volumeJSON `json:"volume"`
	Attached       string     `json:"attached"`
	LeaseMs        int64      `json:"lease_ms"`
	Writer         bool       `json:"writer"`
	Owner          string     `json:"owner,omitempty"`
	RenewedAgoMs   int64      `json:"renewed_ago_ms"`
	ExclusiveBytes int64      `json:"exclusive_bytes"`
}

func newOverlayCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "overlay",
		Short: "Copiers' views of a shared volume: attach, ls, detach, promote",
		Long: `An overlay NAME of volume VOL is a copier's view of it: the volume as it
was when the overlay was attached, plus the copier's own writes, served by
"catena nbd" as export VOL+NAME. The volume's writer (export VOL) and its
copiers share every chunk nobody wrote since; the first write to a shared
chunk keeps the old bytes for the others by a local copy on the
chunkservers, so no copier ever waits for the writer nor the writer for a
copier. An overlay whose writer stops renewing it for its lease is
detached. Promote makes an overlay's view the volume (writer takeover).`,
	}
	var lease time.Duration
	var replace bool
	attach := &cobra.Command{
		Use:   "attach VOL NAME",
		Short: "Attach overlay NAME to volume VOL, as of now (no data is copied)",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if lease < 0 {
				return fmt.Errorf("catena overlay attach: --lease %s is negative", lease)
			}
			return g.withClient(func(c *client.Client) error {
				attach := c.AttachOverlay
				if replace {
					attach = c.ReattachOverlay
				}
				v, err := attach(cmd.Context(), a[0], a[1], lease)
				if err != nil {
					return fail("overlay attach "+a[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "overlay %s attached: serve it with catena nbd (export %s)\n", v.Name, v.Name)
				return nil
			})
		},
	}
	attach.Flags().BoolVar(&replace, "replace", false, "replace an overlay of that name (a copier's restart): its writer is fenced, its own space freed, and the new one sees the volume as of now")
	attach.Flags().DurationVar(&lease, "lease", 0, "detach the overlay after this long without a renewal by its writer (0: the master's default, 30s)")
	ls := &cobra.Command{
		Use:   "ls VOL",
		Short: "List a volume's overlays with their exclusive bytes",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				ovs, err := c.ListOverlays(cmd.Context(), a[0])
				if err != nil {
					return fail("overlay ls "+a[0], err)
				}
				if g.json {
					out := make([]overlayJSON, 0, len(ovs))
					for i := range ovs {
						o := &ovs[i]
						out = append(out, overlayJSON{Name: o.Name, Volume: toVolumeJSON(&o.Volume), Attached: timeString(o.Attached),
							LeaseMs: o.Lease.Milliseconds(), Writer: o.Writer, Owner: o.Owner, RenewedAgoMs: o.RenewedAgo.Milliseconds(),
							ExclusiveBytes: o.Volume.ExclusiveBytes})
					}
					return fail("overlay ls", writeJSON(cmd.OutOrStdout(), out))
				}
				return fail("overlay ls", printOverlays(cmd.OutOrStdout(), ovs))
			})
		},
	}
	ls.Flags().BoolVar(&g.json, "json", false, "print a JSON array")
	detach := &cobra.Command{
		Use:   "detach VOL NAME...",
		Short: "Detach overlays; their writers are fenced and the space only they held is freed",
		Args:  args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				for _, name := range a[1:] {
					if err := c.DetachOverlay(cmd.Context(), a[0], name); err != nil {
						return fail("overlay detach "+a[0]+" "+name, err)
					}
				}
				return nil
			})
		},
	}
	promote := &cobra.Command{
		Use:   "promote VOL NAME",
		Short: "Make overlay NAME's view volume VOL's content; VOL's writer is fenced, NAME's writer continues as VOL's",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				start := time.Now()
				v, err := c.PromoteOverlay(cmd.Context(), a[0], a[1])
				if err != nil {
					return fail("overlay promote "+a[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "overlay %s promoted: it is volume %s now (%s); the former writer is fenced\n",
					client.OverlayName(a[0], a[1]), v.Name, time.Since(start).Round(time.Millisecond))
				return nil
			})
		},
	}
	cmd.AddCommand(attach, ls, detach, promote)
	return cmd
}

func printOverlays(w io.Writer, ovs []client.OverlayInfo) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tEXPORT\tEXCLUSIVE\tSHARED\tWRITER\tRENEWED\tLEASE\tATTACHED")
	for _, o := range ovs {
		writer := "-"
		if o.Writer {
			writer = o.Owner
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s ago\t%s\t%s\n", o.Name, o.Volume.Name, formatSize(o.Volume.ExclusiveBytes),
			formatSize(o.Volume.SharedBytes), writer, o.RenewedAgo.Round(time.Second), o.Lease, timeString(o.Attached))
	}
	return tw.Flush()
}
