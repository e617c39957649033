package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
)

func newPutCmd(g *globals) *cobra.Command {
	var chunkSize string
	var replication int
	cmd := &cobra.Command{
		Use:   "put [--chunk-size SIZE] [--replication N] LOCAL REMOTE",
		Short: "Copy a local file (or stdin, as -) into Catena, replacing an existing file",
		Example: "  catena put ./photo.jpg /photos/\n" +
			"  tar c . | catena put --chunk-size 16MiB - /backup.tar",
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			opts := client.CreateOptions{Replication: replication, Overwrite: true}
			if chunkSize != "" {
				n, err := parseSize(chunkSize)
				if err != nil {
					return &usageError{cmd: cmd, err: err}
				}
				opts.ChunkSize = n
			}
			if replication < 0 {
				return &usageError{cmd: cmd, err: fmt.Errorf("--replication must be positive")}
			}
			// Local mistakes first: they need no cluster.
			if err := checkLocal(a[0]); err != nil {
				return err
			}
			return g.withClient(func(c *client.Client) error {
				return put(cmd.Context(), c, a[0], a[1], opts, cmd.InOrStdin(), cmd.ErrOrStderr())
			})
		},
	}
	cmd.Flags().StringVar(&chunkSize, "chunk-size", "", "chunk size of a new file, e.g. 16MiB (default 64MiB)")
	cmd.Flags().IntVar(&replication, "replication", 0, "replicas per chunk (default 3)")
	return cmd
}

func put(ctx context.Context, c *client.Client, local, remote string, opts client.CreateOptions, stdin io.Reader, stderr io.Writer) error {
	src, total := stdin, int64(-1)
	base := ""
	if local != "-" {
		if err := checkLocal(local); err != nil {
			return err
		}
		f, err := os.Open(local)
		if err != nil {
			return fail("put "+local, localErr(err))
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return fail("put "+local, localErr(err))
		}
		src, total, base = f, fi.Size(), filepath.Base(local)
	}
	dst, err := intoDir(ctx, c, remote, base)
	if err != nil {
		return fail("put "+remote, err)
	}
	op := "put " + dst
	f, err := c.Create(ctx, dst, opts)
	if err != nil {
		return fail(op, err)
	}
	prog := newProgress(stderr, dst, total)
	var off int64
	_, err = pipeline(ctx, transferBuf, transferBufs, readFull(src), func(p []byte) error {
		if _, err := f.WriteAtContext(ctx, p, off); err != nil {
			return err
		}
		off += int64(len(p))
		prog.Add(len(p))
		return nil
	})
	prog.Finish()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// Leave no partial file that looks complete. The old contents are
		// already gone (overwrite), so removing loses nothing more.
		_ = c.Remove(context.WithoutCancel(ctx), dst)
		return fail(op, err)
	}
	return nil
}

// checkLocal fails unless local is "-" or a readable non-directory.
func checkLocal(local string) error {
	if local == "-" {
		return nil
	}
	fi, err := os.Stat(local)
	if err != nil {
		return fail("put "+local, localErr(err))
	}
	if fi.IsDir() {
		return fail("put "+local, client.ErrIsDir)
	}
	return nil
}

// localErr maps a local file-system error to its plain reason.
func localErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
