package main

import (
	"bufio"
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
)

func newCatCmd(g *globals) *cobra.Command {
	var records bool
	cmd := &cobra.Command{
		Use:   "cat [--records] REMOTE...",
		Short: "Print files to stdout",
		Long: `Print files to stdout. With --records, print the records of files
written by catena append, one per line, whole and each once (the zeros
a chunk may end with and anything that is not a whole record are
skipped).`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				ctx := cmd.Context()
				for _, p := range a {
					p = remotePath(p)
					f, info, err := openFile(ctx, c, p)
					if err != nil {
						return fail("cat "+p, err)
					}
					if records {
						err = printRecords(ctx, f, cmd.OutOrStdout())
					} else {
						err = copyOut(ctx, f, info, cmd.OutOrStdout(), noProgress())
					}
					f.Close()
					if err != nil {
						return fail("cat "+p, err)
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&records, "records", false, "print the records of a file written by catena append, one per line")
	return cmd
}

// printRecords writes the records of f to w, each followed by a newline.
func printRecords(ctx context.Context, f *client.File, w io.Writer) error {
	rr, err := f.Records(ctx)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	for {
		rec, err := rr.Next()
		if err == io.EOF {
			return bw.Flush()
		}
		if err != nil {
			return err
		}
		bw.Write(rec.Data)
		if err := bw.WriteByte('\n'); err != nil {
			return err
		}
	}
}
