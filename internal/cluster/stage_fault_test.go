package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// stageDuration is how long TestStagedWritesUnderKills runs.
var stageDuration = flag.Duration("catena.stage.duration", 15*time.Second,
	"how long TestStagedWritesUnderKills stages and promotes under kills (e.g. 10m)")

const (
	stageVolChunks = 4
	stageBlock     = 64 << 10
	stageWriters   = 4
	stagePieces    = 12
)

// TestStagedWritesUnderKills is a mirror's target without the mirror:
// round after round, an overlay of a volume is attached, written by four
// writers at once (disjoint pieces, several in one chunk, each retried
// until acknowledged), then promoted, and the volume read whole by a new
// client must equal the model, and each round's snapshot of the volume
// must read back unchanged after the next round's writes and promote;
// meanwhile chunkservers are killed for longer than the master waits
// before it re-replicates their chunks onto the spare server, and
// restarted. Every first write to an overlay's
// chunk forks it while the repair loop moves the origin's chain: it
// found forks whose members had cloned the origin at different seqs (one
// member before a new configuration's empty epoch start, one after), so
// that the fork's tail took the head's first write for one it held and
// acknowledged it without applying it (see chunkserver.CloneReplica).
// Run longer with -catena.stage.duration=10m.
func TestStagedWritesUnderKills(t *testing.T) {
	dur := *stageDuration
	if testing.Short() {
		dur = min(dur, 8*time.Second)
	}
	c := clustertest.New(t, failureConfig(4))
	cl := clustertest.Client(t, c)
	r := newRand(t)
	ctx := t.Context()
	size := int64(stageVolChunks * chunkSize)
	if _, err := cl.CreateVolume(ctx, "v", size, client.VolumeOptions{ChunkSize: chunkSize, Replication: 3}); err != nil {
		t.Fatal(err)
	}
	model := make([]byte, size)
	history := [][]byte{bytes.Clone(model)} // the volume after each round, the last 30
	var snapModel []byte                    // the content of the last round's snapshot

	nctx, stopNemesis := context.WithCancel(ctx)
	var events sync.Mutex
	var log []string
	start := time.Now()
	note := func(format string, args ...any) {
		events.Lock()
		defer events.Unlock()
		log = append(log, fmt.Sprintf("%6.2fs ", time.Since(start).Seconds())+fmt.Sprintf(format, args...))
	}
	nemDone := make(chan struct{})
	nr := rand.New(rand.NewPCG(r.Uint64(), 7))
	go func() {
		defer close(nemDone)
		for {
			select {
			case <-nctx.Done():
				return
			case <-time.After(time.Duration(300+nr.IntN(700)) * time.Millisecond): // between faults: no event to await
			}
			v := nr.IntN(c.NumChunkservers())
			note("kill %d", v)
			if err := c.Kill(v); err != nil {
				t.Errorf("kill %d: %v", v, err)
				return
			}
			// Past the lease and drift margin: the master takes it out
			// of its chains and copies its chunks onto the spare.
			select {
			case <-nctx.Done():
			case <-time.After(time.Duration(800+nr.IntN(2000)) * time.Millisecond):
			}
			note("restart %d", v)
			rctx, cancel := context.WithTimeout(context.Background(), failTimeout)
			err := c.Restart(rctx, v)
			cancel()
			if err != nil {
				t.Errorf("restart %d: %v", v, err)
				return
			}
		}
	}()
	defer func() {
		stopNemesis()
		<-nemDone
	}()

	retry := func(what string, fn func(context.Context) error) {
		t.Helper()
		deadline := time.Now().Add(failTimeout)
		for {
			octx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := fn(octx)
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
		}
	}

	var held *client.Volume
	defer func() {
		if held != nil {
			held.Close()
		}
	}()
	rounds := 0
	for ; time.Since(start) < dur; rounds++ {
		var ino uint64
		retry("attach", func(ctx context.Context) error {
			vi, err := cl.ReattachOverlay(ctx, "v", "m", time.Minute)
			if err == nil {
				ino = vi.Inode
			}
			return err
		})
		var stage *client.Volume
		retry("open the stage", func(ctx context.Context) error {
			var err error
			stage, err = cl.OpenVolumeWriter(ctx, "v+m", client.WriterOptions{Owner: "stager", Lease: time.Minute, TakeOver: true, Keep: true})
			return err
		})
		// Disjoint pieces of whole 64 KiB blocks, up to 1 MiB each.
		used := make([]bool, size/stageBlock)
		type piece struct {
			off  int64
			data []byte
		}
		var pieces []piece
		for range stagePieces {
			b, want := r.IntN(len(used)), 1+r.IntN(16)
			n := 0 // the free blocks from b, at most want
			for n < want && b+n < len(used) && !used[b+n] {
				n++
			}
			if n == 0 {
				continue
			}
			for i := b; i < b+n; i++ {
				used[i] = true
			}
			p := piece{off: int64(b) * stageBlock, data: make([]byte, int64(n)*stageBlock)}
			fillRand(r, p.data)
			pieces = append(pieces, p)
		}
		next := make(chan piece)
		var wg sync.WaitGroup
		for range stageWriters {
			wg.Go(func() {
				for p := range next {
					retry(fmt.Sprintf("round %d: write %d bytes at %d", rounds, len(p.data), p.off), func(ctx context.Context) error {
						_, err := stage.WriteAtContext(ctx, p.data, p.off)
						return err
					})
				}
			})
		}
		for _, p := range pieces {
			next <- p
		}
		close(next)
		wg.Wait()
		for _, p := range pieces {
			copy(model[p.off:], p.data)
		}
		retry("promote", func(ctx context.Context) error {
			if vi, err := cl.VolumeInfo(ctx, "v"); err == nil && vi.Inode == ino {
				return nil // the promote before a timeout applied
			}
			_, err := cl.PromoteOverlay(ctx, "v", "m")
			return err
		})
		if held != nil {
			held.Close()
		}
		held = stage
		note("round %d promoted (%d pieces)", rounds, len(pieces))

		got := make([]byte, size)
		retry("read the volume", func(ctx context.Context) error { return readVolume(ctx, cl, "v", got) })
		if !bytes.Equal(got, model) {
			off := firstDiff(got, model)
			// Which round each 4 KiB page of the chunk read as.
			var pages []string
			for pg := off / chunkSize * chunkSize; pg < (off/chunkSize+1)*chunkSize; pg += 4096 {
				at := "?"
				for i := len(history) - 1; i >= 0; i-- {
					if bytes.Equal(got[pg:pg+4096], history[i][pg:pg+4096]) {
						at = fmt.Sprint(rounds - len(history) + i)
						break
					}
				}
				if !bytes.Equal(got[pg:pg+4096], model[pg:pg+4096]) {
					at = "*" + at
				}
				pages = append(pages, at)
			}
			what := fmt.Sprintf("the chunk's pages read as after rounds (* differs): %v", pages)
			// A page that is no round's there may be another offset's.
			pg := off / 4096 * 4096
			for i := len(history) - 1; i >= 0; i-- {
				if at := bytes.Index(history[i], got[pg:pg+4096]); at >= 0 {
					what += fmt.Sprintf("; page %d holds offset %d's bytes after round %d", pg, at, rounds-len(history)+i)
					break
				}
			}
			if at := bytes.Index(model, got[pg:pg+4096]); at >= 0 {
				what += fmt.Sprintf("; page %d holds offset %d's bytes of this round", pg, at)
			}
			// Read again: a lost write stays lost, a stale read may not.
			again := make([]byte, size)
			err := readVolume(ctx, cl, "v", again)
			for _, ci := range chunksOf(t, c, ino)() {
				if ci.GetIndex() == int64(off)/chunkSize {
					what += fmt.Sprintf("; the slot's chunk: %v", ci)
				}
			}
			events.Lock()
			lines := strings.Join(log, "\n")
			events.Unlock()
			t.Fatalf("round %d: the volume differs from its model at offset %d (chunk %d, block %d): %s; read again: equal=%v err=%v; events:\n%s",
				rounds, off, int64(off)/chunkSize, int64(off)%chunkSize/stageBlock, what, bytes.Equal(again, model), err, lines)
		}
		history = append(history, bytes.Clone(model))
		if len(history) > 30 {
			history = history[1:]
		}

		// As a mirror's target does: a snapshot of each round, the
		// previous one removed once it was read back unchanged by the
		// round's forks.
		if rounds > 0 {
			prevSnap := fmt.Sprintf("c%d", rounds-1)
			retry("read snapshot "+prevSnap, func(ctx context.Context) error { return readVolume(ctx, cl, "v@"+prevSnap, got) })
			if !bytes.Equal(got, snapModel) {
				t.Fatalf("round %d: snapshot %s changed at offset %d after the round's writes", rounds, prevSnap, firstDiff(got, snapModel))
			}
			retry("remove snapshot "+prevSnap, func(ctx context.Context) error {
				err := cl.RemoveVolumeSnapshot(ctx, "v", prevSnap)
				if errors.Is(err, client.ErrNotFound) {
					return nil // the removal before a timeout applied
				}
				return err
			})
		}
		retry("snapshot", func(ctx context.Context) error {
			_, err := cl.SnapshotVolume(ctx, "v", fmt.Sprintf("c%d", rounds))
			if errors.Is(err, client.ErrExist) {
				return nil
			}
			return err
		})
		snapModel = bytes.Clone(model)
	}
	t.Logf("%d rounds, every one read back whole, every snapshot unchanged", rounds)
	stopNemesis()
	<-nemDone
	// The nemesis restarts its victim before it returns.
	if err := c.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// readVolume reads volume name whole into p through a fresh open.
func readVolume(ctx context.Context, cl *client.Client, name string, p []byte) error {
	v, err := cl.OpenVolume(ctx, name)
	if err != nil {
		return err
	}
	defer v.Close()
	_, err = v.ReadAtContext(ctx, p, 0)
	return err
}
