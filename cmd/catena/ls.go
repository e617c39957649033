package main

import (
	"fmt"
	"io"
	"path"
	"sort"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
)

func newLsCmd(g *globals) *cobra.Command {
	var long bool
	cmd := &cobra.Command{
		Use:   "ls [-l] [PATH]",
		Short: "List a directory (default /)",
		Args:  args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			p := "/"
			if len(a) == 1 {
				p = a[0]
			}
			p = remotePath(p)
			return g.withClient(func(c *client.Client) error {
				ctx := cmd.Context()
				info, err := c.Stat(ctx, p)
				if err != nil {
					return fail("ls "+p, err)
				}
				entries := []client.FileInfo{*info}
				if info.IsDir {
					if entries, err = c.ReadDir(ctx, p); err != nil {
						return fail("ls "+p, err)
					}
				}
				sort.Slice(entries, func(i, j int) bool { return entryName(&entries[i]) < entryName(&entries[j]) })
				return fail("ls "+p, printEntries(cmd.OutOrStdout(), entries, long, g.json))
			})
		},
	}
	cmd.Flags().BoolVarP(&long, "long", "l", false, "show mode, replication, size and modification time")
	cmd.Flags().BoolVar(&g.json, "json", false, "print a JSON array")
	return cmd
}

// entryName is the name ls prints: the base name, "/" for the root.
func entryName(fi *client.FileInfo) string {
	if fi.Name != "" {
		return fi.Name
	}
	return path.Base(fi.Path)
}

func printEntries(w io.Writer, entries []client.FileInfo, long, asJSON bool) error {
	if asJSON {
		out := make([]fileJSON, 0, len(entries))
		for i := range entries {
			j := toFileJSON(&entries[i])
			j.Name = entryName(&entries[i])
			out = append(out, j)
		}
		return writeJSON(w, out)
	}
	if !long {
		for i := range entries {
			name := entryName(&entries[i])
			if entries[i].IsDir && name != "/" {
				name += "/"
			}
			if _, err := fmt.Fprintln(w, name); err != nil {
				return err
			}
		}
		return nil
	}
	type row struct{ mode, repl, size, mtime, name string }
	rows := make([]row, 0, len(entries))
	replW, sizeW := 0, 0
	for i := range entries {
		e := &entries[i]
		r := row{modeString(e), fmt.Sprint(e.Replication), fmt.Sprint(e.Size), timeString(e.ModTime), entryName(e)}
		if e.IsDir {
			r.repl, r.size = "-", "-"
			if r.name != "/" {
				r.name += "/"
			}
		}
		replW, sizeW = max(replW, len(r.repl)), max(sizeW, len(r.size))
		rows = append(rows, r)
	}
	for _, r := range rows {
		// Numbers align right, as ls does.
		if _, err := fmt.Fprintf(w, "%s  %*s  %*s  %s  %s\n", r.mode, replW, r.repl, sizeW, r.size, r.mtime, r.name); err != nil {
			return err
		}
	}
	return nil
}
