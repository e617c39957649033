package main

import (
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
)

func newGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "get REMOTE LOCAL",
		Short:   "Copy a file out of Catena into a local file (or stdout, as -)",
		Example: "  catena get /photos/photo.jpg ./\n  catena get /backup.tar - | tar x",
		Args:    args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(func(c *client.Client) error {
				return get(cmd.Context(), c, a[0], a[1], cmd.OutOrStdout(), cmd.ErrOrStderr())
			})
		},
	}
}

func get(ctx context.Context, c *client.Client, remote, local string, stdout, stderr io.Writer) error {
	src := remotePath(remote)
	op := "get " + src
	f, info, err := openFile(ctx, c, src)
	if err != nil {
		return fail(op, err)
	}
	defer f.Close()
	if local == "-" {
		return fail(op, copyOut(ctx, f, info, stdout, newProgress(stderr, src, info.Size)))
	}
	dst := local
	if strings.HasSuffix(local, string(filepath.Separator)) {
		dst = filepath.Join(local, path.Base(src))
	} else if fi, err := os.Stat(local); err == nil && fi.IsDir() {
		dst = filepath.Join(local, path.Base(src))
	}
	// Write beside the target and rename, so a failed get leaves an existing
	// local file untouched.
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".catena-*")
	if err != nil {
		return fail("get: create "+dst, localErr(err))
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	err = copyOut(ctx, f, info, tmp, newProgress(stderr, src, info.Size))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	return fail(op, err)
}

// openFile opens a regular file, refusing directories.
func openFile(ctx context.Context, c *client.Client, p string) (*client.File, *client.FileInfo, error) {
	info, err := c.Stat(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	if info.IsDir {
		return nil, nil, client.ErrIsDir
	}
	f, err := c.Open(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	return f, info, nil
}

// copyOut streams the whole file to w in large pieces.
func copyOut(ctx context.Context, f *client.File, info *client.FileInfo, w io.Writer, prog *progress) error {
	defer prog.Finish()
	size := info.Size
	var off int64
	fill := func(buf []byte) (int, error) {
		want := int64(len(buf))
		if rest := size - off; rest < want {
			want = rest
		}
		if want <= 0 {
			return 0, io.EOF
		}
		n, err := f.ReadAtContext(ctx, buf[:want], off)
		off += int64(n)
		if err == io.EOF && int64(n) == want {
			err = nil
		}
		if err == nil && off >= size {
			err = io.EOF
		}
		if err == io.EOF && off < size {
			err = io.ErrUnexpectedEOF // the file shrank under us
		}
		return n, err
	}
	_, err := pipeline(ctx, transferBuf, transferBufs, fill, func(p []byte) error {
		_, err := w.Write(p)
		prog.Add(len(p))
		return err
	})
	return err
}
