// Package serve holds what every Catena listener shares: bounds on what
// one peer, hostile or merely broken, can hold of a server.
//
// For the gRPC listeners (the master's, the chunkserver's):
//   - MaxConns connections at once (Limit): past it, new connections wait
//     in the kernel's listen backlog until one closes;
//   - a connection must finish its HTTP/2 handshake within
//     HandshakeTimeout (a peer that connects and says nothing is closed);
//   - keepalive pings every KeepaliveTime on a quiet connection, which is
//     closed when one goes unanswered for KeepaliveTimeout (a peer that
//     vanished without a reset, such as one behind a cut cable, frees its
//     connection);
//   - a connection without a call for MaxConnectionIdle is closed
//     gracefully (GOAWAY; a client redials on its next call);
//   - pings more frequent than every MinPingInterval are a protocol
//     violation that closes the connection.
//
// For a plain listener (the Raft transport's): Limit, and Idle, which
// ends a connection that receives nothing for a while as if its peer had
// closed it.
//
// Model: pure configuration and listener wrappers.
package serve

import (
	"io"
	"net"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Defaults.
const (
	MaxConns          = 4096
	HandshakeTimeout  = 10 * time.Second
	KeepaliveTime     = time.Minute
	KeepaliveTimeout  = 20 * time.Second
	MaxConnectionIdle = 15 * time.Minute
	MinPingInterval   = 10 * time.Second
)

// handshakeTimeout is HandshakeTimeout; tests shorten it.
var handshakeTimeout = HandshakeTimeout

// Options returns the server options of a Catena listener taking messages
// of up to maxMsg bytes, with the bounds above.
func Options(maxMsg int) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxMsg),
		grpc.MaxSendMsgSize(maxMsg),
		grpc.ConnectionTimeout(handshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:              KeepaliveTime,
			Timeout:           KeepaliveTimeout,
			MaxConnectionIdle: MaxConnectionIdle,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             MinPingInterval,
			PermitWithoutStream: true,
		}),
	}
}

// Limit bounds the connections l serves at once to n (MaxConns when n
// <= 0).
func Limit(l net.Listener, n int) net.Listener {
	if n <= 0 {
		n = MaxConns
	}
	return netutil.LimitListener(l, n)
}

// Idle wraps l so that a connection it accepts ends (reads return io.EOF,
// and the connection is closed) once nothing arrived on it for idle.
func Idle(l net.Listener, idle time.Duration) net.Listener { return idleListener{l, idle} }

type idleListener struct {
	net.Listener
	idle time.Duration
}

func (l idleListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &idleConn{Conn: c, idle: l.idle}, nil
}

type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.Conn.Close()
		return n, io.EOF
	}
	return n, err
}
