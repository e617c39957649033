package crash

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/chunkstore"
)

// writeHistory is every write TestCrashChunkservers attempted, in order,
// so that a byte read back can be traced to the write that stored it.
type writeHistory struct {
	mu sync.Mutex
	ws []histWrite
}

type histWrite struct {
	off   int
	data  []byte
	acked bool
}

func (h *writeHistory) add(off int, data []byte) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ws = append(h.ws, histWrite{off: off, data: data})
	return len(h.ws) - 1
}

func (h *writeHistory) ack(i int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ws[i].acked = true
}

// source names the write whose bytes got[i:] (got from file offset i)
// carry: the latest write covering i whose bytes match, or "initial".
func (h *writeHistory) source(got []byte, i int, initial []byte) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := min(16, len(got)-i)
	latest := -1
	for k := len(h.ws) - 1; k >= 0; k-- {
		w := h.ws[k]
		if i < w.off || i+n > w.off+len(w.data) {
			continue
		}
		if latest < 0 {
			latest = k
		}
		if bytes.Equal(w.data[i-w.off:i-w.off+n], got[i:i+n]) {
			return fmt.Sprintf("write #%d (acked %v) of %d; latest covering write #%d", k, w.acked, len(h.ws), latest)
		}
	}
	if bytes.Equal(initial[i:i+n], got[i:i+n]) {
		return fmt.Sprintf("the initial fill; latest covering write #%d of %d", latest, len(h.ws))
	}
	return fmt.Sprintf("no known write (latest covering write #%d of %d)", latest, len(h.ws))
}

// diffRanges returns up to max [start, end) ranges where a and b differ.
func diffRanges(a, b []byte, max int) (ranges [][2]int, total int) {
	start := -1
	for i := range a {
		if a[i] != b[i] {
			total++
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			if len(ranges) < max {
				ranges = append(ranges, [2]int{start, i})
			}
			start = -1
		}
	}
	if start >= 0 && len(ranges) < max {
		ranges = append(ranges, [2]int{start, len(a)})
	}
	return ranges, total
}

// diagnoseCrash describes, after acknowledged data read back wrong, the
// master's chains and every replica on every (stopped) chunkserver's disk
// against ref: which bytes differ and which write they came from.
func (c *crashCluster) diagnoseCrash(chunks []client.ChunkInfo, got, ref, initial []byte, hist *writeHistory) string {
	var b strings.Builder
	ranges, total := diffRanges(got, ref, 8)
	fmt.Fprintf(&b, "read back: %d bytes differ\n", total)
	for _, r := range ranges {
		fmt.Fprintf(&b, "  [%d,%d) chunk %d: read %s\n", r[0], r[1], r[0]/chunkSize, hist.source(got, r[0], initial))
	}
	handles := map[uint64]int64{}
	for _, ch := range chunks {
		handles[ch.Handle] = ch.Index
		fmt.Fprintf(&b, "master: chunk %d handle %d epoch %d chain %v\n", ch.Index, ch.Handle, ch.Epoch, ch.Chain)
	}
	for i, p := range c.cs {
		p.Kill()
		dir := c.csArgs[i][4]
		id, _ := os.ReadFile(filepath.Join(dir, "server-id"))
		server := fmt.Sprintf("cs%d(id %s)", i+1, strings.TrimSpace(string(id)))
		st, err := chunkstore.Open(chunkstore.OSFS, dir)
		if err != nil {
			fmt.Fprintf(&b, "%s: open store: %v\n", server, err)
			continue
		}
		for _, m := range st.List() {
			idx, ok := handles[uint64(m.Handle)]
			if !ok {
				continue
			}
			r, err := st.Get(m.Handle)
			if err != nil {
				fmt.Fprintf(&b, "%s: chunk %d: %v\n", server, idx, err)
				continue
			}
			data := make([]byte, chunkSize)
			_, rerr := r.ReadAt(data, 0)
			want := ref[idx*chunkSize : (idx+1)*chunkSize]
			rs, n := diffRanges(data, want, 4)
			fmt.Fprintf(&b, "%s: chunk %d epoch %d applied %d@%d chain %v: %d bytes differ (read %v)\n",
				server, idx, m.Epoch, m.AppliedSeq, m.AppliedEpoch, m.Chain, n, rerr)
			whole := make([]byte, fileSize)
			copy(whole[idx*chunkSize:], data)
			for _, r := range rs {
				fmt.Fprintf(&b, "    [%d,%d): %s\n", int(idx)*chunkSize+r[0], int(idx)*chunkSize+r[1],
					hist.source(whole, int(idx)*chunkSize+r[0], initial))
			}
		}
		st.Close()
	}
	return b.String()
}
