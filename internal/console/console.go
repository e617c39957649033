package console

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/catena-io/catena/internal/clock"
)

// Config configures a Console.
type Config struct {
	// Snapshot returns the cluster now. Required. The Console owns what it
	// returns (it is not changed afterwards by the caller).
	Snapshot func(context.Context) (*Snapshot, error)
	// Interval is the sampling period (default 1s).
	Interval time.Duration
	// History is how many samples are kept (default 300).
	History int
	// Logger receives the console's logs (default slog.Default()).
	Logger *slog.Logger
	// Clock paces the sampling (nil: the system clock). Rates are
	// computed from the snapshots' own times.
	Clock clock.Clock
}

const (
	defaultInterval = time.Second
	defaultHistory  = 300
	// sampleTimeout bounds one call of Config.Snapshot.
	sampleTimeout = 5 * time.Second
)

// Sample is what the console keeps of one snapshot: rates over the time
// since the one before (zero for the first) and counts.
type Sample struct {
	Time time.Time `json:"time"`
	// Cluster client I/O: the sum over chunkservers of their rates.
	WriteBytesPerSec float64 `json:"write_bps"`
	ReadBytesPerSec  float64 `json:"read_bps"`
	WritesPerSec     float64 `json:"writes_per_sec"`
	ReadsPerSec      float64 `json:"reads_per_sec"`
	// Mean latency of the writes and reads of the interval, in seconds
	// (0 when there were none).
	WriteLatency    float64 `json:"write_latency_s"`
	ReadLatency     float64 `json:"read_latency_s"`
	Alive           int     `json:"alive"`
	Dead            int     `json:"dead"`
	UnderReplicated uint64  `json:"under_replicated"`
	ReReplicating   uint64  `json:"re_replicating"`
}

// Load is one chunkserver's client I/O rate over the last interval.
type Load struct {
	WriteBytesPerSec float64 `json:"write_bps"`
	ReadBytesPerSec  float64 `json:"read_bps"`
	WritesPerSec     float64 `json:"writes_per_sec"`
	ReadsPerSec      float64 `json:"reads_per_sec"`
}

// Health sums the cluster up: "ok", "degraded" (running, redundancy
// reduced) or "critical" (data unavailable or at risk now), with why.
type Health struct {
	Level   string   `json:"level"`
	Reasons []string `json:"reasons"`
}

// Recovery is how far the re-replication of under-replicated chunks has
// come since their count was last zero: Remaining of Peak are left.
type Recovery struct {
	Peak      uint64 `json:"peak"`
	Remaining uint64 `json:"remaining"`
}

// View is what /api/snapshot serves: the latest snapshot with what the
// console derives from it and the samples before it.
type View struct {
	*Snapshot
	Health Health `json:"health"`
	// Load maps a chunkserver id to its rates.
	Load map[uint64]Load `json:"load"`
	// RepairSince maps the handle of a repair in flight to the time of
	// the first snapshot that showed it.
	RepairSince map[uint64]time.Time `json:"repair_since"`
	Recovery    Recovery             `json:"recovery"`
	// Error is why the latest sampling failed ("" when it did not); the
	// snapshot is then the last one that succeeded.
	Error string `json:"error,omitempty"`
}

// Console samples snapshots into a bounded history and serves both over
// HTTP (Handler). Safe for concurrent use.
type Console struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	view    *View // nil before the first snapshot
	err     error // of the latest sampling
	history ring
	// prevIO is each chunkserver's counters at the time of the snapshot
	// that last carried them.
	prevIO map[uint64]ioAt
	// repairs maps a handle under repair to its target and first sight.
	repairs map[uint64]repairSeen
	peak    uint64
}

type ioAt struct {
	io IOCounters
	at time.Time
}

type repairSeen struct {
	target uint64
	since  time.Time
}

// New returns a Console; it samples once Run runs.
func New(cfg Config) *Console {
	if cfg.Interval <= 0 {
		cfg.Interval = defaultInterval
	}
	if cfg.History <= 0 {
		cfg.History = defaultHistory
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Clock = clock.Or(cfg.Clock)
	return &Console{cfg: cfg, log: cfg.Logger, history: ring{buf: make([]Sample, cfg.History)},
		prevIO: map[uint64]ioAt{}, repairs: map[uint64]repairSeen{}}
}

// Run samples a snapshot every Interval until ctx is done.
func (c *Console) Run(ctx context.Context) {
	t := c.cfg.Clock.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		c.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// sample takes one snapshot and records it, or the error.
func (c *Console) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, sampleTimeout)
	defer cancel()
	s, err := c.cfg.Snapshot(ctx)
	if err == nil && s == nil {
		err = fmt.Errorf("console: no snapshot")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.err == nil || c.err.Error() != err.Error() {
			// The page shows it; a master that just started has no leader yet.
			c.log.Debug("console: snapshot", "err", err)
		}
		c.err = err
		return
	}
	c.err = nil
	c.observeLocked(s)
}

// observeLocked derives a sample and the view from s.
func (c *Console) observeLocked(s *Snapshot) {
	v := &View{Snapshot: s, Load: map[uint64]Load{}, RepairSince: map[uint64]time.Time{}}
	smp := Sample{Time: s.Time, UnderReplicated: s.Chunks.UnderReplicated, ReReplicating: s.Chunks.ReReplicating}
	var wsec, rsec float64
	var writes, reads uint64
	for _, cs := range s.Chunkservers {
		if cs.Alive {
			smp.Alive++
		} else {
			smp.Dead++
		}
		if cs.IO == nil {
			continue // not reported (yet, or to this leader): keep the last
		}
		prev, ok := c.prevIO[cs.ID]
		c.prevIO[cs.ID] = ioAt{*cs.IO, s.Time}
		dt := s.Time.Sub(prev.at).Seconds()
		if !ok || dt <= 0 {
			continue
		}
		d := since(*cs.IO, prev.io)
		l := Load{WriteBytesPerSec: float64(d.WriteBytes) / dt, ReadBytesPerSec: float64(d.ReadBytes) / dt,
			WritesPerSec: float64(d.Writes) / dt, ReadsPerSec: float64(d.Reads) / dt}
		v.Load[cs.ID] = l
		smp.WriteBytesPerSec += l.WriteBytesPerSec
		smp.ReadBytesPerSec += l.ReadBytesPerSec
		smp.WritesPerSec += l.WritesPerSec
		smp.ReadsPerSec += l.ReadsPerSec
		writes, reads = writes+d.Writes, reads+d.Reads
		wsec, rsec = wsec+d.WriteSeconds, rsec+d.ReadSeconds
	}
	if writes > 0 {
		smp.WriteLatency = wsec / float64(writes)
	}
	if reads > 0 {
		smp.ReadLatency = rsec / float64(reads)
	}
	repairs := make(map[uint64]repairSeen, len(s.Repairs))
	for _, r := range s.Repairs {
		seen, ok := c.repairs[r.Handle]
		if !ok || seen.target != r.Target {
			seen = repairSeen{target: r.Target, since: s.Time}
		}
		repairs[r.Handle] = seen
		v.RepairSince[r.Handle] = seen.since
	}
	c.repairs = repairs
	if u := s.Chunks.UnderReplicated; u == 0 {
		c.peak = 0
	} else {
		c.peak = max(c.peak, u)
		v.Recovery = Recovery{Peak: c.peak, Remaining: u}
	}
	v.Health = health(s)
	c.history.push(smp)
	c.view = v
}

// since is cur - prev; a counter below its previous value means the
// server restarted, and counted cur from zero.
func since(cur, prev IOCounters) IOCounters {
	if cur.Writes < prev.Writes || cur.WriteBytes < prev.WriteBytes || cur.WriteSeconds < prev.WriteSeconds ||
		cur.Reads < prev.Reads || cur.ReadBytes < prev.ReadBytes || cur.ReadSeconds < prev.ReadSeconds {
		return cur
	}
	return IOCounters{
		Writes: cur.Writes - prev.Writes, WriteBytes: cur.WriteBytes - prev.WriteBytes, WriteSeconds: cur.WriteSeconds - prev.WriteSeconds,
		Reads: cur.Reads - prev.Reads, ReadBytes: cur.ReadBytes - prev.ReadBytes, ReadSeconds: cur.ReadSeconds - prev.ReadSeconds,
	}
}

// health judges s: critical when data is unavailable or no chunkserver
// serves, degraded when redundancy is reduced or being restored.
func health(s *Snapshot) Health {
	var critical, degraded []string
	alive, dead, draining := 0, 0, 0
	for _, cs := range s.Chunkservers {
		switch {
		case !cs.Alive:
			dead++
		case cs.Draining:
			draining++
			alive++
		default:
			alive++
		}
	}
	leader := false
	for _, m := range s.Masters {
		leader = leader || m.Leader
	}
	ch := s.Chunks
	if !leader {
		critical = append(critical, "no master leads")
	}
	if len(s.Chunkservers) > 0 && alive == 0 {
		critical = append(critical, "no chunkserver is alive")
	}
	if ch.Lost > 0 {
		critical = append(critical, plural(ch.Lost, "chunk")+" with no live up-to-date replica")
	}
	if dead > 0 {
		degraded = append(degraded, plural(uint64(dead), "chunkserver")+" dead")
	}
	if ch.UnderReplicated > 0 {
		degraded = append(degraded, plural(ch.UnderReplicated, "chunk")+" under-replicated")
	}
	if ch.ReReplicating > 0 {
		degraded = append(degraded, plural(ch.ReReplicating, "repair")+" in flight")
	}
	if n := len(ch.Problems); n > 0 {
		degraded = append(degraded, plural(uint64(n), "chunk")+" need attention")
	}
	if draining > 0 {
		degraded = append(degraded, plural(uint64(draining), "chunkserver")+" draining")
	}
	switch {
	case len(critical) > 0:
		return Health{Level: "critical", Reasons: append(critical, degraded...)}
	case len(degraded) > 0:
		return Health{Level: "degraded", Reasons: degraded}
	}
	return Health{Level: "ok", Reasons: []string{}}
}

func plural(n uint64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// View returns the latest view, nil before the first snapshot. The
// caller must not change it.
func (c *Console) View() *View {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.view == nil {
		return nil
	}
	v := *c.view
	if c.err != nil {
		v.Error = c.err.Error()
	}
	return &v
}

// History returns the samples kept, oldest first.
func (c *Console) History() []Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.history.all()
}

// ring is a bounded FIFO of samples: the oldest is dropped when full.
type ring struct {
	buf      []Sample
	start, n int
}

func (r *ring) push(s Sample) {
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = s
		r.n++
		return
	}
	r.buf[r.start] = s
	r.start = (r.start + 1) % len(r.buf)
}

func (r *ring) all() []Sample {
	out := make([]Sample, r.n)
	for i := range out {
		out[i] = r.buf[(r.start+i)%len(r.buf)]
	}
	return out
}
