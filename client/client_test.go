package client_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// TestHeadRestartDuringWrite runs against a real in-process cluster: a write
// issued while its chain's head is down keeps retrying (same request id) and
// completes once the head is back; the cleanup's replica check then proves
// every replica holds the same bytes.
func TestHeadRestartDuringWrite(t *testing.T) {
	c := clustertest.New(t, cluster.Config{})
	retried := make(chan struct{}, 1)
	cl, err := client.New(client.Config{
		Masters: []string{c.MasterAddr()},
		TLSDir:  c.TLSDir(),
		Logger:  slog.New(&signalHandler{msg: "write retry", ch: retried}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := t.Context()
	const cs = 1 << 20
	f, err := cl.Create(ctx, "/w", client.CreateOptions{ChunkSize: cs})
	if err != nil {
		t.Fatal(err)
	}
	first := bytes.Repeat([]byte("a"), 1000)
	if _, err := f.WriteAt(first, 0); err != nil {
		t.Fatal(err)
	}
	_, chunks, err := cl.StatChunks(ctx, "/w")
	if err != nil || len(chunks) != 1 {
		t.Fatalf("StatChunks = %v, %v", chunks, err)
	}
	head := -1
	for i := range c.NumChunkservers() {
		if c.ChunkserverID(i) == chunks[0].Chain[0].ID {
			head = i
		}
	}
	if head < 0 {
		t.Fatalf("head %d is not a cluster chunkserver", chunks[0].Chain[0].ID)
	}
	if err := c.StopChunkserver(head); err != nil {
		t.Fatal(err)
	}
	second := bytes.Repeat([]byte("b"), 3000)
	done := make(chan error, 1)
	go func() {
		_, err := f.WriteAt(second, 500)
		done <- err
	}()
	// Restart only once the client has seen the head fail, so the test
	// always covers the retry path.
	select {
	case <-retried:
	case err := <-done:
		t.Fatalf("write finished with the head down: %v", err)
	}
	if err := c.RestartChunkserver(ctx, head); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("write across head restart: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("write did not finish after the head came back")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte(nil), first[:500]...), second...)
	g, err := cl.Open(ctx, "/w")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Size() != int64(len(want)) {
		t.Fatalf("size after reopen = %d, want %d", g.Size(), len(want))
	}
	got := make([]byte, len(want))
	if _, err := g.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back: %v, equal %v", err, bytes.Equal(got, want))
	}
}

// signalHandler is a slog.Handler that signals ch when a record with msg is
// logged, so a test can await a client-internal event instead of sleeping.
type signalHandler struct {
	msg string
	ch  chan struct{}
}

func (h *signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *signalHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *signalHandler) WithGroup(string) slog.Handler            { return h }
func (h *signalHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}
