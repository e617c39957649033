package main

import (
	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
)

func newCatCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cat REMOTE...",
		Short: "Print files to stdout",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				ctx := cmd.Context()
				for _, p := range a {
					p = remotePath(p)
					f, info, err := openFile(ctx, c, p)
					if err != nil {
						return fail("cat "+p, err)
					}
					err = copyOut(ctx, f, info, cmd.OutOrStdout(), noProgress())
					f.Close()
					if err != nil {
						return fail("cat "+p, err)
					}
				}
				return nil
			})
		},
	}
}
