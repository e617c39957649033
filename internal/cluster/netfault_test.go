package cluster_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/catena-io/catena/internal/cluster"
)

// echoServer listens on loopback and echoes every connection.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func dialOK(t *testing.T, n *cluster.Network, from, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := n.Dialer(from)(ctx, addr)
	if err != nil {
		t.Fatalf("%s dials %s: %v", from, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatalf("%s -> %s write: %v", from, addr, err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil || b[0] != 'x' {
		t.Fatalf("%s -> %s echo: %q, %v", from, addr, b, err)
	}
	return c
}

func dialCut(t *testing.T, n *cluster.Network, from, addr string) {
	t.Helper()
	if _, err := n.Dialer(from)(t.Context(), addr); !errors.Is(err, cluster.ErrNetworkCut) {
		t.Fatalf("%s dials %s: %v, want ErrNetworkCut", from, addr, err)
	}
}

// connClosed asserts that c was closed by the network: a read fails at once.
func connClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read on a cut connection: %v, want closed", err)
	}
}

func TestNetworkPartition(t *testing.T) {
	n := cluster.NewNetwork()
	a, b, m := echoServer(t), echoServer(t), echoServer(t)
	n.Register(a, "a")
	n.Register(b, "b")
	n.Register(m, "m")
	ab := dialOK(t, n, "a", b)
	ba := dialOK(t, n, "b", a)
	am := dialOK(t, n, "a", m)
	if got := n.Node(b); got != "b" {
		t.Fatalf("Node(%s) = %q", b, got)
	}

	// Two-way: both directions refused and closed, other links untouched.
	n.Partition("a", "b")
	connClosed(t, ab)
	connClosed(t, ba)
	dialCut(t, n, "a", b)
	dialCut(t, n, "b", a)
	dialOK(t, n, "a", m)
	if _, err := am.Write([]byte("y")); err != nil {
		t.Fatalf("unrelated connection cut: %v", err)
	}
	n.Heal()
	dialOK(t, n, "a", b)
	dialOK(t, n, "b", a)

	// One-way: a cannot reach b; b still reaches a.
	ab = dialOK(t, n, "a", b)
	ba = dialOK(t, n, "b", a)
	n.PartitionOneWay("a", "b")
	connClosed(t, ab)
	dialCut(t, n, "a", b)
	dialOK(t, n, "b", a)
	if _, err := ba.Write([]byte("z")); err != nil {
		t.Fatalf("b -> a connection cut by a one-way a -> b partition: %v", err)
	}
	n.Heal()

	// Isolation: everything to and from the node, unknown addresses
	// included for its own dials; Rejoin restores it.
	unknown := echoServer(t)
	ma := dialOK(t, n, "m", a)
	n.Isolate("a")
	connClosed(t, ma)
	dialCut(t, n, "m", a)
	dialCut(t, n, "a", m)
	dialCut(t, n, "a", unknown)
	dialOK(t, n, "m", b)
	dialOK(t, n, "m", unknown)
	n.Rejoin("a")
	dialOK(t, n, "m", a)
	dialOK(t, n, "a", unknown)
	if n.Conns() == 0 {
		t.Fatal("open connections not tracked")
	}
}
