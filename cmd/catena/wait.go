package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/catena-io/catena/client"
)

// Backoff of waitForMaster: from waitMin, doubling, capped at waitMax.
const (
	waitMin = 100 * time.Millisecond
	waitMax = 2 * time.Second
	// pingTimeout bounds one attempt of the first master call, election
	// of a leader included.
	pingTimeout = 5 * time.Second
)

// waitForMaster returns once ping, a first call to the master through c,
// succeeds. A long-running front end (nbd, mount) started before its
// master, as after a power cut where everything restarts at once, waits
// and retries with backoff instead of exiting, and says so once on
// stderr. It returns ctx's error when ctx ends first (SIGINT, SIGTERM),
// and ping's error when the master answered with something other than
// unreachable.
func (g *globals) waitForMaster(ctx context.Context, stderr io.Writer, name string, ping func(context.Context) error) error {
	masters := g.masterList()
	delay := waitMin
	said := false
	for {
		err := client.ErrMasterUnreachable
		// A refused connection is known at once; the call then waits for
		// a leader within pingTimeout.
		if reachable(ctx, masters) {
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err = ping(pctx)
			cancel()
			if err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, client.ErrMasterUnreachable) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if !said {
			fmt.Fprintf(stderr, "catena %s: waiting for master at %s ...\n", name, strings.Join(masters, ","))
			said = true
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, waitMax)
	}
}

// reachable reports whether a TCP connection to one of addrs succeeds,
// giving up at once when ctx ends (a signal while a dial hangs).
func reachable(ctx context.Context, addrs []string) bool {
	d := net.Dialer{Timeout: probeTimeout}
	for _, a := range addrs {
		if c, err := d.DialContext(ctx, "tcp", a); err == nil {
			c.Close()
			return true
		}
	}
	return false
}
