package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/api"
)

func newRebalanceCmd(g *globals) *cobra.Command {
	var status, asJSON bool
	cmd := &cobra.Command{
		Use:   "rebalance [--status]",
		Short: "Show how evenly chunkservers are used, and start a rebalancing round now",
		Long: `Rebalancing is automatic: while no chunk needs a repair, the master
moves replicas from the fullest chunkservers to the emptiest until every
server's used fraction is within 10% of the mean (or within 1% of its
capacity). Each move copies the replica to the receiver at the repair
rate, which joins the chain, then the giver leaves it: a chunk never has
fewer replicas than its factor, and clients only see epoch changes. At
most two moves run at a time (catena master --rebalance-concurrency; 0
turns rebalancing off).

catena admin rebalance starts a round now and prints the balance;
--status only prints it.`,
		Example: "  catena admin rebalance --status\n  catena admin rebalance --status --json",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			return fail("admin", callAdmin(cmd.Context(), g, func(ctx context.Context, c api.AdminClient) error {
				resp, err := c.Rebalance(ctx, &api.RebalanceRequest{Kick: !status})
				if err != nil {
					return err
				}
				if asJSON {
					return writeRebalanceJSON(cmd.OutOrStdout(), resp)
				}
				return printRebalance(cmd.OutOrStdout(), resp)
			}))
		},
	}
	cmd.Flags().BoolVar(&status, "status", false, "only print the balance and the moves under way")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

type rebalanceJSON struct {
	Balanced      bool                  `json:"balanced"`
	Enabled       bool                  `json:"enabled"`
	Mean          float64               `json:"mean"`
	Tolerance     float64               `json:"tolerance"`
	MinSpread     float64               `json:"min_spread"`
	MovesInFlight uint64                `json:"moves_in_flight"`
	MovesDone     uint64                `json:"moves_done"`
	MovedBytes    int64                 `json:"moved_bytes"`
	Servers       []rebalanceServerJSON `json:"servers"`
}

type rebalanceServerJSON struct {
	ID            uint64  `json:"id"`
	Name          string  `json:"name"`
	Addr          string  `json:"addr"`
	LoadBytes     int64   `json:"load_bytes"`
	CapacityBytes int64   `json:"capacity_bytes"`
	Fraction      float64 `json:"fraction"`
}

func writeRebalanceJSON(w io.Writer, r *api.RebalanceResponse) error {
	out := rebalanceJSON{Balanced: r.Balanced, Enabled: r.Enabled, Mean: r.Mean, Tolerance: r.Tolerance, MinSpread: r.MinSpread,
		MovesInFlight: r.MovesInFlight, MovesDone: r.MovesDone, MovedBytes: r.MovedBytes, Servers: []rebalanceServerJSON{}}
	for _, s := range r.Servers {
		out.Servers = append(out.Servers, rebalanceServerJSON{ID: s.Id, Name: s.Name, Addr: s.Addr, LoadBytes: s.LoadBytes, CapacityBytes: s.CapacityBytes, Fraction: s.Fraction})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func printRebalance(w io.Writer, r *api.RebalanceResponse) error {
	state := "balanced"
	switch {
	case !r.Enabled:
		state = "off"
		if !r.Balanced {
			state = "off (unbalanced)"
		}
	case !r.Balanced:
		state = "rebalancing"
	}
	fmt.Fprintf(w, "rebalance: %s; mean use %.1f%%, tolerance %.0f%% of it (or %.0f%% of capacity)\n",
		state, 100*r.Mean, 100*r.Tolerance, 100*r.MinSpread)
	fmt.Fprintf(w, "moves: %d under way, %d done (%s) since this master took office\n", r.MovesInFlight, r.MovesDone, formatSize(r.MovedBytes))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tADDRESS\tLOAD\tCAPACITY\tUSED")
	for _, s := range r.Servers {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%.1f%%\n", orDash(s.Name), s.Id, s.Addr, formatSize(s.LoadBytes), formatSize(s.CapacityBytes), 100*s.Fraction)
	}
	return tw.Flush()
}
