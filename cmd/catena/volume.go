package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
)

// volumeJSON is "catena volume ls|info --json": a stable interface.
type volumeJSON struct {
	Name            string `json:"name"`
	Size            int64  `json:"size"`
	Replication     int    `json:"replication"`
	ChunkSize       int64  `json:"chunk_size"`
	AllocatedChunks int64  `json:"allocated_chunks"`
	Mtime           string `json:"mtime"`
	ReadOnly        bool   `json:"read_only"`
	SharedBytes     int64  `json:"shared_bytes"`
	ExclusiveBytes  int64  `json:"exclusive_bytes"`
}

func toVolumeJSON(v *client.VolumeInfo) volumeJSON {
	return volumeJSON{Name: v.Name, Size: v.Size, Replication: v.Replication, ChunkSize: v.ChunkSize,
		AllocatedChunks: v.AllocatedChunks, Mtime: timeString(v.ModTime), ReadOnly: v.ReadOnly,
		SharedBytes: v.SharedBytes, ExclusiveBytes: v.ExclusiveBytes}
}

func newVolumeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "Manage block volumes (served over NBD by \"catena nbd\")",
		Args:  args(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, a []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newVolumeCreateCmd(g), newVolumeLsCmd(g), newVolumeInfoCmd(g), newVolumeRmCmd(g), newVolumeResizeCmd(g),
		newVolumeSnapshotCmd(g), newVolumeCloneCmd(g), newVolumeRollbackCmd(g))
	return cmd
}

func newVolumeCreateCmd(g *globals) *cobra.Command {
	var repl int
	var chunk string
	cmd := &cobra.Command{
		Use:   "create NAME SIZE",
		Short: "Create a sparse volume of SIZE bytes (units: K, M, G, T; a multiple of 512)",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			size, err := parseSize(a[1])
			if err != nil {
				return &usageError{cmd: cmd, err: err}
			}
			var cs int64
			if chunk != "" {
				if cs, err = parseSize(chunk); err != nil {
					return &usageError{cmd: cmd, err: err}
				}
			}
			return g.withClient(func(c *client.Client) error {
				v, err := c.CreateVolume(cmd.Context(), a[0], size, client.VolumeOptions{Replication: repl, ChunkSize: cs})
				if err != nil {
					return fail("volume create "+a[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created volume %s: %s, replication %d, chunk size %s\n",
					v.Name, formatSize(v.Size), v.Replication, formatSize(v.ChunkSize))
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&repl, "replication", 0, "replicas per chunk (default 3)")
	cmd.Flags().StringVar(&chunk, "chunk-size", "", "chunk size, a power of two in [1M, 1G] (default 64M)")
	return cmd
}

func newVolumeLsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List volumes",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				vs, err := c.ListVolumes(cmd.Context())
				if err != nil {
					return fail("volume ls", err)
				}
				if g.json {
					out := make([]volumeJSON, 0, len(vs))
					for i := range vs {
						out = append(out, toVolumeJSON(&vs[i]))
					}
					return fail("volume ls", writeJSON(cmd.OutOrStdout(), out))
				}
				return fail("volume ls", printVolumes(cmd.OutOrStdout(), vs))
			})
		},
	}
	cmd.Flags().BoolVar(&g.json, "json", false, "print a JSON array")
	return cmd
}

func printVolumes(w io.Writer, vs []client.VolumeInfo) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tREPLICATION\tCHUNK SIZE\tALLOCATED")
	for _, v := range vs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", v.Name, formatSize(v.Size), v.Replication,
			formatSize(v.ChunkSize), formatSize(v.AllocatedChunks*v.ChunkSize))
	}
	return tw.Flush()
}

func newVolumeInfoCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "info NAME",
		Short: "Show a volume's size, replication and allocated chunks",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				v, err := c.VolumeInfo(cmd.Context(), a[0])
				if err != nil {
					return fail("volume info "+a[0], err)
				}
				if g.json {
					return fail("volume info", writeJSON(cmd.OutOrStdout(), toVolumeJSON(v)))
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "name:         %s\nsize:         %s (%d bytes)\nreplication:  %d\nchunk size:   %s\nallocated:    %d chunks\nshared:       %s (with snapshots or clones)\nexclusive:    %s\nmodified:     %s\n",
					v.Name, formatSize(v.Size), v.Size, v.Replication, formatSize(v.ChunkSize), v.AllocatedChunks,
					formatSize(v.SharedBytes), formatSize(v.ExclusiveBytes), timeString(v.ModTime))
				if v.ReadOnly {
					fmt.Fprintln(w, "read-only:    yes (a snapshot)")
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&g.json, "json", false, "print JSON")
	return cmd
}

func newVolumeRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove volumes and free their space",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				for _, n := range a {
					if err := c.RemoveVolume(cmd.Context(), n); err != nil {
						return fail("volume rm "+n, err)
					}
				}
				return nil
			})
		},
	}
}

func newVolumeResizeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "resize NAME SIZE",
		Short: "Grow a volume to SIZE (shrinking is refused); NBD clients see it on reconnect",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			size, err := parseSize(a[1])
			if err != nil {
				return &usageError{cmd: cmd, err: err}
			}
			return g.withClient(func(c *client.Client) error {
				v, err := c.ResizeVolume(cmd.Context(), a[0], size)
				if err != nil {
					return fail("volume resize "+a[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "volume %s: %s\n", v.Name, formatSize(v.Size))
				return nil
			})
		},
	}
}
