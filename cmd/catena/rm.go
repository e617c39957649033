package main

import (
	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
)

func newRmCmd(g *globals) *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:   "rm [-r] PATH...",
		Short: "Remove files and empty directories (-r: directories with their contents)",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				for _, p := range a {
					p = remotePath(p)
					if p == "/" {
						return fail("rm /", errRemoveRoot)
					}
					var err error
					if recursive {
						// RemoveAll succeeds on a missing path; rm -r should not.
						if _, err = c.Stat(cmd.Context(), p); err == nil {
							err = c.RemoveAll(cmd.Context(), p)
						}
					} else {
						err = c.Remove(cmd.Context(), p)
					}
					if err != nil {
						return fail("rm "+p, err)
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "remove directories and their contents")
	return cmd
}
