package crash

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
)

// Every 4 KiB block a volume writer writes is self-describing: which write
// put it there (writer id, sequence number), which block of the volume it
// belongs to, and a checksum over the whole block, so a read names the
// exact write it saw and a torn or misplaced block is caught as such.
//
//	[0, 8)    blockMagic
//	[8, 12)   writer id
//	[12, 20)  writer's sequence number of the write
//	[20, 28)  volume block number
//	[28, 32)  CRC32C of [0, 28) and [32, 4096)
//	[32, ...) bytes derived from (writer, seq, block)
const (
	volBlock   = 4096
	blockMagic = "CATPCUT1"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// writeID names one write: the writer and its sequence number. The zero
// value is "never written" (a block of zeros).
type writeID struct {
	writer uint32
	seq    uint64
}

func (w writeID) String() string {
	if w == (writeID{}) {
		return "zeros"
	}
	return fmt.Sprintf("w%d#%d", w.writer, w.seq)
}

// fillBlock writes the content of block blk of write id into b (4 KiB).
func fillBlock(b []byte, id writeID, blk int64) {
	copy(b, blockMagic)
	binary.LittleEndian.PutUint32(b[8:], id.writer)
	binary.LittleEndian.PutUint64(b[12:], id.seq)
	binary.LittleEndian.PutUint64(b[20:], uint64(blk))
	r := rand.New(rand.NewPCG(uint64(id.writer)<<40^id.seq, uint64(blk)))
	for i := 32; i < volBlock; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	binary.LittleEndian.PutUint32(b[28:], blockCRC(b))
}

func blockCRC(b []byte) uint32 {
	c := crc32.Update(0, castagnoli, b[:28])
	return crc32.Update(c, castagnoli, b[32:volBlock])
}

// decodeBlock returns the write whose content block blk holds, or an
// error describing a torn, foreign or misplaced block.
func decodeBlock(b []byte, blk int64) (writeID, error) {
	if !slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) {
		return writeID{}, nil
	}
	if string(b[:8]) != blockMagic {
		return writeID{}, fmt.Errorf("not a block of this test (starts %x)", b[:16])
	}
	id := writeID{writer: binary.LittleEndian.Uint32(b[8:]), seq: binary.LittleEndian.Uint64(b[12:])}
	if got, want := binary.LittleEndian.Uint32(b[28:]), blockCRC(b); got != want {
		return id, fmt.Errorf("torn block: header says %v but its checksum %08x != %08x", id, got, want)
	}
	if at := int64(binary.LittleEndian.Uint64(b[20:])); at != blk {
		return id, fmt.Errorf("misplaced block: %v's block %d found at block %d", id, at, blk)
	}
	return id, nil
}

// volWrite is one write of a cycle: blocks [first, first+n). invoke and
// ack are ticks of the model's logical clock; ack 0 means no answer came
// (failed or cut off by the crash): the write may or may not have
// happened.
type volWrite struct {
	id          writeID
	via         string
	first, n    int64
	invoke, ack uint64
	flushed     bool // an acknowledged flush followed it on its connection
}

// volModel is the history of one volume, checked as one register per
// block: after a cycle, a block must hold the value it held at the last
// check or a write of this cycle, and never a value older than an
// acknowledged write that started after that value's write completed.
type volModel struct {
	mu     sync.Mutex
	clock  uint64
	floor  []writeID // per block: the value observed by the last check
	writes map[writeID]*volWrite
	blocks map[int64][]*volWrite // this cycle's writes per block
}

func newVolModel(blocks int64) *volModel {
	return &volModel{floor: make([]writeID, blocks), writes: map[writeID]*volWrite{}, blocks: map[int64][]*volWrite{}}
}

// begin records a write about to be sent.
func (m *volModel) begin(id writeID, via string, first, n int64) *volWrite {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clock++
	w := &volWrite{id: id, via: via, first: first, n: n, invoke: m.clock}
	m.writes[id] = w
	for b := first; b < first+n; b++ {
		m.blocks[b] = append(m.blocks[b], w)
	}
	return w
}

// acked records the write's success.
func (m *volModel) acked(w *volWrite) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clock++
	w.ack = m.clock
}

// flushed marks the acknowledged writes of a connection as flushed.
func (m *volModel) flushed(ws []*volWrite) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range ws {
		if w.ack != 0 {
			w.flushed = true
		}
	}
}

// counts returns how many writes this cycle were acknowledged, pending,
// and flushed.
func (m *volModel) counts() (acked, pending, flushed int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range m.writes {
		switch {
		case w.ack == 0:
			pending++
		case w.flushed:
			acked++
			flushed++
		default:
			acked++
		}
	}
	return
}

// blockProblem is a block that read back wrong.
type blockProblem struct {
	block int64
	msg   string
}

// check judges one block read back as got (decoded as id, err). It does
// not change the model.
func (m *volModel) check(blk int64, id writeID, derr error) *blockProblem {
	m.mu.Lock()
	defer m.mu.Unlock()
	hist := m.blocks[blk]
	describe := func() string {
		var s []string
		for _, w := range hist {
			st := "pending"
			if w.ack != 0 {
				st = fmt.Sprintf("acked@%d", w.ack)
				if w.flushed {
					st += ",flushed"
				}
			}
			s = append(s, fmt.Sprintf("%v(%s, blocks %d+%d, invoked@%d, %s)", w.id, w.via, w.first, w.n, w.invoke, st))
		}
		return fmt.Sprintf("value before this cycle %v; this cycle's writes: [%s]", m.floor[blk], strings.Join(s, " "))
	}
	if derr != nil {
		return &blockProblem{blk, fmt.Sprintf("%v; %s", derr, describe())}
	}
	if id == m.floor[blk] {
		for _, w := range hist {
			if w.ack != 0 {
				return &blockProblem{blk, fmt.Sprintf("acknowledged write lost: holds %v; %s", id, describe())}
			}
		}
		return nil
	}
	w := m.writes[id]
	covers := w != nil && blk >= w.first && blk < w.first+w.n
	if !covers {
		return &blockProblem{blk, fmt.Sprintf("holds %v, neither its value before this cycle nor a write of this cycle to it; %s", id, describe())}
	}
	if w.ack == 0 {
		return nil // an unanswered write may have happened
	}
	for _, o := range hist {
		if o != w && o.ack != 0 && o.invoke > w.ack {
			return &blockProblem{blk, fmt.Sprintf("stale: holds %v although %v was acknowledged and started after it completed; %s", id, o.id, describe())}
		}
	}
	return nil
}

// settle makes the values observed by a check the starting point of the
// next cycle.
func (m *volModel) settle(observed []writeID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	copy(m.floor, observed)
	m.writes = map[writeID]*volWrite{}
	m.blocks = map[int64][]*volWrite{}
}

// describeValue says what the model knows of the value found in a block:
// the write, whether it was acknowledged, and what the block held at the
// last check.
func (m *volModel) describeValue(blk int64, id writeID, derr error) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if derr != nil {
		return derr.Error()
	}
	st := "not written this cycle"
	if w := m.writes[id]; w != nil {
		st = "unanswered"
		if w.ack != 0 {
			st = "acknowledged"
		}
	}
	if id == m.floor[blk] {
		st = "its value at the last check"
	}
	latest := writeID{}
	var latestAck uint64
	for _, w := range m.blocks[blk] {
		if w.ack > latestAck {
			latest, latestAck = w.id, w.ack
		}
	}
	if latestAck != 0 && latest != id {
		st += fmt.Sprintf(", last acknowledged %v", latest)
	}
	return fmt.Sprintf("%v (%s)", id, st)
}
