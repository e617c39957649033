// Package proctest runs the catena binary as real processes for end-to-end
// tests and benchmarks (tests/cli, tests/crash, internal/bench).
//
// Every process runs in its own process group (or in a Group shared with
// others, so that one signal stops them all at once) with CATENA_MASTER
// cleared; Start returns once a stdout line with the given prefix
// appeared (Spawn and AwaitReady split the two), and the test's cleanup
// SIGKILLs the process by its PID, so nothing outlives the test.
// This package is for tests only: it imports testing.
package proctest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ReadyTimeout bounds the wait for a process's ready line.
const ReadyTimeout = 2 * time.Minute

// Build compiles cmd/catena into dir and returns the binary's path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "catena")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/catena-io/catena/cmd/catena").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// FreeAddr returns a loopback address that was free a moment ago: a
// random port below Linux's ephemeral range (32768-60999), so that no
// outgoing connection of this or another test takes it before the
// process given it listens (a port from ":0" is an ephemeral one, which
// the next outgoing connection may get).
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", freePortLow+rand.IntN(freePortHigh-freePortLow))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// FreeAddr's range: registered ports below the ephemeral range.
const (
	freePortLow  = 20000
	freePortHigh = 32000
)

// Proc is one running process.
type Proc struct {
	Name   string
	Args   []string
	cmd    *exec.Cmd
	group  *Group        // nil when the process leads a group of its own
	stderr *lockedBuffer // nil when stderr goes elsewhere
	lines  chan string   // stdout lines after the ready line (dropped when full)
	done   chan struct{} // closed once Wait returned
	err    error         // Wait's result, valid after done
}

// Options configures Spawn.
type Options struct {
	// Stderr receives the process's stderr; nil keeps it in memory
	// (Stderr, AwaitStderr).
	Stderr io.Writer
	// Group, when set, puts the process into that shared process group,
	// so Group.Kill reaches it together with the others.
	Group *Group
}

// Group is a process group shared by the processes spawned into it: one
// kill(2) of the group delivers SIGKILL to every member in the same
// instant, as a power cut would stop them. The first process spawned into
// a Group leads it; use a new Group after every Kill.
type Group struct {
	mu   sync.Mutex
	pgid int
}

// Kill sends SIGKILL to every process of the group at once. Call Wait on
// the members (or Proc.Kill, which then only waits) to reap them.
func (g *Group) Kill() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pgid == 0 {
		return nil
	}
	err := syscall.Kill(-g.pgid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil // every member has exited already
	}
	return err
}

// Start runs bin args... and waits up to ReadyTimeout for a stdout line
// starting with ready. Its stderr goes to stderr, or is kept in memory
// (Stderr) when stderr is nil. Cleanup kills the process group.
func Start(t testing.TB, bin, name, ready string, stderr io.Writer, args ...string) *Proc {
	t.Helper()
	p := Spawn(t, bin, name, Options{Stderr: stderr}, args...)
	if err := p.AwaitReady(ready, ReadyTimeout); err != nil {
		t.Fatal(err)
	}
	return p
}

// Spawn runs bin args... and returns at once; AwaitReady waits for its
// ready line. Cleanup kills it (with its own process group when it leads
// one).
func Spawn(t testing.TB, bin, name string, o Options, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "CATENA_MASTER=")
	// An os.Pipe rather than StdoutPipe: Wait must not race with our reads.
	stdout, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Proc{Name: name, Args: args, cmd: cmd, group: o.Group, lines: make(chan string, 16), done: make(chan struct{})}
	stderr := o.Stderr
	if stderr == nil {
		p.stderr = newLockedBuffer()
		stderr = p.stderr
	}
	cmd.Stdout, cmd.Stderr = pw, stderr
	if g := o.Group; g != nil {
		g.mu.Lock()
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: g.pgid}
		err = cmd.Start()
		if err == nil && g.pgid == 0 {
			g.pgid = cmd.Process.Pid
		}
		g.mu.Unlock()
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		err = cmd.Start()
	}
	pw.Close()
	if err != nil {
		stdout.Close()
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody reads them
			}
		}
		stdout.Close()
		close(p.lines)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p
}

// AwaitReady waits up to d for a stdout line starting with ready. It
// errors when the process exits first or d passes. Safe to call from any
// goroutine (it does not touch testing.TB).
func (p *Proc) AwaitReady(ready string, d time.Duration) error {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.done
				return fmt.Errorf("%s exited before ready (%v); stderr:\n%s", p.Name, p.err, p.Stderr())
			}
			if strings.HasPrefix(l, ready) {
				return nil
			}
		case <-deadline.C:
			return fmt.Errorf("%s not ready after %v; stderr:\n%s", p.Name, d, p.Stderr())
		}
	}
}

// AwaitStderr waits up to d until the in-memory stderr contains s. It
// errors when the process exits without having written it, when d passes,
// or when stderr is not kept in memory.
func (p *Proc) AwaitStderr(s string, d time.Duration) error {
	if p.stderr == nil {
		return fmt.Errorf("%s: stderr not kept in memory", p.Name)
	}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		text, changed := p.stderr.snapshot()
		if strings.Contains(text, s) {
			return nil
		}
		select {
		case <-changed:
		case <-p.done:
			if strings.Contains(p.Stderr(), s) {
				return nil
			}
			return fmt.Errorf("%s exited (%v) without writing %q; stderr:\n%s", p.Name, p.err, s, p.Stderr())
		case <-deadline.C:
			return fmt.Errorf("%s: no %q on stderr after %v; stderr:\n%s", p.Name, s, d, p.Stderr())
		}
	}
}

// Done is closed once the process has exited; Err is then its exit status.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err returns the result of Wait, valid once Done is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// NextLine returns the next stdout line, false when none came within d or
// stdout closed.
func (p *Proc) NextLine(d time.Duration) (string, bool) {
	select {
	case l, ok := <-p.lines:
		return l, ok
	case <-time.After(d):
		return "", false
	}
}

// Stderr returns what the process wrote to stderr when it was kept in
// memory, else a note saying where it went.
func (p *Proc) Stderr() string {
	if p.stderr == nil {
		return "(stderr not kept)"
	}
	return p.stderr.String()
}

// Stop sends SIGTERM and requires a clean exit within d.
func (p *Proc) Stop(t testing.TB, d time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("%s after SIGTERM: %v; stderr:\n%s", p.Name, p.err, p.Stderr())
		}
	case <-time.After(d):
		t.Fatalf("%s did not stop within %v after SIGTERM", p.Name, d)
	}
}

// Kill sends SIGKILL to the process (to its process group when it leads
// one of its own) and waits for the exit.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	if p.group != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	} else {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
}

// lockedBuffer collects a child's stderr and wakes those waiting for it.
type lockedBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every Write
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{changed: make(chan struct{})} }

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.changed)
	l.changed = make(chan struct{})
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// snapshot returns the text so far and a channel closed by the next Write.
func (l *lockedBuffer) snapshot() (string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.changed
}
