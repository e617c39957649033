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
		return nil, fmt.Errorf("%w: path %q is not absolute", ErrInvalid, p)
	}
	if len(p) > MaxPathLen {
		return nil, fmt.Errorf("%w: path of %d bytes, more than %d", ErrNameTooLong, len(p), MaxPathLen)
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

func checkName(e string) error {
	switch {
	case e == "":
		return fmt.Errorf("%w: empty path element", ErrInvalid)
	case e == "." || e == "..":
		return fmt.Errorf("%w: path element %q", ErrInvalid, e)
	case len(e) > MaxNameLen:
		return fmt.Errorf("%w: name of %d bytes, more than %d", ErrNameTooLong, len(e), MaxNameLen)
	case strings.ContainsAny(e, "/\x00"):
		return fmt.Errorf("%w: name contains '/' or NUL", ErrInvalid)
	}
	return nil
}
