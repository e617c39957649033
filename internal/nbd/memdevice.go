package nbd

import (
	"fmt"
	"sync"
)

// MemDevice is an in-memory Device, the twin of a Catena volume in tests.
type MemDevice struct {
	mu      sync.RWMutex
	data    []byte
	flushes int
}

var _ Device = (*MemDevice)(nil)

// NewMemDevice returns a zeroed device of size bytes.
func NewMemDevice(size int) *MemDevice { return &MemDevice{data: make([]byte, size)} }

func (m *MemDevice) Size() int64 { return int64(len(m.data)) }

func (m *MemDevice) check(off, n int64) error {
	if off < 0 || n < 0 || off+n > int64(len(m.data)) {
		return fmt.Errorf("nbd: memdevice range [%d, +%d) out of bounds", off, n)
	}
	return nil
}

func (m *MemDevice) ReadAt(p []byte, off int64) (int, error) {
	if err := m.check(off, int64(len(p))); err != nil {
		return 0, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return copy(p, m.data[off:]), nil
}

func (m *MemDevice) WriteAt(p []byte, off int64) (int, error) {
	if err := m.check(off, int64(len(p))); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(m.data[off:], p), nil
}

func (m *MemDevice) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flushes++
	return nil
}

func (m *MemDevice) Trim(off, n int64) error { return m.Zero(off, n) }

func (m *MemDevice) Zero(off, n int64) error {
	if err := m.check(off, n); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.data[off : off+n])
	return nil
}

// FlushCount returns the number of Flush calls so far.
func (m *MemDevice) FlushCount() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.flushes
}

// MapExports serves a fixed map of devices; the empty name opens the only
// device when there is exactly one.
type MapExports map[string]Device

var _ Exports = MapExports(nil)

func (e MapExports) List() ([]string, error) {
	var out []string
	for n := range e {
		out = append(out, n)
	}
	return out, nil
}

func (e MapExports) Open(name string) (Device, error) {
	if name == "" && len(e) == 1 {
		for _, d := range e {
			return d, nil
		}
	}
	d, ok := e[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownExport, name)
	}
	return d, nil
}
