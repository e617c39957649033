package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/meta"
)

func newSetrepCmd(g *globals) *cobra.Command {
	var volumes bool
	cmd := &cobra.Command{
		Use:   "setrep N PATH...",
		Short: "Change the replication factor of files (every file below a directory) or, with --volume, of volumes",
		Long: `Change the replication factor of files, of every file below a directory, or
of volumes (--volume, root only), online. It returns once the new factor is
recorded; the masters then copy chunks to new servers, or take the surplus
out of their chains, while clients keep reading and writing. catena status
shows the chunks not yet at their factor. Raising it past the number of
live chunkservers leaves the chunks under-replicated until more join.`,
		Example: "  catena setrep 5 /important\n  catena setrep 2 --volume scratch",
		Args:    args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			n, err := strconv.Atoi(a[0])
			if err != nil || n < 1 || n > meta.MaxReplication {
				return &usageError{cmd: cmd, err: fmt.Errorf("replication %q: want a number from 1 to %d", a[0], meta.MaxReplication)}
			}
			return g.withClient(func(c *client.Client) error {
				ctx := cmd.Context()
				files := 0
				for _, p := range a[1:] {
					if volumes {
						if _, err := c.SetVolumeReplication(ctx, p, n); err != nil {
							return fail("setrep "+p, err)
						}
						files++
						continue
					}
					k, err := setrepTree(ctx, c, remotePath(p), n, true)
					if err != nil {
						return fail("setrep "+p, err)
					}
					files += k
				}
				what := "files"
				if volumes {
					what = "volumes"
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "replication %d set on %d %s\n", n, files, what)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&volumes, "volume", false, "the arguments are volume names")
	return cmd
}

// setrepTree sets replication n on the file at p, or on every file
// below the directory at p, and counts them. Below a directory, what
// holds no data (symlinks, special files) is passed over; named, it is
// an error.
func setrepTree(ctx context.Context, c *client.Client, p string, n int, named bool) (int, error) {
	fi, err := c.Stat(ctx, p)
	if err != nil {
		return 0, err
	}
	if !fi.IsDir {
		_, err := c.SetReplication(ctx, p, n)
		if !named && errors.Is(err, client.ErrInvalid) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return 1, nil
	}
	entries, err := c.ReadDir(ctx, p)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, e := range entries {
		k, err := setrepTree(ctx, c, path.Join(p, e.Name), n, false)
		if err != nil {
			return total, err
		}
		total += k
	}
	return total, nil
}
