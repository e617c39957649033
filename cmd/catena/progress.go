package main

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressDelay is how long a transfer runs before a bar appears: short
// transfers stay silent.
const progressDelay = time.Second

// progress reports a transfer's bytes on a progress bar that it creates
// lazily, once the transfer has taken longer than progressDelay. Safe for
// concurrent use; a disabled progress only counts.
type progress struct {
	mu      sync.Mutex
	enabled bool
	w       io.Writer
	desc    string
	total   int64 // -1 when unknown (stdin)
	start   time.Time
	now     func() time.Time
	done    int64
	bar     *progressbar.ProgressBar
}

// newProgress returns a progress for a transfer of total bytes (-1 unknown)
// that draws on stderr when stderr is a terminal.
func newProgress(stderr io.Writer, desc string, total int64) *progress {
	return newProgressWith(isTerminal(stderr), stderr, desc, total, time.Now)
}

func newProgressWith(enabled bool, w io.Writer, desc string, total int64, now func() time.Time) *progress {
	return &progress{enabled: enabled, w: w, desc: desc, total: total, start: now(), now: now}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Add records n more bytes transferred.
func (p *progress) Add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += int64(n)
	if !p.enabled {
		return
	}
	if p.bar == nil {
		if p.now().Sub(p.start) <= progressDelay {
			return
		}
		p.bar = progressbar.NewOptions64(p.total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(p.desc),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionUseIECUnits(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionClearOnFinish(),
		)
		_ = p.bar.Set64(p.done)
		return
	}
	_ = p.bar.Add(n)
}

// Done returns the bytes recorded so far.
func (p *progress) Done() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Shown reports whether the bar has been drawn.
func (p *progress) Shown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bar != nil
}

// Finish removes the bar, if any, leaving stderr clean for the next line.
func (p *progress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
	}
}

// noProgress counts without ever drawing (cat: stdout is the data).
func noProgress() *progress {
	return newProgressWith(false, io.Discard, "", -1, time.Now)
}
