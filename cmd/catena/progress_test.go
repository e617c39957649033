package main

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for progress.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestProgressLazy(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	var w strings.Builder
	p := newProgressWith(true, &w, "/f", 100<<20, clk.Now)
	p.Add(8 << 20)
	clk.Advance(progressDelay / 2)
	p.Add(8 << 20)
	if p.Shown() || w.Len() != 0 {
		t.Fatalf("bar drawn before %v: %q", progressDelay, w.String())
	}
	clk.Advance(progressDelay)
	p.Add(8 << 20)
	if !p.Shown() {
		t.Fatal("bar not drawn after the delay")
	}
	if p.Done() != 24<<20 {
		t.Fatalf("Done = %d; want %d", p.Done(), 24<<20)
	}
	p.Finish()
	if !strings.Contains(w.String(), "/f") {
		t.Fatalf("bar output lacks the description: %q", w.String())
	}
}

func TestProgressDisabled(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	var w strings.Builder
	p := newProgressWith(false, &w, "/f", -1, clk.Now)
	clk.Advance(time.Hour)
	p.Add(1)
	p.Add(2)
	p.Finish()
	if p.Shown() || w.Len() != 0 || p.Done() != 3 {
		t.Fatalf("disabled progress: shown %v, output %q, done %d", p.Shown(), w.String(), p.Done())
	}
	if isTerminal(&w) {
		t.Fatal("a strings.Builder is not a terminal")
	}
}
