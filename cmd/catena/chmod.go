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
			return g.withClient(func(c *client.Client) error {
				for _, p := range a[1:] {
					if err := setAttr(cmd, c, "chmod", remotePath(p), client.SetAttrIn{Mode: &m}); err != nil {
						return err
					}
				}
				return nil
			})
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
			return g.withClient(func(c *client.Client) error {
				for _, p := range a[1:] {
					if err := setAttr(cmd, c, "chown", remotePath(p), in); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
}

// setAttr applies in to the inode at p.
func setAttr(cmd *cobra.Command, c *client.Client, op, p string, in client.SetAttrIn) error {
	fi, err := c.Stat(cmd.Context(), p)
	if err != nil {
		return fail(op+" "+p, err)
	}
	if _, err := c.SetAttr(cmd.Context(), fi.Inode, in); err != nil {
		return fail(op+" "+p, err)
	}
	return nil
}
