package nbd

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// gatedDevice is a MemDevice whose WriteAt waits for release, after
// saying it started on entered.
type gatedDevice struct {
	*MemDevice
	entered chan struct{}
	release chan struct{}
}

func (d *gatedDevice) WriteAt(p []byte, off int64) (int, error) {
	d.entered <- struct{}{}
	<-d.release
	return d.MemDevice.WriteAt(p, off)
}

// pipeTo serves one net.Pipe connection on s.
func pipeTo(t *testing.T, s *Server) (*testClient, chan error) {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- s.ServeConn(b) }()
	t.Cleanup(func() { a.Close() })
	a.SetDeadline(time.Now().Add(20 * time.Second))
	return &testClient{t: t, c: a}, done
}

// TestMemoryBudget: a request's data counts against the server-wide
// MaxMemory from before its payload is read until its reply is sent.
func TestMemoryBudget(t *testing.T) {
	dev := &gatedDevice{MemDevice: NewMemDevice(4 << 20), entered: make(chan struct{}), release: make(chan struct{})}
	s, err := NewServer(Config{Exports: MapExports{"v": dev}, MaxPayload: 1 << 20, MaxMemory: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.cfg.MaxMemory != 1<<20 {
		t.Fatalf("MaxMemory %d, want it raised to MaxPayload", s.cfg.MaxMemory)
	}
	a, _ := pipeTo(t, s)
	b, _ := pipeTo(t, s)
	a.goExport("v", false)
	b.goExport("v", false)
	a.request(Request{Type: cmdWrite, Cookie: 1, Length: 1 << 20}, make([]byte, 1<<20))
	<-dev.entered
	if s.mem.TryAcquire(1) {
		t.Fatal("a 1 MiB write in the device left room in a 1 MiB budget")
	}
	// b's read waits for room; it is answered once a's write is done.
	b.request(Request{Type: cmdRead, Cookie: 2, Length: 4096}, nil)
	close(dev.release)
	if errno, cookie, _ := a.simpleReply(0); errno != 0 || cookie != 1 {
		t.Fatalf("write: errno %d cookie %d", errno, cookie)
	}
	if errno, cookie, data := b.simpleReply(4096); errno != 0 || cookie != 2 || len(data) != 4096 {
		t.Fatalf("read: errno %d cookie %d, %d bytes", errno, cookie, len(data))
	}
	// Everything was given back (the replies are sent before the release
	// is observed: wait for it as an event, not a time).
	deadline := time.Now().Add(10 * time.Second)
	for !s.mem.TryAcquire(1 << 20) {
		if time.Now().After(deadline) {
			t.Fatal("budget not given back after the replies")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReplyTimeout: a client that stops reading its replies is
// disconnected, and what its requests held is given back.
func TestReplyTimeout(t *testing.T) {
	s, err := NewServer(Config{Exports: MapExports{"v": NewMemDevice(1 << 20)}, MaxPayload: 1 << 20, ReplyTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tc, done := pipeTo(t, s)
	tc.goExport("v", false)
	tc.request(Request{Type: cmdRead, Cookie: 1, Length: 1 << 20}, nil) // its reply is never read
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, io.EOF) {
			t.Logf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a client that reads no reply is still served")
	}
	if !s.mem.TryAcquire(s.cfg.MaxMemory) {
		t.Fatal("memory of the dropped connection's requests not given back")
	}
}

// TestMaxConnsAndHandshakeTimeout: past MaxConns a connection waits in
// the backlog; one that never negotiates is closed at HandshakeTimeout,
// which lets the next one in.
func TestMaxConnsAndHandshakeTimeout(t *testing.T) {
	s, err := NewServer(Config{Exports: MapExports{"v": NewMemDevice(4096)}, MaxConns: 1, HandshakeTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	defer func() {
		s.Close()
		if err := <-errc; err != ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		t.Cleanup(func() { c.Close() })
		return c
	}
	first := dial()
	if _, err := io.ReadFull(first, make([]byte, 18)); err != nil {
		t.Fatalf("first greeting: %v", err)
	}
	second := dial() // accepted by the kernel, not served: the slot is taken
	if _, err := io.ReadFull(second, make([]byte, 18)); err != nil {
		t.Fatalf("second greeting: %v", err)
	}
	// The second was greeted only after the first, silent, was closed
	// (its FIN is already queued: the read ends at once).
	first.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := first.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("first connection after the second was greeted: %v, want EOF (closed at its handshake timeout)", err)
	}
}
