package crash

import (
	"context"
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
	"google.golang.org/grpc/credentials/insecure"

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
		fmt.Fprintf(&b, "catena status --json: %s\n", strings.TrimSpace(out))
	} else {
		fmt.Fprintf(&b, "catena status: %v %s\n", err, out)
	}
	// The master's chunk map of the volume.
	handles := map[uint64]bool{}
	if chunks, err := p.volumeChunks(); err != nil {
		fmt.Fprintf(&b, "volume chunk map: %v\n", err)
	} else {
		for _, ch := range chunks {
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
		for _, sub := range []string{"chunks", "corrupt"} {
			ents, _ := os.ReadDir(filepath.Join(copyDir, sub))
			for _, e := range ents {
				if sub == "corrupt" || strings.HasSuffix(e.Name(), ".tmp") {
					fmt.Fprintf(&b, "%s: %s/%s\n", server, sub, e.Name())
				}
			}
		}
		st, err := chunkstore.Open(chunkstore.OSFS, copyDir)
		if err != nil {
			fmt.Fprintf(&b, "%s: open store: %v\n", server, err)
			continue
		}
		for _, m := range st.List() {
			r, err := st.Get(m.Handle)
			var verr error
			if err != nil {
				verr = err
			} else {
				verr = r.Verify()
			}
			reps[uint64(m.Handle)] = append(reps[uint64(m.Handle)], rep{server, m, verr})
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
		}
	}
	// The logs of this cycle naming those handles.
	for _, s := range p.specs {
		lines := p.cycleLog(s.name)
		var hits []string
		for _, l := range lines {
			for h := range handles {
				if strings.Contains(l, strconv.FormatUint(h, 10)) || strings.Contains(l, fmt.Sprintf("%016x", h)) {
					hits = append(hits, l)
					break
				}
			}
		}
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
	conn, err := grpc.NewClient(p.master, grpc.WithTransportCredentials(insecure.NewCredentials()))
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
