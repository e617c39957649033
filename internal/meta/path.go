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
