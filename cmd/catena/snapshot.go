package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
)

// snapshotJSON is "catena snapshot ls --json": a stable interface.
type snapshotJSON struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	Mtime string `json:"mtime"`
}

func newSnapshotCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Read-only, point-in-time copies of directory trees and files (DIR/.snapshot/NAME)",
		Args:  args(cobra.NoArgs),
	}
	cmd.AddCommand(newSnapshotCreateCmd(g), newSnapshotLsCmd(g), newSnapshotRmCmd(g))
	return cmd
}

func newSnapshotCreateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "create PATH NAME",
		Short: "Snapshot the tree at PATH (read at PATH/.snapshot/NAME; a file's at its directory's .snapshot/NAME/FILE)",
		Long: `Snapshot the directory tree (or file) at PATH as NAME, without copying
data: its time grows with the files and chunks of the tree, never with bytes.
Every write acknowledged before the command returns is in the snapshot; no
write begun after it is. Read it with every read command and through the
mount at PATH/.snapshot/NAME (a file's snapshot: DIR/.snapshot/NAME/FILE);
it cannot be changed. "catena cp" makes a writable copy of it.`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			p := remotePath(a[0])
			return g.withClient(func(c *client.Client) error {
				fi, err := c.Snapshot(cmd.Context(), p, a[1])
				if err != nil {
					return fail("snapshot create "+p, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "snapshot %s\n", fi.Path)
				return nil
			})
		},
	}
}

func newSnapshotLsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ls PATH",
		Short: "List the snapshots of a directory (or of a file's directory)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			p := remotePath(a[0])
			return g.withClient(func(c *client.Client) error {
				l, err := c.Snapshots(cmd.Context(), p)
				if err != nil {
					return fail("snapshot ls "+p, err)
				}
				if g.json {
					out := make([]snapshotJSON, 0, len(l))
					for _, fi := range l {
						out = append(out, snapshotJSON{Name: fi.Name, Path: fi.Path, Mtime: timeString(fi.ModTime)})
					}
					return fail("snapshot ls", writeJSON(cmd.OutOrStdout(), out))
				}
				return fail("snapshot ls", printSnapshots(cmd.OutOrStdout(), l))
			})
		},
	}
	cmd.Flags().BoolVar(&g.json, "json", false, "print a JSON array")
	return cmd
}

func printSnapshots(w io.Writer, l []client.FileInfo) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPATH")
	for _, fi := range l {
		fmt.Fprintf(tw, "%s\t%s\n", fi.Name, fi.Path)
	}
	return tw.Flush()
}

func newSnapshotRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm PATH NAME...",
		Short: "Remove snapshots of PATH; the space only they held is freed",
		Args:  args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			p := remotePath(a[0])
			return g.withClient(func(c *client.Client) error {
				for _, name := range a[1:] {
					if err := c.RemoveSnapshot(cmd.Context(), p, name); err != nil {
						return fail("snapshot rm "+p+" "+name, err)
					}
				}
				return nil
			})
		},
	}
}

func newCpCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy a file or a whole tree without copying data (both sides writable and independent)",
		Long: `Copy the file or directory tree at SRC to DST (into DST when it is a
directory) as a clone: no data is read or written, the copy shares every
chunk with SRC until either side writes it, and then only the written
64 KiB blocks are copied, on the chunkservers. SRC may be in a snapshot
(catena cp DIR/.snapshot/NAME/f DIR/f restores a file). A clone made by a
user other than an admin is that user's.`,
		Args: args(cobra.ExactArgs(2)),
		RunE: srcDstCmd(g, "cp", func(ctx context.Context, c *client.Client, src, dst string) error {
			_, err := c.Clone(ctx, src, dst)
			return err
		}),
	}
}

func newVolumeSnapshotCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot VOL NAME",
		Short: "Snapshot a volume as read-only volume VOL@NAME (\"catena nbd\" serves it read-only)",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				v, err := c.SnapshotVolume(cmd.Context(), a[0], a[1])
				if err != nil {
					return fail("volume snapshot "+a[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "snapshot %s\n", v.Name)
				return nil
			})
		},
	}
	ls := &cobra.Command{
		Use:   "ls VOL",
		Short: "List a volume's snapshots",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				vs, err := c.VolumeSnapshots(cmd.Context(), a[0])
				if err != nil {
					return fail("volume snapshot ls "+a[0], err)
				}
				if g.json {
					out := make([]volumeJSON, 0, len(vs))
					for i := range vs {
						out = append(out, toVolumeJSON(&vs[i]))
					}
					return fail("volume snapshot ls", writeJSON(cmd.OutOrStdout(), out))
				}
				return fail("volume snapshot ls", printVolumes(cmd.OutOrStdout(), vs))
			})
		},
	}
	ls.Flags().BoolVar(&g.json, "json", false, "print a JSON array")
	rm := &cobra.Command{
		Use:   "rm VOL NAME...",
		Short: "Remove snapshots of a volume; the space only they held is freed",
		Args:  args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				for _, name := range a[1:] {
					if err := c.RemoveVolumeSnapshot(cmd.Context(), a[0], name); err != nil {
						return fail("volume snapshot rm "+a[0]+" "+name, err)
					}
				}
				return nil
			})
		},
	}
	cmd.AddCommand(ls, rm)
	return cmd
}

func newVolumeCloneCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "clone SRC NEWVOL",
		Short: "Make writable volume NEWVOL from a volume or snapshot (VOL@NAME) without copying data",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				v, err := c.CloneVolume(cmd.Context(), a[0], a[1])
				if err != nil {
					return fail("volume clone "+a[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created volume %s from %s: %s\n", v.Name, a[0], formatSize(v.Size))
				return nil
			})
		},
	}
}

func newVolumeRollbackCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rollback VOL NAME",
		Short: "Give a volume its snapshot's content back (stop its writers first)",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				v, err := c.RollbackVolume(cmd.Context(), a[0], a[1])
				if err != nil {
					return fail("volume rollback "+a[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "volume %s rolled back to %s@%s: %s\n", v.Name, a[0], a[1], formatSize(v.Size))
				return nil
			})
		},
	}
}
