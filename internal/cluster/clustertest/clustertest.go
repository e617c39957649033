// Package clustertest starts in-process clusters for tests and checks the
// cluster's invariants when a test ends (STYLE.md principle 7).
//
// New starts a cluster in a fresh t.TempDir() (or cfg.Dir when set) and
// registers a cleanup that settles the cluster (Cluster.Settle: clears
// every network and disk fault, restarts stopped masters and
// chunkservers, waits, bounded, until every chain has its replication
// factor again and no repair runs, then runs CheckReplicas and
// CheckMetadata, the metadata fsck of every master with their states
// compared), fails the test when that fails, and closes the cluster. A test that closes its cluster itself (to
// restart it, say) is fine: the cleanup skips the check of a closed cluster.
//
// Logs go to stderr at error level; set CATENA_TEST_LOG=debug (or info,
// warn) for more.
package clustertest

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
)

// checkTimeout bounds the cleanup's replica scan.
const checkTimeout = time.Minute

// New starts a cluster for t; see the package comment.
func New(t testing.TB, cfg cluster.Config) *cluster.Cluster {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = Logger()
	}
	// Not t.Context(): it is cancelled before cleanups run, and the cluster
	// must outlive the test body for the cleanup's check.
	ctx, cancel := context.WithTimeout(context.Background(), cluster.DefaultReadyTimeout)
	defer cancel()
	c, err := cluster.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		defer cancel()
		if err := c.Settle(ctx); err != nil && !errors.Is(err, cluster.ErrClosed) {
			t.Errorf("cleanup invariants: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("close cluster: %v", err)
		}
	})
	return c
}

// Client returns a client of c, closed when the test ends.
func Client(t testing.TB, c *cluster.Cluster) *client.Client {
	t.Helper()
	cl, err := c.NewClient()
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// Eventually polls cond every few milliseconds until it returns nil or
// timeout passes, then fails the test with cond's last error.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		<-tick.C
	}
}

// Logger returns the logger tests give their clusters.
func Logger() *slog.Logger {
	level := slog.LevelError
	switch strings.ToLower(os.Getenv("CATENA_TEST_LOG")) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
