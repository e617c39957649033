package main

import (
	"context"
	"path"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
)

func newMvCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "mv SRC DST",
		Short: "Rename a file or directory (into DST when DST is a directory)",
		Args:  args(cobra.ExactArgs(2)),
		RunE: srcDstCmd(g, "mv", func(ctx context.Context, c *client.Client, src, dst string) error {
			return c.Rename(ctx, src, dst)
		}),
	}
}

// srcDstCmd runs do for "NAME SRC DST" commands that act as mv and cp
// do: SRC must exist, DST is DST/base(SRC) when DST is a directory.
func srcDstCmd(g *globals, name string, do func(ctx context.Context, c *client.Client, src, dst string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, a []string) error {
		src := remotePath(a[0])
		return g.withClient(func(c *client.Client) error {
			ctx := cmd.Context()
			if _, err := c.Stat(ctx, src); err != nil {
				return fail(name+" "+src, err)
			}
			dst, err := intoDir(ctx, c, a[1], path.Base(src))
			if err != nil {
				return fail(name+" "+src, err)
			}
			return fail(name+" "+src+" "+dst, do(ctx, c, src, dst))
		})
	}
}
