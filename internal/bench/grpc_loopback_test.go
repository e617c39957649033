package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The loopback baseline: how many bytes per second one gRPC stream carries
// over a real 127.0.0.1 TCP connection with default gRPC settings and the
// default proto codec, in 1 MiB messages (the client's default MaxIOSize).
// Catena's sequential read cannot beat this per stream; docs/benchmarks.md
// compares seqread against it.

const loopbackMsg = 1 << 20

// loopbackServer is a hand-written bidi-stream service so the baseline does
// not depend on any Catena service: "push" drains what the client sends;
// "pull" reads one request carrying a count and sends that many messages.
type loopbackServer struct{ payload []byte }

func (s *loopbackServer) push(_ any, st grpc.ServerStream) error {
	var m wrapperspb.BytesValue
	for {
		if err := st.RecvMsg(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return st.SendMsg(&wrapperspb.BytesValue{})
			}
			return err
		}
	}
}

func (s *loopbackServer) pull(_ any, st grpc.ServerStream) error {
	var req wrapperspb.BytesValue
	if err := st.RecvMsg(&req); err != nil {
		return err
	}
	n := binary.LittleEndian.Uint64(req.Value)
	m := &wrapperspb.BytesValue{Value: s.payload}
	for range n {
		if err := st.SendMsg(m); err != nil {
			return err
		}
	}
	return nil
}

func startLoopback(tb testing.TB) *grpc.ClientConn {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer()
	impl := &loopbackServer{payload: make([]byte, loopbackMsg)}
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "catena.bench.Loopback",
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{
			{StreamName: "Push", Handler: impl.push, ClientStreams: true, ServerStreams: true},
			{StreamName: "Pull", Handler: impl.pull, ClientStreams: true, ServerStreams: true},
		},
	}, impl)
	go func() { _ = srv.Serve(lis) }()
	tb.Cleanup(srv.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cc.Close() })
	return cc
}

var bidi = &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}

// push sends n 1 MiB messages on one stream and waits for the server's
// final reply, so every byte has been received when it returns.
func push(ctx context.Context, cc *grpc.ClientConn, n int) error {
	st, err := cc.NewStream(ctx, bidi, "/catena.bench.Loopback/Push")
	if err != nil {
		return err
	}
	m := &wrapperspb.BytesValue{Value: make([]byte, loopbackMsg)}
	for range n {
		if err := st.SendMsg(m); err != nil {
			return err
		}
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	return st.RecvMsg(&wrapperspb.BytesValue{})
}

// pull asks for n 1 MiB messages on one stream and returns the bytes received.
func pull(ctx context.Context, cc *grpc.ClientConn, n int) (int64, error) {
	st, err := cc.NewStream(ctx, bidi, "/catena.bench.Loopback/Pull")
	if err != nil {
		return 0, err
	}
	req := binary.LittleEndian.AppendUint64(nil, uint64(n))
	if err := st.SendMsg(&wrapperspb.BytesValue{Value: req}); err != nil {
		return 0, err
	}
	if err := st.CloseSend(); err != nil {
		return 0, err
	}
	var total int64
	var m wrapperspb.BytesValue
	for {
		if err := st.RecvMsg(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return total, nil
			}
			return total, err
		}
		total += int64(len(m.Value))
	}
}

// TestLoopbackStream checks the benchmark's plumbing moves every byte.
func TestLoopbackStream(t *testing.T) {
	cc := startLoopback(t)
	ctx := t.Context()
	if err := push(ctx, cc, 3); err != nil {
		t.Fatalf("push: %v", err)
	}
	got, err := pull(ctx, cc, 3)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if got != 3*loopbackMsg {
		t.Fatalf("pull received %d bytes, want %d", got, 3*loopbackMsg)
	}
}

// BenchmarkGRPCStream reports MB/s of one gRPC stream over 127.0.0.1 TCP.
// client-to-server is the write direction (client -> head), server-to-client
// the read direction (tail -> client).
func BenchmarkGRPCStream(b *testing.B) {
	cc := startLoopback(b)
	b.Run("client-to-server", func(b *testing.B) {
		b.SetBytes(loopbackMsg)
		b.ReportAllocs()
		if err := push(b.Context(), cc, b.N); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("server-to-client", func(b *testing.B) {
		b.SetBytes(loopbackMsg)
		b.ReportAllocs()
		n, err := pull(b.Context(), cc, b.N)
		if err != nil {
			b.Fatal(err)
		}
		if n != int64(b.N)*loopbackMsg {
			b.Fatalf("received %d bytes, want %d", n, int64(b.N)*loopbackMsg)
		}
	})
}
