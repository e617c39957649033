package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
)

func newChmodCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "chmod MODE PATH...",
		Short:   "Change permission bits (octal MODE, as chmod 750); the owner or root",
		Example: "  catena chmod 700 /home/alice",
		Args:    args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			mode, err := strconv.ParseUint(a[0], 8, 32)
			if err != nil || mode > 0o7777 {
				return &usageError{cmd: cmd, err: fmt.Errorf("mode %q: want octal permission bits, 0 to 7777", a[0])}
			}
			m := uint32(mode)
			return setAttrs(cmd, g, "chmod", a[1:], client.SetAttrIn{Mode: &m})
		},
	}
}

func newChownCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "chown UID[:GID] PATH...",
		Short:   "Change owner and group (numeric ids); root only, or the owner for a group of its own",
		Example: "  catena chown 1000:1000 /home/alice",
		Args:    args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			uidS, gidS, hasGID := strings.Cut(a[0], ":")
			var in client.SetAttrIn
			if uidS != "" {
				uid, err := strconv.ParseUint(uidS, 10, 32)
				if err != nil {
					return &usageError{cmd: cmd, err: fmt.Errorf("uid %q: want a number", uidS)}
				}
				u := uint32(uid)
				in.Uid = &u
			}
			if hasGID {
				gid, err := strconv.ParseUint(gidS, 10, 32)
				if err != nil {
					return &usageError{cmd: cmd, err: fmt.Errorf("gid %q: want a number", gidS)}
				}
				g := uint32(gid)
				in.Gid = &g
			}
			if in.Uid == nil && in.Gid == nil {
				return &usageError{cmd: cmd, err: fmt.Errorf("give UID, UID:GID or :GID")}
			}
			return setAttrs(cmd, g, "chown", a[1:], in)
		},
	}
}

// setAttrs applies in to the inode at each of paths.
func setAttrs(cmd *cobra.Command, g *globals, op string, paths []string, in client.SetAttrIn) error {
	return g.withClient(func(c *client.Client) error {
		for _, p := range paths {
			p = remotePath(p)
			fi, err := c.Stat(cmd.Context(), p)
			if err == nil {
				_, err = c.SetAttr(cmd.Context(), fi.Inode, in)
			}
			if err != nil {
				return fail(op+" "+p, err)
			}
		}
		return nil
	})
}
