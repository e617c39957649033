package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
)

// statusJSON is "catena status --json": a stable interface.
type statusJSON struct {
	Masters      []masterJSON      `json:"masters"`
	Chunkservers []chunkserverJSON `json:"chunkservers"`
	Chunks       chunkStatsJSON    `json:"chunks"`
}

type masterJSON struct {
	ID     string `json:"id"`
	Addr   string `json:"addr"`
	Leader bool   `json:"leader"`
}

type chunkserverJSON struct {
	ID            uint64 `json:"id"`
	Name          string `json:"name"`
	Addr          string `json:"addr"`
	Alive         bool   `json:"alive"`
	FreeBytes     int64  `json:"free_bytes"`
	UsedBytes     int64  `json:"used_bytes"`
	CapacityBytes int64  `json:"capacity_bytes"`
	Draining      bool   `json:"draining"`
	Chains        uint64 `json:"chains"`
}

type chunkStatsJSON struct {
	Total           uint64             `json:"total"`
	UnderReplicated uint64             `json:"under_replicated"`
	OverReplicated  uint64             `json:"over_replicated"`
	ReReplicating   uint64             `json:"re_replicating"`
	Lost            uint64             `json:"lost"`
	RepairsDone     uint64             `json:"repairs_done"`
	RepairedBytes   int64              `json:"repaired_bytes"`
	SharedBytes     int64              `json:"shared_bytes"`
	ExclusiveBytes  int64              `json:"exclusive_bytes"`
	Problems        []chunkProblemJSON `json:"problems"`
}

type chunkProblemJSON struct {
	Handle     uint64   `json:"handle"`
	Reason     string   `json:"reason"`
	LostBlocks []int64  `json:"lost_blocks,omitempty"`
	Paths      []string `json:"paths"`
}

func newStatusCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster: masters, chunkservers, free space, chunk health",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				st, err := c.Status(cmd.Context())
				if err != nil {
					return fail("status", err)
				}
				if g.json {
					return fail("status", writeJSON(cmd.OutOrStdout(), toStatusJSON(st)))
				}
				return fail("status", printStatus(cmd.OutOrStdout(), st))
			})
		},
	}
	cmd.Flags().BoolVar(&g.json, "json", false, "print JSON")
	return cmd
}

func toStatusJSON(st *client.Status) statusJSON {
	out := statusJSON{
		Masters:      make([]masterJSON, 0, len(st.Masters)),
		Chunkservers: make([]chunkserverJSON, 0, len(st.Chunkservers)),
		Chunks: chunkStatsJSON{Total: st.ChunksTotal, UnderReplicated: st.ChunksUnderReplicated, OverReplicated: st.ChunksOverReplicated,
			ReReplicating: st.ChunksReReplicating, Lost: st.ChunksLost,
			RepairsDone: st.RepairsDone, RepairedBytes: st.RepairedBytes,
			SharedBytes: st.SharedBytes, ExclusiveBytes: st.ExclusiveBytes,
			Problems: make([]chunkProblemJSON, 0, len(st.Problems))},
	}
	for _, p := range st.Problems {
		out.Chunks.Problems = append(out.Chunks.Problems, chunkProblemJSON{Handle: p.Handle, Reason: p.Reason,
			LostBlocks: p.LostBlocks, Paths: p.Paths})
	}
	for _, m := range st.Masters {
		out.Masters = append(out.Masters, masterJSON{ID: m.ID, Addr: m.Addr, Leader: m.Leader})
	}
	for _, s := range st.Chunkservers {
		out.Chunkservers = append(out.Chunkservers, chunkserverJSON{
			ID: s.ID, Name: s.Name, Addr: s.Addr, Alive: s.Alive,
			FreeBytes: s.FreeBytes, UsedBytes: s.UsedBytes, CapacityBytes: s.CapacityBytes,
			Draining: s.Draining, Chains: s.Chains,
		})
	}
	return out
}

func printStatus(w io.Writer, st *client.Status) error {
	alive := 0
	var free, capacity int64
	for _, s := range st.Chunkservers {
		if s.Alive {
			alive++
			free += s.FreeBytes
			capacity += s.CapacityBytes
		}
	}
	fmt.Fprintf(w, "masters: %d\n", len(st.Masters))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tADDRESS\tROLE")
	for _, m := range st.Masters {
		role := "follower"
		if m.Leader {
			role = "leader"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", m.ID, m.Addr, role)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "chunkservers: %d alive, %d dead; %s free of %s\n",
		alive, len(st.Chunkservers)-alive, formatSize(free), formatSize(capacity))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tID\tADDRESS\tSTATE\tREPLICAS\tUSED\tFREE\tCAPACITY")
	for _, s := range st.Chunkservers {
		state := "alive"
		if !s.Alive {
			state = "DEAD"
		}
		if s.Draining {
			state += fmt.Sprintf(", draining (in %d chains)", s.Chains)
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", orDash(s.Name), s.ID, s.Addr, state, s.Replicas,
			formatSize(s.UsedBytes), formatSize(s.FreeBytes), formatSize(s.CapacityBytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "chunks: %d total, %d under-replicated, %d over-replicated, %d re-replicating, %d lost\n",
		st.ChunksTotal, st.ChunksUnderReplicated, st.ChunksOverReplicated, st.ChunksReReplicating, st.ChunksLost)
	fmt.Fprintf(w, "data: %s shared by snapshots or clones, %s exclusive (one replica's worth)\n",
		formatSize(st.SharedBytes), formatSize(st.ExclusiveBytes))
	if st.ChunksLost > 0 {
		fmt.Fprintln(w, "  LOST chunks have no live replica: bring their chunkservers back")
	}
	fmt.Fprintf(w, "repair: %d done, %s copied (since the master took office)\n", st.RepairsDone, formatSize(st.RepairedBytes))
	for _, p := range st.Problems {
		if len(p.Paths) == 0 {
			fmt.Fprintf(w, "  chunk %d: %s\n", p.Handle, p.Reason)
			continue
		}
		fmt.Fprintf(w, "  chunk %d: %s (%s)\n", p.Handle, p.Reason, strings.Join(p.Paths, ", "))
	}
	_, err := fmt.Fprintf(w, "namespace: %d files, %d directories\n", st.Files, st.Directories)
	return err
}

// orDash is s, or "-" when it is empty (a column must not be blank).
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
