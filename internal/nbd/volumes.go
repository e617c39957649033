package nbd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/catena-io/catena/client"
)

// VolumeExports serves Catena volumes: each volume is an export of its
// name. Volumes are opened on first use and kept open (one client.Volume
// shared by every connection) until Close.
type VolumeExports struct {
	c    *client.Client
	only []string // when non-empty, the only volumes served
	// writer: open writable volumes as their one writer (SetWriter).
	writer *client.WriterOptions

	mu   sync.Mutex
	open map[string]*client.Volume
}

var _ Exports = (*VolumeExports)(nil)

// NewVolumeExports serves the volumes named in only, or every volume when
// only is empty. c stays owned by the caller.
func NewVolumeExports(c *client.Client, only []string) *VolumeExports {
	return &VolumeExports{c: c, only: slices.Clone(only), open: map[string]*client.Volume{}}
}

// List returns the names of the served volumes.
func (e *VolumeExports) List() ([]string, error) {
	if len(e.only) > 0 {
		return slices.Clone(e.only), nil
	}
	vs, err := e.c.ListVolumes(context.Background())
	if err != nil {
		return nil, fmt.Errorf("nbd: list volumes: %w", err)
	}
	names := make([]string, 0, len(vs))
	for _, v := range vs {
		names = append(names, v.Name)
	}
	return names, nil
}

// Open returns the open volume of that name; "" is the only volume when
// exactly one is served.
func (e *VolumeExports) Open(name string) (Device, error) {
	if name == "" {
		names, err := e.List()
		if err != nil {
			return nil, err
		}
		if len(names) != 1 {
			return nil, fmt.Errorf("%w: no default export among %d volumes", ErrUnknownExport, len(names))
		}
		name = names[0]
	}
	if len(e.only) > 0 && !slices.Contains(e.only, name) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownExport, name)
	}
	// Whether the volume open already is still the export's asks the
	// master: outside the lock, so a slow answer does not hold up the
	// other exports' connections.
	e.mu.Lock()
	v := e.open[name]
	e.mu.Unlock()
	if v != nil && e.current(name, v) {
		return v, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur := e.open[name]; cur != nil && cur != v {
		return cur, nil // another connection opened it meanwhile
	} else if cur != nil {
		delete(e.open, name) // its connections keep it
	}
	var err error
	if e.writer != nil {
		v, err = e.openWriter(name)
	} else {
		v, err = e.c.OpenVolume(context.Background(), name)
	}
	if errors.Is(err, client.ErrExist) {
		return nil, fmt.Errorf("%w: %w", ErrExportDenied, err)
	}
	if errors.Is(err, client.ErrNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownExport, name)
	}
	if errors.Is(err, client.ErrPermission) {
		return nil, fmt.Errorf("%w: %w", ErrExportDenied, err)
	}
	if err != nil {
		return nil, fmt.Errorf("nbd: open volume %q: %w", name, err)
	}
	e.open[name] = v
	return v, nil
}

// SetWriter makes the exports open each writable volume (and overlay) as
// its one writer (client.OpenVolumeWriter): a volume another writer holds
// is refused, and a writer found fenced is dropped, so that the next
// connection asks again. Call before the first Open.
func (e *VolumeExports) SetWriter(opts client.WriterOptions) {
	e.writer = &opts
}

// openWriter opens volume name as its writer, or read-only when it is a
// snapshot.
func (e *VolumeExports) openWriter(name string) (*client.Volume, error) {
	opts := *e.writer
	var v *client.Volume
	opts.OnFenced = func(err error) {
		e.mu.Lock()
		if e.open[name] == v {
			delete(e.open, name)
		}
		e.mu.Unlock()
		if e.writer.OnFenced != nil {
			e.writer.OnFenced(err)
		}
	}
	v, err := e.c.OpenVolumeWriter(context.Background(), name, opts)
	if errors.Is(err, client.ErrReadOnly) {
		return e.c.OpenVolume(context.Background(), name)
	}
	return v, err
}

// current reports whether the open volume v is still volume name: the
// name may name another inode since (a promote, a remove and create),
// and a writer's session may have been fenced (promoted over, detached,
// taken over). When the master cannot say, v is kept.
func (e *VolumeExports) current(name string, v *client.Volume) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vi, err := e.c.VolumeInfo(ctx, name)
	if err == nil && vi.Inode != v.Info().Inode || errors.Is(err, client.ErrNotFound) {
		return false
	}
	return !errors.Is(v.CheckSession(ctx), client.ErrFenced)
}

// Close closes the volumes opened so far.
func (e *VolumeExports) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for _, v := range e.open {
		errs = append(errs, v.Close())
	}
	e.open = map[string]*client.Volume{}
	return errors.Join(errs...)
}
