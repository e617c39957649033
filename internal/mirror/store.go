package mirror

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/catena-io/catena/client"
)

// RecordDir is the directory of mirror records on each cluster: the
// record of volume VOL is extended attribute RecordAttr of the empty file
// RecordDir/VOL.
const (
	RecordDir  = "/.catena-mirror"
	RecordAttr = "user.catena.mirror"
	// FlushAttr, on the same file at A, is the latest request for a
	// checkpoint by a flush (FlushBarrier): a --sync-flush mirror starts
	// one when it changes.
	FlushAttr = "user.catena.mirror.flush"
)

// RecordPath is the file that holds volume vol's record, or directory
// tree vol's (a path: IsTree): RecordDir/@ESCAPED, which no volume name
// can be (a volume's name has no '@').
func RecordPath(vol string) string {
	if IsTree(vol) {
		return path.Join(RecordDir, "@"+url.PathEscape(vol))
	}
	return path.Join(RecordDir, vol)
}

// IsTree reports whether a mirror's source names a directory tree (an
// absolute path) rather than a volume.
func IsTree(source string) bool { return strings.HasPrefix(source, "/") }

// stagePath is where B stages tree dir's next checkpoint:
// RecordDir/+ESCAPED (no record's name starts with '+').
func stagePath(dir string) string { return path.Join(RecordDir, "+"+url.PathEscape(dir)) }

// ReadRecord returns volume vol's mirror record on the cluster c talks
// to; ErrNoRecord when it has none.
func ReadRecord(ctx context.Context, c *client.Client, vol string) (*Record, error) {
	fi, err := c.Stat(ctx, RecordPath(vol))
	if errors.Is(err, client.ErrNotFound) {
		return nil, fmt.Errorf("%w for volume %s", ErrNoRecord, vol)
	}
	if err != nil {
		return nil, err
	}
	b, err := c.GetXattr(ctx, fi.Inode, RecordAttr)
	if errors.Is(err, client.ErrNoAttr) {
		return nil, fmt.Errorf("%w for volume %s", ErrNoRecord, vol)
	}
	if err != nil {
		return nil, err
	}
	return DecodeRecord(b)
}

// WriteRecord stores r as its volume's record on the cluster c talks to,
// in one metadata update (the file is made the first time).
func WriteRecord(ctx context.Context, c *client.Client, r *Record) error {
	if err := r.Check(); err != nil {
		panic(fmt.Sprintf("mirror: writing a broken record: %v", err))
	}
	p := RecordPath(r.Volume)
	fi, err := c.Stat(ctx, p)
	if errors.Is(err, client.ErrNotFound) {
		if err := c.MkdirAll(ctx, RecordDir, 0o755); err != nil {
			return err
		}
		f, cerr := c.Create(ctx, p, client.CreateOptions{Mode: 0o644})
		if cerr != nil && !errors.Is(cerr, client.ErrExist) {
			return cerr
		}
		if f != nil {
			f.Close()
		}
		fi, err = c.Stat(ctx, p)
	}
	if err != nil {
		return err
	}
	return c.SetXattr(ctx, fi.Inode, RecordAttr, r.Encode(), 0)
}
