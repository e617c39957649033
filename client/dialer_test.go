package client

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// TestDialerUsedForEveryConnection: with Config.Dialer set, the master and
// every chunkserver are reached through it, and a dialer that refuses makes
// the operation fail instead of bypassing it.
func TestDialerUsedForEveryConnection(t *testing.T) {
	fc := newFakeCluster(t)
	var mu sync.Mutex
	dialed := map[string]bool{}
	refuse := false
	errRefused := errors.New("test: dial refused")
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		mu.Lock()
		dialed[addr] = true
		r := refuse
		mu.Unlock()
		if r {
			return nil, errRefused
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	c := newTestClient(t, Config{Masters: []string{fc.m.addr}, OpTimeout: 2 * time.Second, Dialer: dial})
	f := createFile(t, c, "/d")
	data := randBytes(1000, 7)
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if !dialed[fc.m.addr] {
		t.Errorf("master %s not dialed through Dialer (dialed %v)", fc.m.addr, dialed)
	}
	n := 0
	for _, s := range fc.css {
		if dialed[s.addr] {
			n++
		}
	}
	mu.Unlock()
	if n == 0 {
		t.Errorf("no chunkserver dialed through Dialer")
	}

	// A fresh client whose dialer refuses everything cannot reach the master.
	mu.Lock()
	refuse = true
	mu.Unlock()
	c2 := newTestClient(t, Config{Masters: []string{fc.m.addr}, OpTimeout: 300 * time.Millisecond, Dialer: dial})
	if _, err := c2.Stat(context.Background(), "/d"); err == nil {
		t.Fatal("Stat through a refusing dialer succeeded")
	}
}
