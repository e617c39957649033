package main

import (
	"context"
	"path"
	"strings"

	"github.com/catena-io/catena/client"
)

// remotePath makes p absolute and clean; a relative path is taken from the
// root, since the CLI has no remote working directory.
func remotePath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return path.Clean(p)
}

// intoDir resolves a copy or move destination as cp and mv do: when dst ends
// in "/" or names an existing directory, the result is dst/base. base == ""
// means the caller cannot supply a name.
func intoDir(ctx context.Context, c *client.Client, dst, base string) (string, error) {
	clean := remotePath(dst)
	isDir := strings.HasSuffix(dst, "/") || clean == "/"
	if !isDir {
		if fi, err := c.Stat(ctx, clean); err == nil && fi.IsDir {
			isDir = true
		}
	}
	if !isDir {
		return clean, nil
	}
	if base == "" || base == "." || base == "/" {
		return "", errStdinToDir
	}
	return path.Join(clean, base), nil
}
