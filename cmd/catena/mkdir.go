package main

import (
	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
)

func newMkdirCmd(g *globals) *cobra.Command {
	var parents bool
	cmd := &cobra.Command{
		Use:   "mkdir [-p] PATH...",
		Short: "Create directories",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				for _, p := range a {
					p = remotePath(p)
					var err error
					if parents {
						err = c.MkdirAll(cmd.Context(), p, 0o755)
					} else {
						err = c.Mkdir(cmd.Context(), p, 0o755)
					}
					if err != nil {
						return fail("mkdir "+p, err)
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&parents, "parents", "p", false, "create missing parents; no error if the directory exists")
	return cmd
}
