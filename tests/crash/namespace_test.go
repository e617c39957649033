package crash

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/catena-io/catena/client"
)

// nsModel is what the namespace must hold: files put and acknowledged
// (with their digests), directories made, and this cycle's operations that
// got no answer, whose outcome the next check finds out and adopts.
type nsModel struct {
	mu      sync.Mutex
	files   map[string]nsFile
	dirs    map[string]bool
	gone    []string // acknowledged rm and rename sources of this cycle
	pending []nsOp   // unanswered operations of this cycle
	touched map[string]bool
}

type nsFile struct {
	sha  fileSHA
	size int64
}

// nsOp is an operation whose answer did not come.
type nsOp struct {
	kind     string // put, mkdir, rmdir, rename, rm
	path, to string
	file     nsFile // rename and rm: the file concerned
}

func newNSModel() *nsModel {
	return &nsModel{files: map[string]nsFile{}, dirs: map[string]bool{}, touched: map[string]bool{}}
}

// storm puts files and runs metadata operations, one of each in turn,
// until ctx ends. It returns the acknowledged counts.
func (m *nsModel) storm(ctx context.Context, c *client.Client, cycle int, seed uint64) (puts, metaOps int) {
	r := rand.New(rand.NewPCG(seed, uint64(cycle)))
	for k := 0; ctx.Err() == nil; k++ {
		if m.put(ctx, c, r, fmt.Sprintf("/files/c%03d-p%03d", cycle, k)) {
			puts++
		}
		if ctx.Err() != nil {
			break
		}
		if m.meta(ctx, c, r, cycle, k) {
			metaOps++
		}
	}
	return puts, metaOps
}

func (m *nsModel) put(ctx context.Context, c *client.Client, r *rand.Rand, path string) bool {
	data := make([]byte, 1+r.IntN(pcMaxFile))
	for i := 0; i+8 <= len(data); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	err := func() error {
		f, err := c.Create(ctx, path, client.CreateOptions{ChunkSize: chunkSize})
		if err != nil {
			return err
		}
		if _, err := f.WriteAtContext(ctx, data, 0); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.touched[path] = true
		m.pending = append(m.pending, nsOp{kind: "put", path: path})
		return false
	}
	m.files[path] = nsFile{sha: shaOf(data), size: int64(len(data))}
	return true
}

// pick returns a random untouched entry of set, marking it touched.
func (m *nsModel) pick(r *rand.Rand, names []string) (string, bool) {
	var free []string
	for _, n := range names {
		if !m.touched[n] {
			free = append(free, n)
		}
	}
	if len(free) == 0 {
		return "", false
	}
	sort.Strings(free)
	n := free[r.IntN(len(free))]
	m.touched[n] = true
	return n, true
}

func keys[V any](mp map[string]V) []string {
	out := make([]string, 0, len(mp))
	for k := range mp {
		out = append(out, k)
	}
	return out
}

// meta runs one metadata operation: mkdir, rmdir, rename or rm.
func (m *nsModel) meta(ctx context.Context, c *client.Client, r *rand.Rand, cycle, k int) bool {
	m.mu.Lock()
	// One put per metadata operation: rm whenever there are too many
	// files, so their number (and the chunks to check and heal) stays
	// bounded; the same for directories.
	kind := []string{"mkdir", "rmdir", "rename", "rm"}[r.IntN(4)]
	switch {
	case len(m.files) > pcMaxFiles:
		kind = "rm"
	case kind == "mkdir" && len(m.dirs) > pcMaxFiles:
		kind = "rmdir"
	}
	op := nsOp{kind: kind}
	ok := true
	switch kind {
	case "mkdir":
		op.path = fmt.Sprintf("/dirs/c%03d-m%03d", cycle, k)
		m.touched[op.path] = true
	case "rmdir":
		op.path, ok = m.pick(r, keys(m.dirs))
	case "rename":
		if op.path, ok = m.pick(r, keys(m.files)); ok {
			op.to, op.file = fmt.Sprintf("/files/c%03d-r%03d", cycle, k), m.files[op.path]
			m.touched[op.to] = true
		}
	case "rm":
		if op.path, ok = m.pick(r, keys(m.files)); ok {
			op.file = m.files[op.path]
		}
	}
	m.mu.Unlock()
	if !ok {
		return false
	}
	var err error
	switch kind {
	case "mkdir":
		err = c.Mkdir(ctx, op.path, 0o755)
	case "rmdir", "rm":
		err = c.Remove(ctx, op.path)
	case "rename":
		err = c.Rename(ctx, op.path, op.to)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.pending = append(m.pending, op)
		return false
	}
	switch kind {
	case "mkdir":
		m.dirs[op.path] = true
	case "rmdir":
		delete(m.dirs, op.path)
		m.gone = append(m.gone, op.path)
	case "rename":
		delete(m.files, op.path)
		m.files[op.to] = op.file
		m.gone = append(m.gone, op.path)
	case "rm":
		delete(m.files, op.path)
		m.gone = append(m.gone, op.path)
	}
	return true
}

// exists stats path: its info, or nil when it does not exist.
func exists(ctx context.Context, c *client.Client, path string) (*client.FileInfo, error) {
	fi, err := c.Stat(ctx, path)
	if errors.Is(err, client.ErrNotFound) {
		return nil, nil
	}
	return fi, err
}

// verify resolves the unanswered operations from what the namespace
// shows, then checks every acknowledged file, directory and removal.
func (m *nsModel) verify(ctx context.Context, c *client.Client) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	for _, op := range m.pending {
		fi, err := exists(ctx, c, op.path)
		if err != nil {
			return fmt.Errorf("stat %s: %w", op.path, err)
		}
		switch op.kind {
		case "put": // may exist, with any content: remove it
			if fi != nil {
				if err := c.Remove(ctx, op.path); err != nil {
					return fmt.Errorf("remove unanswered put %s: %w", op.path, err)
				}
			}
		case "mkdir":
			if fi != nil {
				m.dirs[op.path] = true
			}
		case "rmdir":
			if fi == nil {
				delete(m.dirs, op.path)
			}
		case "rm":
			if fi == nil {
				delete(m.files, op.path)
			}
		case "rename":
			to, err := exists(ctx, c, op.to)
			if err != nil {
				return fmt.Errorf("stat %s: %w", op.to, err)
			}
			switch {
			case fi != nil && to != nil:
				bad("unanswered rename %s -> %s: both names exist", op.path, op.to)
			case fi == nil && to == nil:
				bad("unanswered rename %s -> %s: the file (acknowledged, %d bytes) is under neither name", op.path, op.to, op.file.size)
			case to != nil:
				delete(m.files, op.path)
				m.files[op.to] = op.file
			}
		}
	}
	for _, path := range slices.Sorted(func(yield func(string) bool) {
		for p := range m.files {
			if !yield(p) {
				return
			}
		}
	}) {
		want := m.files[path]
		b, err := readAll(ctx, c, path)
		switch {
		case err != nil:
			bad("acknowledged file %s (%d bytes): %v", path, want.size, err)
		case int64(len(b)) != want.size:
			bad("acknowledged file %s: %d bytes, want %d", path, len(b), want.size)
		case shaOf(b) != want.sha:
			bad("acknowledged file %s (%d bytes): content differs (sha256)", path, want.size)
		}
	}
	for d := range m.dirs {
		fi, err := exists(ctx, c, d)
		if err != nil || fi == nil || !fi.IsDir {
			bad("acknowledged mkdir %s: %v, %v", d, fi, err)
		}
	}
	for _, g := range m.gone {
		if _, ok := m.files[g]; ok || m.dirs[g] {
			continue // made again since
		}
		fi, err := exists(ctx, c, g)
		if err != nil || fi != nil {
			bad("acknowledged removal of %s: still there (%v, %v)", g, fi, err)
		}
	}
	m.pending, m.gone, m.touched = nil, nil, map[string]bool{}
	if len(errs) > 0 {
		return fmt.Errorf("namespace: %d problems:\n%s", len(errs), strings.Join(errs, "\n"))
	}
	return nil
}
