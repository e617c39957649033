package crash

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chunkstore"
)

// fail ends the test with a diagnosis of the chunks named (volume chunk
// indices; nil: every chunk whose replicas disagree): the master's view
// and status, then, with every process stopped, each chunkserver's
// replicas of those chunks as found on disk, and the log lines naming
// them.
func (p *powercut) fail(volChunks []int64, format string, a ...any) {
	p.t.Helper()
	msg := fmt.Sprintf(format, a...)
	p.fatalf("%s\n\n==== diagnosis\n%s", msg, p.diagnose(volChunks))
}

func (p *powercut) diagnose(volChunks []int64) string {
	var b strings.Builder
	if _, out, err := p.status(); err == nil {
		var c bytes.Buffer
		if json.Compact(&c, []byte(out)) == nil {
			out = c.String()
		}
		fmt.Fprintf(&b, "catena status --json: %s\n", strings.TrimSpace(out))
	} else {
		fmt.Fprintf(&b, "catena status: %v %s\n", err, out)
	}
	// The master's chunk map of the volume.
	handles := map[uint64]bool{}
	volIndex := map[uint64]int64{} // handle -> volume chunk index
	if chunks, err := p.volumeChunks(); err != nil {
		fmt.Fprintf(&b, "volume chunk map: %v\n", err)
	} else {
		for _, ch := range chunks {
			volIndex[ch.GetHandle()] = ch.GetIndex()
			if volChunks != nil && !containsIndex(volChunks, ch.GetIndex()) {
				continue
			}
			var chain []string
			for _, s := range ch.GetChain() {
				chain = append(chain, strconv.FormatUint(s.GetId(), 10))
			}
			if volChunks != nil {
				handles[ch.GetHandle()] = true
			}
			fmt.Fprintf(&b, "master: volume chunk %d = handle %d (%016x) epoch %d chain [%s]\n",
				ch.GetIndex(), ch.GetHandle(), ch.GetHandle(), ch.GetEpoch(), strings.Join(chain, " "))
		}
	}
	// The disks, with everything stopped, on copies (opening a store may
	// repair checksums or move a replica aside).
	p.killAll()
	type rep struct {
		server string
		meta   chunkstore.Meta
		verify error
		bad    []int64          // 64 KiB blocks failing their checksum
		raw    map[int64][]byte // their bytes as stored, past the checksums
	}
	reps := map[uint64][]rep{}
	for _, s := range p.specs {
		if !strings.HasPrefix(s.name, "cs") {
			continue
		}
		copyDir := fmt.Sprintf("%s.evidence-cycle%d", s.dir, p.cycle)
		if out, err := exec.Command("cp", "-a", s.dir, copyDir).CombinedOutput(); err != nil {
			fmt.Fprintf(&b, "%s: copy data: %v %s\n", s.name, err, out)
			continue
		}
		id, _ := os.ReadFile(filepath.Join(s.dir, "server-id"))
		server := fmt.Sprintf("%s(id %s)", s.name, strings.TrimSpace(string(id)))
		st, err := chunkstore.Open(chunkstore.OSFS, copyDir)
		if err != nil {
			fmt.Fprintf(&b, "%s: open store: %v\n", server, err)
			continue
		}
		for _, m := range st.List() {
			rp := rep{server: server, meta: m, raw: map[int64][]byte{}}
			r, err := st.Get(m.Handle)
			if err != nil {
				rp.verify = err
			} else if rp.verify = r.Verify(); rp.verify != nil {
				buf := make([]byte, chunkstore.BlockSize)
				for off := int64(0); off < m.ChunkSize; off += chunkstore.BlockSize {
					if _, err := r.ReadAt(buf, off); errors.Is(err, chunkstore.ErrCorrupt) {
						rp.bad = append(rp.bad, off/chunkstore.BlockSize)
						rp.raw[off/chunkstore.BlockSize] = rawBytes(st, m.Handle, off)
					}
				}
			}
			reps[uint64(m.Handle)] = append(reps[uint64(m.Handle)], rp)
		}
		st.Close()
	}
	var hs []uint64
	for h, rs := range reps {
		if volChunks == nil {
			// Only the chunks whose replicas disagree or fail to verify.
			disagree := false
			for _, r := range rs {
				if r.verify != nil || r.meta.AppliedSeq != rs[0].meta.AppliedSeq || r.meta.Epoch != rs[0].meta.Epoch {
					disagree = true
				}
			}
			if !disagree && len(rs) == pcChunkservers {
				continue
			}
			handles[h] = true
		}
		if handles[h] {
			hs = append(hs, h)
		}
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i] < hs[j] })
	for _, h := range hs {
		fmt.Fprintf(&b, "replicas on disk of handle %d (%016x):\n", h, h)
		for _, r := range reps[h] {
			v := "verifies"
			if r.verify != nil {
				v = r.verify.Error()
			}
			fmt.Fprintf(&b, "  %s: epoch %d chain %v applied (epoch %d, seq %d): %s\n",
				r.server, r.meta.Epoch, r.meta.Chain, r.meta.AppliedEpoch, r.meta.AppliedSeq, v)
			if idx, ok := volIndex[h]; ok {
				for _, bb := range r.bad {
					fmt.Fprintf(&b, "    bad block %d (volume chunk %d): %s\n", bb, idx, p.rawBlock(r.raw[bb], idx, bb))
				}
			}
		}
	}
	// The logs of this cycle naming those handles.
	var pats []string
	for h := range handles {
		pats = append(pats, "handle="+strconv.FormatUint(h, 10)+" ", fmt.Sprintf("%016x", h))
	}
	for _, s := range p.specs {
		lines := p.cycleLog(s.name)
		var hits []string
		for _, l := range lines {
			if strings.HasPrefix(l, "==== ") {
				hits = append(hits, l)
				continue
			}
			for _, pat := range pats {
				if strings.Contains(l, pat) {
					hits = append(hits, l)
					break
				}
			}
		}
		hits = squeeze(hits)
		if len(hits) > 25 {
			hits = append([]string{fmt.Sprintf("(%d earlier lines)", len(hits)-25)}, hits[len(hits)-25:]...)
		}
		if len(hits) == 0 && len(lines) > 0 {
			hits = lines[max(0, len(lines)-8):]
		}
		fmt.Fprintf(&b, "log of %s (this cycle):\n  %s\n", s.name, strings.Join(hits, "\n  "))
	}
	fmt.Fprintf(&b, "data and logs: %s (set CATENA_POWERCUT_KEEP to keep them)\n", p.dir)
	return b.String()
}

// squeeze folds runs of log lines that differ only in their time stamp.
func squeeze(lines []string) []string {
	var out []string
	prev, n := "", 0
	flush := func() {
		if n > 1 {
			out = append(out, fmt.Sprintf("  (the line above %d times in all)", n))
		}
	}
	for _, l := range lines {
		body := l
		if strings.HasPrefix(l, "time=") {
			if i := strings.IndexByte(l, ' '); i > 0 {
				body = l[i:]
			}
		}
		if body == prev {
			n++
			continue
		}
		flush()
		out = append(out, l)
		prev, n = body, 1
	}
	flush()
	return out
}

// rawBytes reads the stored bytes of the 64 KiB block at off of replica
// h past the checksums, each 4 KiB page from where the store keeps its
// newest bytes (zeros where it keeps none).
func rawBytes(st *chunkstore.Store, h chunkstore.Handle, off int64) []byte {
	buf := make([]byte, chunkstore.BlockSize)
	for pg := int64(0); pg < chunkstore.BlockSize; pg += volBlock {
		name, at, err := st.Locate(h, off+pg)
		if err != nil {
			continue
		}
		if f, err := os.Open(name); err == nil {
			f.ReadAt(buf[pg:pg+volBlock], at)
			f.Close()
		}
	}
	return buf
}

// rawBlock describes the stored bytes buf of 64 KiB block bb of volume
// chunk idx: the write each 4 KiB block carries and what the test knows of
// that write.
func (p *powercut) rawBlock(buf []byte, idx, bb int64) string {
	if len(buf) < chunkstore.BlockSize {
		return "(not read)"
	}
	var parts []string
	first, prev := int64(-1), ""
	add := func(last int64) {
		if first >= 0 {
			parts = append(parts, fmt.Sprintf("volume blocks %d-%d: %s", first, last, prev))
		}
	}
	for i := int64(0); i < chunkstore.BlockSize/volBlock; i++ {
		vb := (idx*chunkSize + bb*chunkstore.BlockSize + i*volBlock) / volBlock
		id, derr := decodeBlock(buf[i*volBlock:(i+1)*volBlock], vb)
		d := p.vol.describeValue(vb, id, derr)
		if d != prev || derr != nil {
			add(vb - 1)
			first, prev = vb, d
		}
	}
	add((idx*chunkSize+(bb+1)*chunkstore.BlockSize)/volBlock - 1)
	return "holds " + strings.Join(parts, "; ")
}

// cycleLog returns a process's log lines since the start of this cycle.
func (p *powercut) cycleLog(name string) []string {
	b, err := os.ReadFile(filepath.Join(p.logDir, name+".log"))
	if err != nil {
		return []string{err.Error()}
	}
	s := string(b)
	if i := strings.LastIndex(s, fmt.Sprintf("==== cycle %d: start", p.cycle-1)); i >= 0 && p.cycle > 0 {
		s = s[i:]
	}
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}

// volumeChunks asks the master for the volume's chunk map.
func (p *powercut) volumeChunks() ([]*api.ChunkInfo, error) {
	conn, err := grpc.NewClient(p.master, p.certs.dialOption(p.t))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := api.NewMasterClient(conn).GetChunks(ctx, &api.GetChunksRequest{Inode: p.volIno})
	if err != nil {
		return nil, err
	}
	if len(resp.GetChunks()) == 0 {
		return nil, errors.New("no chunks")
	}
	return resp.GetChunks(), nil
}

func containsIndex(xs []int64, x int64) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
