package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
)

func newAppendCmd(g *globals) *cobra.Command {
	var chunkSize, recordSize string
	var replication, parallel int
	cmd := &cobra.Command{
		Use:   "append [--record-size SIZE] [--parallel N] REMOTE",
		Short: "Append records from stdin to a file (one per line), each exactly once, with other producers at once",
		Long: `Append records read from stdin to REMOTE, created if it does not exist
(--chunk-size and --replication then apply). Each line is a record (its
newline not included), or with --record-size each SIZE bytes of stdin.
Many producers may append to one file at once without agreeing on
offsets: the head of the file's last chunk picks each record's offset,
and a retried append keeps its first one, so every record is in the file
exactly once, whole. Records are framed (length and checksum) and at most
a quarter of the chunk size; read them back with catena cat --records.
--parallel appends N records at a time (their order in the file is then
not stdin's).`,
		Example: "  journalctl -f | catena append /logs/host1\n" +
			"  catena cat --records /logs/host1\n" +
			"  head -c 4M /dev/urandom | catena append --record-size 4KiB --parallel 8 /queue",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			opts := client.CreateOptions{Replication: replication}
			if chunkSize != "" {
				n, err := parseSize(chunkSize)
				if err != nil {
					return &usageError{cmd: cmd, err: err}
				}
				opts.ChunkSize = n
			}
			var size int64
			if recordSize != "" {
				n, err := parseSize(recordSize)
				if err != nil || n <= 0 {
					return &usageError{cmd: cmd, err: fmt.Errorf("bad --record-size %q (want a size such as 4KiB)", recordSize)}
				}
				size = n
			}
			if replication < 0 || parallel < 1 {
				return &usageError{cmd: cmd, err: fmt.Errorf("--replication and --parallel must be positive")}
			}
			p := remotePath(a[0])
			return g.withClient(func(c *client.Client) error {
				n, bytes, err := appendRecords(cmd.Context(), c, p, opts, size, parallel, cmd.InOrStdin())
				if n > 0 || err == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "appended %d records (%s) to %s\n", n, formatSize(bytes), p)
				}
				return fail("append "+p, err)
			})
		},
	}
	cmd.Flags().StringVar(&recordSize, "record-size", "", "records of this many bytes of stdin instead of lines")
	cmd.Flags().IntVar(&parallel, "parallel", 1, "records appended at a time")
	cmd.Flags().StringVar(&chunkSize, "chunk-size", "", "chunk size of a new file, e.g. 16MiB (default 64MiB)")
	cmd.Flags().IntVar(&replication, "replication", 0, "replicas per chunk of a new file (default 3)")
	return cmd
}

// appendRecords appends the records of in to path, creating it if need
// be; it returns how many records and bytes were appended.
func appendRecords(ctx context.Context, c *client.Client, path string, opts client.CreateOptions, size int64, parallel int, in io.Reader) (int64, int64, error) {
	f, err := c.Open(ctx, path)
	if errors.Is(err, client.ErrNotFound) {
		f, err = c.Create(ctx, path, opts)
		if errors.Is(err, client.ErrExist) { // another producer made it first
			f, err = c.Open(ctx, path)
		}
	}
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	if info.IsDir {
		return 0, 0, client.ErrIsDir
	}
	max := client.MaxRecordSize(info.ChunkSize)
	if size > int64(max) {
		return 0, 0, fmt.Errorf("--record-size %d over the %d bytes a record of this file may have (a quarter of its chunk)", size, max)
	}
	next := lineRecords(in, max)
	if size > 0 {
		next = sizedRecords(in, int(size))
	}
	var (
		mu         sync.Mutex
		n, total   int64
		firstErr   error
		wg         sync.WaitGroup
		sem        = make(chan struct{}, parallel)
		readFailed error
	)
	for {
		rec, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readFailed = err
			break
		}
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := f.Append(ctx, rec)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			n++
			total += int64(len(rec))
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = readFailed
	}
	return n, total, firstErr
}

// lineRecords returns the lines of in, one at a time, refusing one over
// max bytes.
func lineRecords(in io.Reader, max int) func() ([]byte, error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), max+1)
	return func() ([]byte, error) {
		if sc.Scan() {
			return append([]byte(nil), sc.Bytes()...), nil
		}
		if errors.Is(sc.Err(), bufio.ErrTooLong) {
			return nil, fmt.Errorf("a line over %d bytes, the most a record of this file may have", max)
		}
		if sc.Err() != nil {
			return nil, sc.Err()
		}
		return nil, io.EOF
	}
}

// sizedRecords returns in cut in records of size bytes (the last may be
// shorter).
func sizedRecords(in io.Reader, size int) func() ([]byte, error) {
	return func() ([]byte, error) {
		b := make([]byte, size)
		n, err := io.ReadFull(in, b)
		if n > 0 {
			return b[:n], nil
		}
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		return nil, err
	}
}
