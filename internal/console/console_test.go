package console

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catena-io/catena/internal/clock"
)

var (
	t0    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	quiet = slog.New(slog.DiscardHandler)
)

// snaps is a Snapshot func that returns the queued snapshots (or errors)
// in order, the last one again once they run out.
type snaps struct {
	mu    sync.Mutex
	queue []any // *Snapshot or error
	calls int
}

func (q *snaps) next(context.Context) (*Snapshot, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls++
	item := q.queue[0]
	if len(q.queue) > 1 {
		q.queue = q.queue[1:]
	}
	if err, ok := item.(error); ok {
		return nil, err
	}
	return item.(*Snapshot), nil
}

func (q *snaps) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.calls
}

// at is a snapshot at t0+sec with the given servers.
func at(sec float64, servers ...Chunkserver) *Snapshot {
	return &Snapshot{Time: t0.Add(time.Duration(sec * float64(time.Second))), Master: "m1",
		Masters: []Master{{ID: "m1", Leader: true}}, Chunkservers: servers}
}

func cs(id uint64, alive bool, io *IOCounters) Chunkserver {
	return Chunkserver{ID: id, Alive: alive, IO: io}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestRing(t *testing.T) {
	r := ring{buf: make([]Sample, 3)}
	if got := r.all(); len(got) != 0 {
		t.Fatalf("empty ring: %v", got)
	}
	for i := range 5 {
		r.push(Sample{Alive: i})
	}
	got := r.all()
	if len(got) != 3 || got[0].Alive != 2 || got[1].Alive != 3 || got[2].Alive != 4 {
		t.Fatalf("after 5 pushes into 3: %+v, want 2 3 4", got)
	}
}

func TestRatesFromCounters(t *testing.T) {
	c := New(Config{Snapshot: func(context.Context) (*Snapshot, error) { return nil, errors.New("unused") }, History: 10})
	c.observeLocked(at(0,
		cs(1, true, &IOCounters{Writes: 10, WriteBytes: 1000, WriteSeconds: 1, Reads: 5, ReadBytes: 500, ReadSeconds: 0.5}),
		cs(2, true, &IOCounters{Writes: 100, WriteBytes: 1 << 20})))
	// 2 s later: server 1 wrote 20 more (4000 bytes, 0.2 s in all) and
	// read nothing; server 2 restarted (its counters start again); server
	// 3 reports for the first time.
	c.observeLocked(at(2,
		cs(1, true, &IOCounters{Writes: 30, WriteBytes: 5000, WriteSeconds: 1.2, Reads: 5, ReadBytes: 500, ReadSeconds: 0.5}),
		cs(2, true, &IOCounters{Writes: 2, WriteBytes: 200, WriteSeconds: 0.2}),
		cs(3, true, &IOCounters{Writes: 7, WriteBytes: 7000})))
	h := c.History()
	if len(h) != 2 {
		t.Fatalf("history: %d samples, want 2", len(h))
	}
	if h[0].WriteBytesPerSec != 0 || h[0].Alive != 2 {
		t.Errorf("first sample: %+v, want no rates and 2 alive", h[0])
	}
	s := h[1]
	// Server 1: 4000 B / 2 s; server 2: 200 B / 2 s (since restart).
	if !near(s.WriteBytesPerSec, 2100) || !near(s.WritesPerSec, 11) || s.ReadBytesPerSec != 0 {
		t.Errorf("rates: %+v, want 2100 B/s and 11 writes/s written, nothing read", s)
	}
	// (0.2 + 0.2) s over 22 writes.
	if !near(s.WriteLatency, 0.4/22) || s.ReadLatency != 0 {
		t.Errorf("latency: write %v read %v, want %v and 0", s.WriteLatency, s.ReadLatency, 0.4/22)
	}
	v := c.View()
	if l := v.Load[1]; !near(l.WriteBytesPerSec, 2000) || !near(l.WritesPerSec, 10) {
		t.Errorf("load of server 1: %+v", l)
	}
	if _, ok := v.Load[3]; ok {
		t.Errorf("server 3 has a load from its first report: %+v", v.Load[3])
	}

	// Server 1 vanishes from the counters (a new leader has not heard
	// from it) and comes back: its rate is measured from its last report.
	c.observeLocked(at(3, cs(1, true, nil)))
	c.observeLocked(at(4, cs(1, true, &IOCounters{Writes: 40, WriteBytes: 9000, WriteSeconds: 1.3, Reads: 5, ReadBytes: 500, ReadSeconds: 0.5})))
	s = c.History()[3]
	if !near(s.WriteBytesPerSec, 2000) || !near(s.WriteLatency, 0.01) {
		t.Errorf("after a gap: %+v, want 2000 B/s (4000 B over 2 s), 10 ms", s)
	}
}

func TestHealthAndRecovery(t *testing.T) {
	c := New(Config{Snapshot: func(context.Context) (*Snapshot, error) { return nil, errors.New("unused") }})
	ok := at(0, cs(1, true, nil), cs(2, true, nil))
	c.observeLocked(ok)
	if v := c.View(); v.Health.Level != "ok" || v.Recovery.Peak != 0 {
		t.Fatalf("healthy cluster: %+v %+v", v.Health, v.Recovery)
	}

	dead := at(1, cs(1, true, nil), cs(2, false, nil))
	dead.Chunks = ChunkStats{Total: 10, UnderReplicated: 8, ReReplicating: 2}
	dead.Repairs = []Repair{{Handle: 5, Target: 1}}
	c.observeLocked(dead)
	v := c.View()
	if v.Health.Level != "degraded" || !strings.Contains(strings.Join(v.Health.Reasons, ";"), "1 chunkserver dead") {
		t.Errorf("one dead: %+v", v.Health)
	}
	if v.Recovery != (Recovery{Peak: 8, Remaining: 8}) || !v.RepairSince[5].Equal(dead.Time) {
		t.Errorf("recovery %+v, repair since %v", v.Recovery, v.RepairSince)
	}

	later := at(5, cs(1, true, nil), cs(2, false, nil))
	later.Chunks = ChunkStats{Total: 10, UnderReplicated: 3, ReReplicating: 1}
	later.Repairs = []Repair{{Handle: 5, Target: 1}, {Handle: 6, Target: 1}}
	c.observeLocked(later)
	v = c.View()
	if v.Recovery != (Recovery{Peak: 8, Remaining: 3}) {
		t.Errorf("recovery: %+v, want 3 of 8 left", v.Recovery)
	}
	if !v.RepairSince[5].Equal(dead.Time) || !v.RepairSince[6].Equal(later.Time) {
		t.Errorf("repair since: %v", v.RepairSince)
	}

	lost := at(6, cs(1, false, nil), cs(2, false, nil))
	lost.Chunks = ChunkStats{Total: 10, UnderReplicated: 10, Lost: 10}
	lost.Masters = []Master{{ID: "m1"}}
	c.observeLocked(lost)
	v = c.View()
	if v.Health.Level != "critical" || len(v.Health.Reasons) < 3 {
		t.Errorf("all dead, chunks lost, no leader: %+v", v.Health)
	}
	c.observeLocked(at(7, cs(1, true, nil), cs(2, true, nil)))
	if v = c.View(); v.Recovery.Peak != 0 || v.Health.Level != "ok" {
		t.Errorf("recovered: %+v %+v", v.Recovery, v.Health)
	}
}

func get(t *testing.T, h http.Handler, path string) (*http.Response, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestHandler(t *testing.T) {
	q := &snaps{queue: []any{errors.New("no leader known"),
		at(0, Chunkserver{ID: 1, Name: "cs1", Alive: true, Labels: map[string]string{"zone": "a"}, Domain: "a"}),
		errors.New("leader unreachable")}}
	c := New(Config{Snapshot: q.next, Logger: quiet})
	h := c.Handler()

	resp, body := get(t, h, "/api/snapshot")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "no leader known") {
		t.Fatalf("before any snapshot: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, h, "/api/snapshot") // samples again: succeeds
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("snapshot: %d %s", resp.StatusCode, body)
	}
	var v struct {
		Master       string `json:"master"`
		Chunkservers []struct {
			ID     uint64 `json:"id,string"`
			Name   string `json:"name"`
			Alive  bool   `json:"alive"`
			Domain string `json:"domain"`
		} `json:"chunkservers"`
		Health Health `json:"health"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("snapshot JSON: %v\n%s", err, body)
	}
	if v.Master != "m1" || len(v.Chunkservers) != 1 || v.Chunkservers[0].Name != "cs1" || !v.Chunkservers[0].Alive ||
		v.Chunkservers[0].Domain != "a" || v.Health.Level != "ok" || v.Error != "" {
		t.Errorf("snapshot: %s", body)
	}
	if !strings.Contains(string(body), `"id":"1"`) {
		t.Errorf("chunkserver ids are not JSON strings: %s", body)
	}

	// A failed sampling keeps the last snapshot, with the error beside it.
	c.sample(context.Background())
	_, body = get(t, h, "/api/snapshot")
	if err := json.Unmarshal(body, &v); err != nil || v.Error != "leader unreachable" || len(v.Chunkservers) != 1 {
		t.Errorf("after a failure: %v %s", err, body)
	}

	resp, body = get(t, h, "/api/history")
	var hist struct {
		Interval float64  `json:"interval_s"`
		Samples  []Sample `json:"samples"`
	}
	if err := json.Unmarshal(body, &hist); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("history: %d %v %s", resp.StatusCode, err, body)
	}
	if hist.Interval != 1 || len(hist.Samples) != 1 || hist.Samples[0].Alive != 1 {
		t.Errorf("history: %s", body)
	}

	for _, f := range []struct{ path, ctype, has string }{
		{"/", "text/html", `src="static/console.js"`},
		{"/static/console.js", "javascript", "api/snapshot"},
		{"/static/console.css", "text/css", ".badge"},
	} {
		resp, body := get(t, h, f.path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), f.ctype) || !strings.Contains(string(body), f.has) {
			t.Errorf("%s: %d %q, body without %q", f.path, resp.StatusCode, resp.Header.Get("Content-Type"), f.has)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: CSP %q", f.path, csp)
		}
	}
	// Nothing external: no URL of another origin in the page's files.
	for _, p := range []string{"/", "/static/console.js", "/static/console.css"} {
		_, body := get(t, h, p)
		s := strings.ReplaceAll(string(body), "http://www.w3.org/2000/svg", "")
		if strings.Contains(s, "http://") || strings.Contains(s, "https://") || strings.Contains(s, "//cdn") {
			t.Errorf("%s refers to another origin", p)
		}
	}
	if resp, _ := get(t, h, "/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/nope: %d", resp.StatusCode)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/snapshot", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", rec.Code)
	}
}

func TestRunSamplesEveryInterval(t *testing.T) {
	fake := clock.NewFake(t0)
	q := &snaps{queue: []any{at(0, cs(1, true, nil))}}
	c := New(Config{Snapshot: q.next, Interval: time.Second, History: 2, Clock: fake})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	waitFor := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for q.count() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d samplings, want %d", q.count(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(1) // at once
	for i := 2; i <= 4; i++ {
		if err := fake.BlockUntil(ctx, 1); err != nil {
			t.Fatal(err)
		}
		fake.Advance(time.Second)
		waitFor(i)
	}
	cancel()
	<-done
	if h := c.History(); len(h) != 2 {
		t.Errorf("history keeps %d samples, want 2", len(h))
	}
}
