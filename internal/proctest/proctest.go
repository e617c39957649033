// Package proctest runs the catena binary as real processes for end-to-end
// tests and benchmarks (tests/cli, tests/crash, internal/bench).
//
// Every process runs in its own process group with CATENA_MASTER cleared;
// Start returns once a stdout line with the given prefix appeared, and the
// test's cleanup SIGKILLs the group by its PID, so nothing outlives the test.
// This package is for tests only: it imports testing.
package proctest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
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

// FreeAddr returns a loopback address that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Proc is one running process.
type Proc struct {
	Name   string
	Args   []string
	cmd    *exec.Cmd
	stderr *lockedBuffer // nil when stderr goes elsewhere
	lines  chan string   // stdout lines after the ready line (dropped when full)
	done   chan struct{} // closed once Wait returned
	err    error         // Wait's result, valid after done
}

// Start runs bin args... and waits up to ReadyTimeout for a stdout line
// starting with ready. Its stderr goes to stderr, or is kept in memory
// (Stderr) when stderr is nil. Cleanup kills the process group.
func Start(t testing.TB, bin, name, ready string, stderr io.Writer, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "CATENA_MASTER=")
	// An os.Pipe rather than StdoutPipe: Wait must not race with our reads.
	stdout, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Proc{Name: name, Args: args, cmd: cmd, lines: make(chan string, 16), done: make(chan struct{})}
	if stderr == nil {
		p.stderr = &lockedBuffer{}
		stderr = p.stderr
	}
	cmd.Stdout, cmd.Stderr = pw, stderr
	err = cmd.Start()
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
	deadline := time.NewTimer(ReadyTimeout)
	defer deadline.Stop()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.done
				t.Fatalf("%s exited before ready (%v); stderr:\n%s", name, p.err, p.Stderr())
			}
			if strings.HasPrefix(l, ready) {
				return p
			}
		case <-deadline.C:
			t.Fatalf("%s not ready after %v; stderr:\n%s", name, ReadyTimeout, p.Stderr())
		}
	}
}

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

// Kill sends SIGKILL to the process group, by PID, and waits for the exit.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// lockedBuffer collects a child's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
