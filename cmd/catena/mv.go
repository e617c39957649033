package main

import (
	"path"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
)

func newMvCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "mv SRC DST",
		Short: "Rename a file or directory (into DST when DST is a directory)",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			src := remotePath(a[0])
			return g.withClient(func(c *client.Client) error {
				ctx := cmd.Context()
				if _, err := c.Stat(ctx, src); err != nil {
					return fail("mv "+src, err)
				}
				dst, err := intoDir(ctx, c, a[1], path.Base(src))
				if err != nil {
					return fail("mv "+src, err)
				}
				return fail("mv "+src+" "+dst, c.Rename(ctx, src, dst))
			})
		},
	}
}
