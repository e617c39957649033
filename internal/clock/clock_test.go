package clock

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestFakeTimerFiresOnAdvance(t *testing.T) {
	f := NewFake(time.Unix(100, 0))
	tm := f.NewTimer(time.Second)
	f.Advance(999 * time.Millisecond)
	select {
	case <-tm.C():
		t.Fatal("timer fired early")
	default:
	}
	f.Advance(time.Millisecond)
	select {
	case at := <-tm.C():
		if !at.Equal(time.Unix(101, 0)) {
			t.Fatalf("fired at %v, want %v", at, time.Unix(101, 0))
		}
	default:
		t.Fatal("timer did not fire")
	}
	if tm.Stop() {
		t.Fatal("Stop of a fired timer reported active")
	}
	if n := f.Timers(); n != 0 {
		t.Fatalf("%d timers armed after firing", n)
	}
}

func TestFakeTickerKeepsPeriodAndDropsMissedTicks(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	tk := f.NewTicker(10 * time.Millisecond)
	defer tk.Stop()
	f.Advance(35 * time.Millisecond) // three ticks due, one buffered
	got := <-tk.C()
	if !got.Equal(time.Unix(0, 0).Add(10 * time.Millisecond)) {
		t.Fatalf("first tick at %v", got)
	}
	select {
	case <-tk.C():
		t.Fatal("missed ticks were kept")
	default:
	}
	f.Advance(5 * time.Millisecond) // 40 ms: the fourth tick
	if got := <-tk.C(); !got.Equal(time.Unix(0, 0).Add(40 * time.Millisecond)) {
		t.Fatalf("fourth tick at %v", got)
	}
	if f.Now() != time.Unix(0, 0).Add(40*time.Millisecond) {
		t.Fatalf("now %v", f.Now())
	}
}

func TestFakeAfterFuncAndStop(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	var n atomic.Int32
	done := make(chan struct{})
	f.AfterFunc(time.Second, func() { n.Add(1); close(done) })
	stopped := f.AfterFunc(time.Second, func() { n.Add(100) })
	if !stopped.Stop() {
		t.Fatal("Stop of an armed AfterFunc reported inactive")
	}
	f.Advance(2 * time.Second)
	<-done
	if n.Load() != 1 {
		t.Fatalf("callbacks ran %d", n.Load())
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan bool)
	go func() { res <- Sleep(ctx, f, time.Hour) }()
	if err := f.BlockUntil(context.Background(), 1); err != nil { // the sleeper armed its timer
		t.Fatal(err)
	}
	cancel()
	if <-res {
		t.Fatal("Sleep reported the whole duration after cancel")
	}
	go func() { res <- Sleep(context.Background(), f, time.Hour) }()
	if err := f.BlockUntil(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	f.Advance(time.Hour)
	if !<-res {
		t.Fatal("Sleep did not complete after its duration")
	}
}

func TestRealSleep(t *testing.T) {
	if !Sleep(context.Background(), Real{}, time.Millisecond) {
		t.Fatal("real Sleep reported early end")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, Real{}, time.Hour) {
		t.Fatal("real Sleep with a done context reported completion")
	}
}
