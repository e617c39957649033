package clock

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Fake is a Clock that moves only when told (Advance, Set). Timers,
// tickers and AfterFunc callbacks due at or before the new time fire, in
// deadline order, during the call that moved it. Safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed and replaced whenever timers is added to
}

var _ Clock = (*Fake)(nil)

// NewFake returns a Fake reading start.
func NewFake(start time.Time) *Fake { return &Fake{now: start, changed: make(chan struct{})} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d (d < 0 is ignored) and fires what
// became due.
func (f *Fake) Advance(d time.Duration) {
	if d < 0 {
		d = 0
	}
	f.mu.Lock()
	f.set(f.now.Add(d))
}

// Set moves the clock to t (an earlier t is ignored) and fires what became
// due.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	if t.Before(f.now) {
		t = f.now
	}
	f.set(t)
}

// set moves to t with f.mu held, fires due timers one by one (in deadline
// order, the clock reading each deadline as it fires) and unlocks.
func (f *Fake) set(t time.Time) {
	for {
		var next *fakeTimer
		for _, ft := range f.timers {
			if !ft.when.After(t) && (next == nil || ft.when.Before(next.when)) {
				next = ft
			}
		}
		if next == nil {
			break
		}
		f.now = next.when
		fire := next.fireLocked(f)
		if fire != nil {
			f.mu.Unlock()
			fire()
			f.mu.Lock()
		}
	}
	f.now = t
	f.mu.Unlock()
}

// Timers returns how many timers and tickers are armed (a test waits for
// a goroutine to arm its timer before advancing).
func (f *Fake) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// BlockUntil waits until at least n timers and tickers are armed (a test
// waits for a goroutine to arm its timer before advancing), or ctx ends.
func (f *Fake) BlockUntil(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		armed, ch := len(f.timers), f.changed
		f.mu.Unlock()
		if armed >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *Fake) add(ft *fakeTimer) {
	f.timers = append(f.timers, ft)
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *Fake) remove(ft *fakeTimer) bool {
	i := slices.Index(f.timers, ft)
	if i < 0 {
		return false
	}
	f.timers = slices.Delete(f.timers, i, i+1)
	return true
}

// NewTimer returns a timer firing after d of fake time.
func (f *Fake) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	ft := &fakeTimer{f: f, c: make(chan time.Time, 1), when: f.now.Add(d)}
	f.add(ft)
	f.mu.Unlock()
	if d <= 0 {
		f.Advance(0)
	}
	return ft
}

// NewTicker returns a ticker firing every d of fake time.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := &fakeTimer{f: f, c: make(chan time.Time, 1), when: f.now.Add(d), period: d}
	f.add(ft)
	return fakeTicker{ft}
}

// fakeTicker is a fakeTimer with a period, as a Ticker.
type fakeTicker struct{ t *fakeTimer }

func (tk fakeTicker) C() <-chan time.Time   { return tk.t.c }
func (tk fakeTicker) Stop()                 { tk.t.Stop() }
func (tk fakeTicker) Reset(d time.Duration) { tk.t.Reset(d) }

// AfterFunc calls fn in its own goroutine after d of fake time.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	f.mu.Lock()
	ft := &fakeTimer{f: f, fn: fn, when: f.now.Add(d)}
	f.add(ft)
	f.mu.Unlock()
	if d <= 0 {
		f.Advance(0)
	}
	return ft
}

// fakeTimer is a timer, a ticker (period > 0) or an AfterFunc (fn set).
type fakeTimer struct {
	f      *Fake
	c      chan time.Time
	fn     func()
	when   time.Time
	period time.Duration
}

var (
	_ Timer  = (*fakeTimer)(nil)
	_ Ticker = fakeTicker{}
)

// fireLocked fires the timer at f.now and re-arms a ticker. It returns a
// function to call without the lock (an AfterFunc), or nil.
func (ft *fakeTimer) fireLocked(f *Fake) func() {
	if ft.period > 0 {
		ft.when = ft.when.Add(ft.period)
	} else {
		f.remove(ft)
	}
	if ft.fn != nil {
		fn := ft.fn
		return func() { go fn() }
	}
	select {
	case ft.c <- f.now:
	default: // a slow reader misses ticks, as with time.Ticker
	}
	return nil
}

func (ft *fakeTimer) C() <-chan time.Time { return ft.c }

func (ft *fakeTimer) Stop() bool {
	ft.f.mu.Lock()
	defer ft.f.mu.Unlock()
	return ft.f.remove(ft)
}

// Reset re-arms the timer (or ticker, with a new period) d from now.
func (ft *fakeTimer) Reset(d time.Duration) bool {
	ft.f.mu.Lock()
	active := ft.f.remove(ft)
	ft.when = ft.f.now.Add(d)
	if ft.period > 0 {
		if d <= 0 {
			ft.f.mu.Unlock()
			panic("clock: non-positive interval for Ticker.Reset")
		}
		ft.period = d
	}
	ft.f.add(ft)
	ft.f.mu.Unlock()
	if d <= 0 {
		ft.f.Advance(0)
	}
	return active
}
