package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
)

// statJSON is "catena stat --json": a stable interface.
type statJSON struct {
	Path        string      `json:"path"`
	Size        int64       `json:"size"`
	ChunkSize   int64       `json:"chunk_size"`
	Replication int         `json:"replication"`
	Mode        string      `json:"mode"`
	UID         uint32      `json:"uid"`
	GID         uint32      `json:"gid"`
	Mtime       string      `json:"mtime"`
	Type        string      `json:"type"`
	Chunks      []chunkJSON `json:"chunks"`
}

type chunkJSON struct {
	Index  int64        `json:"index"`
	Handle uint64       `json:"handle"`
	Epoch  uint64       `json:"epoch"`
	Chain  []serverJSON `json:"chain"` // head first
}

type serverJSON struct {
	ID   uint64 `json:"id"`
	Name string `json:"name,omitempty"`
	Addr string `json:"addr"`
}

func newStatCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stat PATH",
		Short: "Show a file's metadata and its chunks' chains",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			p := remotePath(a[0])
			return g.withClient(func(c *client.Client) error {
				ctx := cmd.Context()
				info, err := c.Stat(ctx, p)
				if err != nil {
					return fail("stat "+p, err)
				}
				var chunks []client.ChunkInfo
				if !info.IsDir {
					if info, chunks, err = c.StatChunks(ctx, p); err != nil {
						return fail("stat "+p, err)
					}
				}
				if g.json {
					return fail("stat "+p, writeJSON(cmd.OutOrStdout(), toStatJSON(info, chunks)))
				}
				return fail("stat "+p, printStat(cmd.OutOrStdout(), info, chunks))
			})
		},
	}
	cmd.Flags().BoolVar(&g.json, "json", false, "print JSON")
	return cmd
}

func toStatJSON(info *client.FileInfo, chunks []client.ChunkInfo) statJSON {
	f := toFileJSON(info)
	out := statJSON{
		Path: f.Path, Size: f.Size, ChunkSize: f.ChunkSize, Replication: f.Replication,
		Mode: f.Mode, Mtime: f.Mtime, Type: f.Type, UID: info.Uid, GID: info.Gid,
		Chunks: make([]chunkJSON, 0, len(chunks)),
	}
	for _, ch := range chunks {
		cj := chunkJSON{Index: ch.Index, Handle: ch.Handle, Epoch: ch.Epoch, Chain: make([]serverJSON, 0, len(ch.Chain))}
		for _, s := range ch.Chain {
			cj.Chain = append(cj.Chain, serverJSON{ID: s.ID, Name: s.Name, Addr: s.Addr})
		}
		out.Chunks = append(out.Chunks, cj)
	}
	return out
}

func printStat(w io.Writer, info *client.FileInfo, chunks []client.ChunkInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "path:\t%s\n", info.Path)
	fmt.Fprintf(tw, "type:\t%s\n", fileType(info))
	fmt.Fprintf(tw, "mode:\t%s\n", modeString(info))
	fmt.Fprintf(tw, "owner:\t%d:%d\n", info.Uid, info.Gid)
	fmt.Fprintf(tw, "modified:\t%s\n", timeString(info.ModTime))
	if !info.IsDir {
		fmt.Fprintf(tw, "size:\t%d (%s)\n", info.Size, formatSize(info.Size))
		fmt.Fprintf(tw, "chunk size:\t%s\n", formatSize(info.ChunkSize))
		fmt.Fprintf(tw, "replication:\t%d\n", info.Replication)
		fmt.Fprintf(tw, "chunks:\t%d allocated\n", len(chunks))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(chunks) == 0 {
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  INDEX\tHANDLE\tEPOCH\tCHAIN (head -> tail)")
	for _, ch := range chunks {
		members := make([]string, 0, len(ch.Chain))
		for _, s := range ch.Chain {
			who := s.Name
			if who == "" {
				who = strconv.FormatUint(s.ID, 10)
			}
			members = append(members, who+"@"+s.Addr)
		}
		fmt.Fprintf(tw, "  %d\t%d\t%d\t%s\n", ch.Index, ch.Handle, ch.Epoch, strings.Join(members, " -> "))
	}
	return tw.Flush()
}
