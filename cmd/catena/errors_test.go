package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/rpcerr"
)

func TestErrorLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"client wrapped", fail("stat /a", fmt.Errorf("stat /a: %w", client.ErrNotFound)), "stat /a: no such file or directory"},
		{"exists", fail("mkdir /d", fmt.Errorf("mkdir /d: %w", client.ErrExist)), "mkdir /d: file exists"},
		{"not dir", fail("mkdir /f/x", client.ErrNotDir), "mkdir /f/x: not a directory"},
		{"is dir", fail("cat /d", client.ErrIsDir), "cat /d: is a directory"},
		{"not empty", fail("rm /d", client.ErrNotEmpty), "rm /d: directory not empty"},
		{"no chunkservers", fail("put /f", fmt.Errorf("write /f: %w", client.ErrNoChunkservers)), "put /f: not enough chunkservers available"},
		{"no chunkservers, with the server's detail", fail("put /f", fmt.Errorf("write /f: %w",
			&client.DetailError{Kind: client.ErrNoChunkservers, Detail: "need 5 chunkservers, 3 alive"})),
			"put /f: not enough chunkservers available: need 5 chunkservers, 3 alive"},
		{"name too long is named, not only invalid", fail("mkdir /x", fmt.Errorf("mkdir /x: %w",
			&client.DetailError{Kind: client.ErrNameTooLong, Detail: "name of 300 bytes"})),
			"mkdir /x: file name too long: name of 300 bytes"},
		{"a detail of another kind is not borrowed", fail("put /f", errors.Join(client.ErrNoSpace,
			&client.DetailError{Kind: client.ErrInvalid, Detail: "x"})), "put /f: no space left on device"},
		{"raw status", fail("ls /x", rpcerr.New(api.ErrorCode_NOT_FOUND, "no /x")), "ls /x: no such file or directory"},
		{"raw status no code", fail("ls /x", errors.New("boom\nbang")), "ls /x: boom bang"},
		{"cancelled", fail("put /f", fmt.Errorf("write: %w", context.Canceled)), "put /f: interrupted"},
		{"own sentinel", fail("put -", errStdinToDir), "put -: destination is a directory; name the remote file when reading stdin"},
		{"unreachable", fail("ls /", fmt.Errorf("%w at 1.2.3.4:1: refused", client.ErrMasterUnreachable)), `master unreachable at 10.0.0.1:7070 (is "catena dev" running?)`},
		{"unnamed", client.ErrNoSpace, "no space left on device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := errorLine(tc.err, "10.0.0.1:7070")
			if got != tc.want {
				t.Fatalf("errorLine = %q; want %q", got, tc.want)
			}
			if strings.Contains(got, "\n") {
				t.Fatalf("errorLine has a newline: %q", got)
			}
		})
	}
	if fail("x", nil) != nil {
		t.Fatal("fail(op, nil) != nil")
	}
	inner := fail("a", client.ErrIsDir)
	if got := fail("b", inner); got != inner {
		t.Fatalf("fail re-wrapped a named error: %v", got)
	}
}

func TestExecuteExitCodes(t *testing.T) {
	run := func(args ...string) (int, string) {
		var out, errb strings.Builder
		code := execute(context.Background(), args, strings.NewReader(""), &out, &errb)
		return code, errb.String()
	}
	if code, stderr := run("put", "onlyone"); code != 2 || !strings.HasPrefix(stderr, "catena: accepts 2 arg(s)") || !strings.Contains(stderr, "Usage:") {
		t.Fatalf("usage error: code %d, stderr %q", code, stderr)
	}
	if code, stderr := run("nosuchcmd"); code != 2 || !strings.Contains(stderr, `unknown command "nosuchcmd"`) {
		t.Fatalf("unknown command: code %d, stderr %q", code, stderr)
	}
	if code, stderr := run("ls", "--nosuchflag"); code != 2 || !strings.Contains(stderr, "unknown flag") {
		t.Fatalf("unknown flag: code %d, stderr %q", code, stderr)
	}
	if code, stderr := run("put", "--chunk-size", "12X", "a", "/b"); code != 2 || !strings.Contains(stderr, "bad size") {
		t.Fatalf("bad size: code %d, stderr %q", code, stderr)
	}
	// A closed port: the runtime error is one line, no usage.
	code, stderr := run("--master", closedAddr(t), "ls")
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "master unreachable at") {
		t.Fatalf("unreachable: code %d, stderr %q", code, stderr)
	}
	// Local mistakes are reported before the cluster is asked.
	code, stderr = run("--master", closedAddr(t), "put", "/no/such/local", "/x")
	if code != 1 || stderr != "catena: put /no/such/local: no such file or directory\n" {
		t.Fatalf("missing local: code %d, stderr %q", code, stderr)
	}
	var out strings.Builder
	if code := execute(context.Background(), []string{"version"}, nil, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "catena "+version) {
		t.Fatalf("version: code %d, out %q", code, out.String())
	}
}

func TestUsageErrorHasOnePrefix(t *testing.T) {
	var out, errb strings.Builder
	code := execute(context.Background(), []string{"chunkserver", "--dir", t.TempDir(), "--label", "bad"}, nil, &out, &errb)
	first, _, _ := strings.Cut(errb.String(), "\n")
	if code != 2 || first != `catena: bad label (want KEY=VALUE): "bad"` {
		t.Fatalf("code %d, first line %q", code, first)
	}
}

func TestChunkserverBadMemoryLimit(t *testing.T) {
	for _, v := range []string{"lots", "0", "-5MiB"} {
		var out, errb strings.Builder
		code := execute(context.Background(), []string{"chunkserver", "--dir", t.TempDir(), "--memory-limit", v}, nil, &out, &errb)
		first, _, _ := strings.Cut(errb.String(), "\n")
		if want := `catena: bad --memory-limit "` + v + `" (want a size such as 480MiB)`; code != 2 || first != want {
			t.Fatalf("--memory-limit %s: code %d, first line %q, want %q", v, code, first, want)
		}
	}
}

func TestNetErrorReason(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = net.Listen("tcp", ln.Addr().String())
	wrapped := fmt.Errorf("cluster: start master: master: listen: %w", err)
	want := "dev: listen " + ln.Addr().String() + ": address already in use"
	if got := errorLine(fail("dev", wrapped), ""); got != want {
		t.Fatalf("errorLine = %q; want %q", got, want)
	}
}

// TestServersNeedTLSOrInsecure: a master or chunkserver started without
// --tls-dir is a usage error naming the way out, unless --insecure; both
// at once are refused.
func TestServersNeedTLSOrInsecure(t *testing.T) {
	for _, args := range [][]string{
		{"master", "--dir", t.TempDir()},
		{"chunkserver", "--dir", t.TempDir()},
	} {
		var out, errb bytes.Buffer
		code := execute(context.Background(), args, nil, &out, &errb)
		first, _, _ := strings.Cut(errb.String(), "\n")
		if code != 2 || !strings.Contains(first, "no --tls-dir") || !strings.Contains(first, "--insecure") {
			t.Fatalf("%v: code %d, first line %q", args, code, first)
		}
		errb.Reset()
		code = execute(context.Background(), append(args, "--insecure", "--tls-dir", t.TempDir()), nil, &out, &errb)
		if first, _, _ := strings.Cut(errb.String(), "\n"); code != 2 || !strings.Contains(first, "exclude each other") {
			t.Fatalf("%v with both: code %d, first line %q", args, code, first)
		}
	}
}

// TestChunkserverDefaultMemoryLimit: without --memory-limit or GOMEMLIMIT
// a chunkserver sets a soft limit of defaultMemoryLimit; "none" sets none.
func TestChunkserverDefaultMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	want, err := parseSize(defaultMemoryLimit)
	if err != nil {
		t.Fatal(err)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	var out, errb bytes.Buffer
	// Fails later, for want of --tls-dir: the limit is set by then.
	execute(context.Background(), []string{"chunkserver", "--dir", t.TempDir()}, nil, &out, &errb)
	if got := debug.SetMemoryLimit(-1); got != want {
		t.Fatalf("memory limit %d, want the default %d", got, want)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	execute(context.Background(), []string{"chunkserver", "--dir", t.TempDir(), "--memory-limit", "none"}, nil, &out, &errb)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("memory limit %d with none, want no limit", got)
	}
}
