package serve

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// serve starts a gRPC server with Options and Limit(l, maxConns) serving
// the health service; it returns its address.
func serve(t *testing.T, maxConns int) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(Options(1 << 20)...)
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(Limit(l, maxConns))
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

func check(ctx context.Context, t *testing.T, addr string) (*grpc.ClientConn, error) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	return cc, err
}

// TestLimit: past the connection limit a new client is not served until
// a connection closes.
func TestLimit(t *testing.T) {
	addr := serve(t, 1)
	first, err := check(context.Background(), t, addr)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing to await but the absence of an answer: bounded by a deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	second, err := check(ctx, t, addr)
	cancel()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("second client past the limit: %v, want it waiting (deadline exceeded)", err)
	}
	first.Close()
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(second).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("second client once the first closed: %v", err)
	}
	second.Close()
}

// TestHandshakeTimeout: a peer that connects and says nothing is closed.
func TestHandshakeTimeout(t *testing.T) {
	handshakeTimeout = 100 * time.Millisecond
	defer func() { handshakeTimeout = HandshakeTimeout }()
	addr := serve(t, 0)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	// The server's settings frame may come first; then the close.
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("a silent connection was kept open")
	}
}

// TestIdle: a connection that receives nothing for the idle time ends as
// if its peer had closed it (io.EOF, and the peer sees the close); one
// that keeps sending lives on.
func TestIdle(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	il := Idle(l, 100*time.Millisecond)
	peer, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c, err := il.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Bytes that keep arriving within the idle time are read.
	buf := make([]byte, 1)
	for i := range 3 {
		if _, err := peer.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil || buf[0] != byte(i) {
			t.Fatalf("read %d: %v %v", i, buf, err)
		}
	}
	if _, err := c.Read(buf); err != io.EOF {
		t.Fatalf("read of a silent connection: %v, want io.EOF", err)
	}
	peer.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := peer.Read(buf); err != io.EOF {
		t.Fatalf("peer of the idle connection: %v, want the close (EOF)", err)
	}
}
