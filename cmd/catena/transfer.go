package main

import (
	"context"
	"io"
)

// Transfer sizing: large pieces keep the client's parallel I/O busy; a few
// buffers let the local side (disk, pipe) overlap with the network side.
const (
	transferBuf  = 8 << 20
	transferBufs = 3
)

// pipeline moves data from fill to drain through nbuf buffers of bufSize,
// running fill in its own goroutine so both sides overlap. fill writes up to
// len(buf) bytes and returns io.EOF (possibly with n > 0) at the end; drain
// consumes pieces in order. It returns the bytes drained and the first error.
// On a drain error fill may still be blocked (on stdin, say); pipeline
// returns without waiting for it.
func pipeline(ctx context.Context, bufSize, nbuf int, fill func(buf []byte) (int, error), drain func(p []byte) error) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type piece struct {
		buf []byte
		n   int
	}
	free := make(chan []byte, nbuf)
	for range nbuf {
		free <- make([]byte, bufSize)
	}
	// full never blocks a sender: at most nbuf buffers exist.
	full := make(chan piece, nbuf)
	var fillErr error // written before close(full), read after it
	go func() {
		defer close(full)
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				fillErr = ctx.Err()
				return
			}
			n, err := fill(buf)
			if n > 0 {
				full <- piece{buf, n}
			}
			if err != nil {
				if err != io.EOF {
					fillErr = err
				}
				return
			}
		}
	}()
	var total int64
	for p := range full {
		if err := drain(p.buf[:p.n]); err != nil {
			return total, err
		}
		total += int64(p.n)
		free <- p.buf
	}
	return total, fillErr
}

// readFull adapts io.ReadFull to pipeline's fill: a short final piece is
// returned with io.EOF.
func readFull(r io.Reader) func([]byte) (int, error) {
	return func(buf []byte) (int, error) {
		n, err := io.ReadFull(r, buf)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		return n, err
	}
}
