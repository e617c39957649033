package meta

import (
	"fmt"
	"strings"
)

// Limits on names and paths.
const (
	MaxNameLen = 255
	MaxPathLen = 4096
)

// CheckPath reports whether p is an absolute, clean, '/'-separated path:
// "/" or "/a/b" with no empty, "." or ".." elements, no NUL, names of at most
// MaxNameLen bytes and at most MaxPathLen bytes in all. It wraps ErrInvalid
// (ErrNameTooLong for a name or path over its limit).
func CheckPath(p string) error {
	_, err := splitPath(p)
	return err
}

// splitPath returns the elements of a valid path ("/" has none).
func splitPath(p string) ([]string, error) {
	if p == "" || p[0] != '/' {
		return nil, errorf(ErrInvalid, "path %q is not absolute", p)
	}
	if len(p) > MaxPathLen {
		return nil, errorf(ErrNameTooLong, "path of %d bytes, more than %d", len(p), MaxPathLen)
	}
	if p == "/" {
		return nil, nil
	}
	elems := strings.Split(p[1:], "/")
	for _, e := range elems {
		if err := checkName(e); err != nil {
			return nil, fmt.Errorf("%w (in path %q)", err, p)
		}
	}
	return elems, nil
}

// CheckNewName validates a name about to be given to a file, directory,
// link or volume: a valid name (checkName) without control characters
// (bytes below 0x20, and 0x7f), which would forge lines in listings and
// logs. Callers check it at the edge, before proposing a command; Apply
// does not, so names created before the rule replay as they did.
func CheckNewName(e string) error {
	if err := checkName(e); err != nil {
		return err
	}
	if e == SnapshotDirName {
		return errorf(ErrInvalid, "the name %q is reserved: a directory's snapshots are read under it", e)
	}
	for i := 0; i < len(e); i++ {
		if c := e[i]; c < 0x20 || c == 0x7f {
			return errorf(ErrInvalid, "name %q contains control character %#02x", e, c)
		}
	}
	return nil
}

// CheckNewPath is CheckPath with every element checked by CheckNewName
// (a path whose last elements are about to be created), but that an
// element before the last may be SnapshotDirName (a path into a
// snapshot, refused as read-only where it applies); with parents, where
// every element may be created, not even that.
func CheckNewPath(p string, parents ...bool) error {
	elems, err := splitPath(p)
	if err != nil {
		return err
	}
	for i, e := range elems {
		if e == SnapshotDirName && i < len(elems)-1 && (len(parents) == 0 || !parents[0]) {
			continue
		}
		if err := CheckNewName(e); err != nil {
			return fmt.Errorf("%w (in path %q)", err, p)
		}
	}
	return nil
}

func checkName(e string) error {
	switch {
	case e == "":
		return errorf(ErrInvalid, "empty path element")
	case e == "." || e == "..":
		return errorf(ErrInvalid, "path element %q", e)
	case len(e) > MaxNameLen:
		return errorf(ErrNameTooLong, "name of %d bytes, more than %d", len(e), MaxNameLen)
	case strings.ContainsAny(e, "/\x00"):
		return errorf(ErrInvalid, "name contains '/' or NUL")
	}
	return nil
}
