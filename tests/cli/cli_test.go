package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catena-io/catena/internal/proctest"
)

// catenaBin is the binary under test, built once by TestMain.
var catenaBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "catena-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if catenaBin, err = proctest.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Timeouts: generous, they only bound a hung process.
const (
	readyTimeout   = 60 * time.Second
	commandTimeout = 90 * time.Second
	stopTimeout    = 30 * time.Second
)

func freeAddr(t *testing.T) string { return proctest.FreeAddr(t) }

// devProc is a background "catena dev".
type devProc struct {
	*proctest.Proc
	addr string
}

// startDev runs "catena dev --dir dir --listen addr extra..." and waits for
// its ready line and the example line after it.
func startDev(t *testing.T, dir, addr string, extra ...string) *devProc {
	t.Helper()
	args := append([]string{"dev", "--dir", dir, "--listen", addr}, extra...)
	p := proctest.Start(t, catenaBin, "catena dev", "catena dev: master listening on "+addr, nil, args...)
	next, ok := p.NextLine(readyTimeout)
	if ok && strings.HasPrefix(next, "catena dev: console on http://127.0.0.1:") {
		next, ok = p.NextLine(readyTimeout) // the web console, on by default
	}
	if !ok {
		t.Fatal("no example line after the ready line")
	}
	if !strings.Contains(next, "try: ") || !strings.Contains(next, "catena put") {
		t.Fatalf("second ready line = %q; want an example", next)
	}
	if !slices.Contains(extra, "--insecure") {
		tlsDirs.Store(addr, filepath.Join(dir, "tls", "admin"))
	}
	return &devProc{Proc: p, addr: addr}
}

// tlsDirs maps the address of each catena dev started with TLS to its
// admin credentials, which run passes to the commands it runs against it.
var tlsDirs sync.Map

// stop sends SIGTERM and requires a clean exit.
func (d *devProc) stop(t *testing.T) { d.Stop(t, stopTimeout) }

// result is one CLI invocation.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
}

// run runs the CLI against master (CATENA_MASTER), with stdin when not nil.
func run(t *testing.T, master string, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, catenaBin, args...)
	cmd.Env = append(os.Environ(), "CATENA_MASTER="+master)
	if dir, ok := tlsDirs.Load(master); ok {
		cmd.Env = append(cmd.Env, "CATENA_TLS_DIR="+dir.(string))
	}
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{args: args, stdout: out.String(), stderr: errb.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok || ctx.Err() != nil {
			t.Fatalf("catena %s: %v (ctx %v); stderr: %s", strings.Join(args, " "), err, ctx.Err(), r.stderr)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// ok runs the CLI and requires success.
func ok(t *testing.T, master string, args ...string) string {
	t.Helper()
	r := run(t, master, nil, args...)
	if r.code != 0 {
		t.Fatalf("catena %s: exit %d; stderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// wantFail requires a runtime failure: non-zero exit and exactly one line on
// stderr, "catena: ...", containing every word.
func wantFail(t *testing.T, r result, words ...string) {
	t.Helper()
	name := "catena " + strings.Join(r.args, " ")
	if r.code == 0 {
		t.Fatalf("%s: succeeded; want failure (stdout %q)", name, r.stdout)
	}
	if !strings.HasPrefix(r.stderr, "catena: ") || !strings.HasSuffix(r.stderr, "\n") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("%s: stderr is not one \"catena: \" line: %q", name, r.stderr)
	}
	for _, w := range words {
		if !strings.Contains(r.stderr, w) {
			t.Fatalf("%s: stderr %q lacks %q", name, r.stderr, w)
		}
	}
}

// writeRandom writes size random bytes to path and returns their sha256.
func writeRandom(t *testing.T, path string, size int64, seed byte) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewChaCha8([32]byte{seed}))
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(int64(len(buf)), left)
		for i := int64(0); i < n; i += 8 {
			v := rng.Uint64()
			for j := int64(0); j < 8 && i+j < n; j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := io.MultiWriter(f, h).Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		left -= n
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// statOut is "catena stat --json".
type statOut struct {
	Path        string `json:"path"`
	Size        int64  `json:"size"`
	ChunkSize   int64  `json:"chunk_size"`
	Replication int    `json:"replication"`
	Mode        string `json:"mode"`
	UID         uint32 `json:"uid"`
	GID         uint32 `json:"gid"`
	Mtime       string `json:"mtime"`
	Type        string `json:"type"`
	Chunks      []struct {
		Index  int64  `json:"index"`
		Handle uint64 `json:"handle"`
		Epoch  uint64 `json:"epoch"`
		Chain  []struct {
			ID   uint64 `json:"id"`
			Name string `json:"name"`
			Addr string `json:"addr"`
		} `json:"chain"`
	} `json:"chunks"`
}

// statusOut is "catena status --json".
type statusOut struct {
	Masters []struct {
		ID     string `json:"id"`
		Addr   string `json:"addr"`
		Leader bool   `json:"leader"`
	} `json:"masters"`
	Chunkservers []struct {
		ID            uint64 `json:"id"`
		Name          string `json:"name"`
		Addr          string `json:"addr"`
		Alive         bool   `json:"alive"`
		FreeBytes     int64  `json:"free_bytes"`
		UsedBytes     int64  `json:"used_bytes"`
		CapacityBytes int64  `json:"capacity_bytes"`
		Draining      bool   `json:"draining"`
		Chains        int    `json:"chains"`
	} `json:"chunkservers"`
	Chunks struct {
		Total           uint64 `json:"total"`
		UnderReplicated uint64 `json:"under_replicated"`
		OverReplicated  uint64 `json:"over_replicated"`
		ReReplicating   uint64 `json:"re_replicating"`
		Lost            uint64 `json:"lost"`
		RepairsDone     uint64 `json:"repairs_done"`
		RepairedBytes   int64  `json:"repaired_bytes"`
		SharedBytes     int64  `json:"shared_bytes"`
		ExclusiveBytes  int64  `json:"exclusive_bytes"`
		Problems        []struct {
			Handle     uint64   `json:"handle"`
			Reason     string   `json:"reason"`
			LostBlocks []int64  `json:"lost_blocks"`
			Paths      []string `json:"paths"`
		} `json:"problems"`
	} `json:"chunks"`
}

func decode[T any](t *testing.T, what, s string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: bad JSON (%v):\n%s", what, err, s)
	}
	return v
}

// checkStat verifies a file's stat --json: size, layout, and chains of
// replication distinct members.
func checkStat(t *testing.T, master, path string, size, chunkSize int64, replication int) statOut {
	t.Helper()
	st := decode[statOut](t, "stat --json "+path, ok(t, master, "stat", "--json", path))
	if st.Path != path || st.Type != "file" || st.Size != size || st.ChunkSize != chunkSize || st.Replication != replication || st.Mode != "0644" || st.UID != 0 || st.GID != 0 {
		t.Fatalf("stat %s = %+v; want size %d, chunk size %d, replication %d, mode 0644", path, st, size, chunkSize, replication)
	}
	if _, err := time.Parse(time.RFC3339Nano, st.Mtime); err != nil {
		t.Fatalf("stat %s: mtime %q: %v", path, st.Mtime, err)
	}
	want := (size + chunkSize - 1) / chunkSize
	if int64(len(st.Chunks)) != want {
		t.Fatalf("stat %s: %d chunks; want %d", path, len(st.Chunks), want)
	}
	for i, ch := range st.Chunks {
		if ch.Index != int64(i) || ch.Handle == 0 || len(ch.Chain) != replication {
			t.Fatalf("stat %s: chunk %d = %+v; want index %d and a chain of %d", path, i, ch, i, replication)
		}
		seen := map[uint64]bool{}
		for _, s := range ch.Chain {
			if s.ID == 0 || s.Addr == "" || s.Name == "" || seen[s.ID] {
				t.Fatalf("stat %s: chunk %d chain %+v: members must be distinct and named", path, i, ch.Chain)
			}
			seen[s.ID] = true
		}
	}
	return st
}

func TestCLI(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	addr := freeAddr(t)
	dev := startDev(t, data, addr)
	m := addr

	// 100 MiB round trip.
	const bigSize = 100 << 20
	big := filepath.Join(tmp, "big.bin")
	bigSHA := writeRandom(t, big, bigSize, 1)
	ok(t, m, "put", big, "/big.bin")
	got := filepath.Join(tmp, "big.out")
	ok(t, m, "get", "/big.bin", got)
	if s := fileSHA(t, got); s != bigSHA {
		t.Fatalf("get /big.bin: sha256 %s; want %s", s, bigSHA)
	}
	checkStat(t, m, "/big.bin", bigSize, 64<<20, 3)

	// stdin, cat, and a small chunk size with two replicas.
	const hello = "hello catena\n"
	if r := run(t, m, strings.NewReader(hello), "put", "-", "/hello.txt"); r.code != 0 {
		t.Fatalf("put - /hello.txt: %s", r.stderr)
	}
	if out := ok(t, m, "cat", "/hello.txt"); out != hello {
		t.Fatalf("cat /hello.txt = %q; want %q", out, hello)
	}
	med := filepath.Join(tmp, "medium.bin")
	medSHA := writeRandom(t, med, 3<<20+12345, 2)
	ok(t, m, "put", "--chunk-size", "1MiB", "--replication", "2", med, "/medium.bin")
	checkStat(t, m, "/medium.bin", 3<<20+12345, 1<<20, 2)
	if out := ok(t, m, "cat", "/hello.txt", "/hello.txt"); out != hello+hello {
		t.Fatalf("cat twice = %q", out)
	}
	// Overwrite keeps one file with the new contents.
	if r := run(t, m, strings.NewReader("v2\n"), "put", "-", "/hello2.txt"); r.code != 0 {
		t.Fatalf("put: %s", r.stderr)
	}
	if r := run(t, m, strings.NewReader("v3\n"), "put", "-", "/hello2.txt"); r.code != 0 {
		t.Fatalf("put overwrite: %s", r.stderr)
	}
	if out := ok(t, m, "cat", "/hello2.txt"); out != "v3\n" {
		t.Fatalf("cat after overwrite = %q", out)
	}

	// ls, ls -l, ls --json.
	ok(t, m, "mkdir", "/dir")
	ok(t, m, "put", med, "/dir/") // into the directory, local base name
	if out := ok(t, m, "ls"); out != "big.bin\ndir/\nhello.txt\nhello2.txt\nmedium.bin\n" {
		t.Fatalf("ls = %q", out)
	}
	long := ok(t, m, "ls", "-l", "/")
	var bigLine string
	for _, l := range strings.Split(long, "\n") {
		if strings.HasSuffix(l, " big.bin") {
			bigLine = l
		}
	}
	if !strings.HasPrefix(bigLine, "-rw-r--r--") || !strings.Contains(bigLine, " 3 ") || !strings.Contains(bigLine, fmt.Sprint(bigSize)) {
		t.Fatalf("ls -l: big.bin line %q in:\n%s", bigLine, long)
	}
	if !strings.Contains(long, "drwxr-xr-x") || !strings.Contains(long, " dir/") {
		t.Fatalf("ls -l lacks the directory:\n%s", long)
	}
	type entry struct {
		Path        string `json:"path"`
		Name        string `json:"name"`
		Size        int64  `json:"size"`
		ChunkSize   int64  `json:"chunk_size"`
		Replication int    `json:"replication"`
		Mode        string `json:"mode"`
		Mtime       string `json:"mtime"`
		Type        string `json:"type"`
	}
	ents := decode[[]entry](t, "ls --json", ok(t, m, "ls", "--json", "/dir"))
	if len(ents) != 1 || ents[0].Name != "medium.bin" || ents[0].Path != "/dir/medium.bin" || ents[0].Size != 3<<20+12345 || ents[0].Type != "file" {
		t.Fatalf("ls --json /dir = %+v", ents)
	}
	ok(t, m, "get", "/dir/medium.bin", filepath.Join(tmp, "medium.out"))
	if s := fileSHA(t, filepath.Join(tmp, "medium.out")); s != medSHA {
		t.Fatal("get /dir/medium.bin: sha256 differs")
	}
	// get to stdout.
	if out := ok(t, m, "get", "/hello.txt", "-"); out != hello {
		t.Fatalf("get - = %q", out)
	}

	// mv: rename, then into a directory.
	ok(t, m, "mv", "/hello2.txt", "/renamed.txt")
	wantFail(t, run(t, m, nil, "stat", "/hello2.txt"), "/hello2.txt", "no such file or directory")
	ok(t, m, "mv", "/renamed.txt", "/dir")
	if out := ok(t, m, "cat", "/dir/renamed.txt"); out != "v3\n" {
		t.Fatalf("cat after mv = %q", out)
	}

	// rm, mkdir -p, rm -r.
	ok(t, m, "rm", "/big.bin")
	wantFail(t, run(t, m, nil, "stat", "/big.bin"), "no such file or directory")
	ok(t, m, "mkdir", "-p", "/a/b/c")
	ok(t, m, "mkdir", "-p", "/a/b/c") // idempotent
	if out := ok(t, m, "ls", "/a/b"); out != "c/\n" {
		t.Fatalf("ls /a/b = %q", out)
	}
	if r := run(t, m, strings.NewReader("x"), "put", "-", "/a/b/c/f"); r.code != 0 {
		t.Fatalf("put: %s", r.stderr)
	}
	ok(t, m, "rm", "-r", "/a")
	wantFail(t, run(t, m, nil, "ls", "/a"), "/a", "no such file or directory")

	// status.
	st := decode[statusOut](t, "status --json", ok(t, m, "status", "--json"))
	alive, chains := 0, 0
	for _, cs := range st.Chunkservers {
		if cs.Alive {
			alive++
		}
		if cs.Draining {
			t.Fatalf("status --json: chunkserver %d draining, no drain was asked", cs.ID)
		}
		chains += cs.Chains
	}
	if uint64(chains) < st.Chunks.Total || st.Chunks.OverReplicated != 0 {
		t.Fatalf("status --json: %d chain memberships for %d chunks, %d over-replicated", chains, st.Chunks.Total, st.Chunks.OverReplicated)
	}
	leaders := 0
	for _, ms := range st.Masters {
		if ms.Leader {
			leaders++
		}
	}
	if alive != 3 || len(st.Chunkservers) != 3 || leaders != 1 || st.Chunks.Total == 0 || st.Chunks.Problems == nil || len(st.Chunks.Problems) != 0 {
		t.Fatalf("status --json = %+v; want 3 alive chunkservers, one leader, some chunks, an empty problem list", st)
	}
	if out := ok(t, m, "status"); !strings.Contains(out, "3 alive, 0 dead") || !strings.Contains(out, "under-replicated") {
		t.Fatalf("status:\n%s", out)
	}

	t.Run("errors", func(t *testing.T) {
		wantFail(t, run(t, m, nil, "stat", "/nope"), "stat /nope", "no such file or directory")
		wantFail(t, run(t, m, nil, "cat", "/nope"), "/nope", "no such file or directory")
		wantFail(t, run(t, m, nil, "get", "/nope", filepath.Join(tmp, "nope")), "/nope", "no such file or directory")
		if _, err := os.Stat(filepath.Join(tmp, "nope")); !os.IsNotExist(err) {
			t.Fatalf("failed get left a local file: %v", err)
		}
		wantFail(t, run(t, m, nil, "rm", "/nope"), "/nope", "no such file or directory")
		wantFail(t, run(t, m, nil, "rm", "-r", "/nope"), "/nope", "no such file or directory")
		wantFail(t, run(t, m, nil, "mv", "/nope", "/x"), "/nope", "no such file or directory")
		wantFail(t, run(t, m, nil, "put", filepath.Join(tmp, "no-such-local"), "/x"), "no-such-local", "no such file or directory")
		wantFail(t, run(t, m, nil, "mkdir", "/dir"), "mkdir /dir", "file exists")
		wantFail(t, run(t, m, nil, "mkdir", "/hello.txt/sub"), "/hello.txt/sub", "not a directory")
		wantFail(t, run(t, m, strings.NewReader("x"), "put", "-", "/hello.txt/x"), "/hello.txt/x", "not a directory")
		wantFail(t, run(t, m, nil, "cat", "/dir"), "cat /dir", "is a directory")
		wantFail(t, run(t, m, nil, "get", "/dir", filepath.Join(tmp, "d")), "/dir", "is a directory")
		wantFail(t, run(t, m, nil, "rm", "/dir"), "rm /dir", "directory not empty")
		// More replicas than chunkservers; the failed put leaves no file.
		wantFail(t, run(t, m, strings.NewReader("data"), "put", "--replication", "5", "-", "/five"), "/five", "not enough chunkservers")
		wantFail(t, run(t, m, nil, "stat", "/five"), "no such file or directory")
		closed := freeAddr(t)
		wantFail(t, run(t, closed, nil, "ls"), fmt.Sprintf(`master unreachable at %s (is "catena dev" running?)`, closed))

		// Usage errors print usage and exit 2.
		r := run(t, m, nil, "put", "onlyone")
		if r.code != 2 || !strings.Contains(r.stderr, "Usage:") {
			t.Fatalf("put with one argument: exit %d, stderr %q", r.code, r.stderr)
		}
	})

	// setrep: a file, a tree, and a bad factor.
	if out := ok(t, m, "setrep", "1", "/medium.bin"); out != "replication 1 set on 1 files\n" {
		t.Fatalf("setrep 1 /medium.bin = %q", out)
	}
	checkStat(t, m, "/medium.bin", 3<<20+12345, 1<<20, 1)
	if out := ok(t, m, "setrep", "2", "/dir"); !strings.HasPrefix(out, "replication 2 set on ") || strings.HasPrefix(out, "replication 2 set on 0 ") {
		t.Fatalf("setrep 2 /dir = %q", out)
	}
	if r := run(t, m, nil, "setrep", "0", "/medium.bin"); r.code != 2 || !strings.Contains(r.stderr, "want a number from 1 to 16") {
		t.Fatalf("setrep 0: exit %d, stderr %q", r.code, r.stderr)
	}

	// append: lines as records, by two producers at once, and fixed-size
	// records; cat --records prints each once, whole.
	var wg sync.WaitGroup
	var outs [2]result
	for p := range 2 {
		var in strings.Builder
		for i := range 200 {
			fmt.Fprintf(&in, "producer %d record %d\n", p, i)
		}
		wg.Go(func() { outs[p] = run(t, m, strings.NewReader(in.String()), "append", "--chunk-size", "1MiB", "/log") })
	}
	wg.Wait()
	for p, r := range outs {
		if r.code != 0 || !strings.HasPrefix(r.stdout, "appended 200 records ") {
			t.Fatalf("append by producer %d: exit %d, stdout %q, stderr %q", p, r.code, r.stdout, r.stderr)
		}
	}
	lines := strings.Split(strings.TrimSuffix(ok(t, m, "cat", "--records", "/log"), "\n"), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] || !strings.HasPrefix(l, "producer ") {
			t.Fatalf("cat --records: %q twice or not a record", l)
		}
		seen[l] = true
	}
	if len(seen) != 400 {
		t.Fatalf("cat --records: %d records, want 400", len(seen))
	}
	if out := ok(t, m, "append", "--record-size", "1000", "--parallel", "4", "/log"); out != "appended 0 records (0 B) to /log\n" {
		t.Fatalf("append of nothing = %q", out)
	}
	if r := run(t, m, strings.NewReader(strings.Repeat("x", 10000)), "append", "--record-size", "1000", "--parallel", "4", "/log"); r.code != 0 || !strings.HasPrefix(r.stdout, "appended 10 records ") {
		t.Fatalf("append --record-size: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if n := strings.Count(ok(t, m, "cat", "--records", "/log"), strings.Repeat("x", 1000)+"\n"); n != 10 {
		t.Fatalf("cat --records: %d records of 1000 bytes, want 10", n)
	}
	wantFail(t, run(t, m, strings.NewReader("x"), "append", "--record-size", "1MiB", "/log"), "record-size", "a quarter of its chunk")

	// admin rebalance --status: three servers on one disk are balanced.
	rb := decode[struct {
		Balanced      bool    `json:"balanced"`
		Enabled       bool    `json:"enabled"`
		Mean          float64 `json:"mean"`
		Tolerance     float64 `json:"tolerance"`
		MinSpread     float64 `json:"min_spread"`
		MovesInFlight uint64  `json:"moves_in_flight"`
		MovesDone     uint64  `json:"moves_done"`
		MovedBytes    int64   `json:"moved_bytes"`
		Servers       []struct {
			ID            uint64  `json:"id"`
			Name          string  `json:"name"`
			Addr          string  `json:"addr"`
			LoadBytes     int64   `json:"load_bytes"`
			CapacityBytes int64   `json:"capacity_bytes"`
			Fraction      float64 `json:"fraction"`
		} `json:"servers"`
	}](t, "admin rebalance --status --json", ok(t, m, "admin", "rebalance", "--status", "--json"))
	if !rb.Balanced || !rb.Enabled || len(rb.Servers) != 3 || rb.Servers[0].LoadBytes <= 0 || rb.Servers[0].Name == "" || rb.MovesDone != 0 {
		t.Fatalf("admin rebalance --status --json = %+v", rb)
	}
	if out := ok(t, m, "admin", "rebalance"); !strings.HasPrefix(out, "rebalance: balanced; mean use ") {
		t.Fatalf("admin rebalance:\n%s", out)
	}

	// admin chunkserver remove: a running server is refused, a bad id
	// is a usage error; nothing changes.
	// A server is named by its id or its name.
	id, name := strconv.FormatUint(st.Chunkservers[0].ID, 10), st.Chunkservers[0].Name
	if name == "" {
		t.Fatalf("status --json: chunkserver %s has no name", id)
	}
	wantFail(t, run(t, m, nil, "admin", "chunkserver", "remove", id), "chunkserver "+id+" is alive: stop it first")
	wantFail(t, run(t, m, nil, "admin", "chunkserver", "remove", name), "chunkserver "+id+" is alive: stop it first")
	if r := run(t, m, nil, "admin", "chunkserver", "remove", "x"); r.code != 1 || !strings.Contains(r.stderr, `no chunkserver named "x"`) {
		t.Fatalf("admin chunkserver remove x: exit %d, stderr %q", r.code, r.stderr)
	}
	if out := ok(t, m, "status"); !strings.Contains(out, "  "+name+" ") {
		t.Fatalf("status does not show the chunkserver's name %q:\n%s", name, out)
	}
	// An unknown subcommand of a command group is a usage error.
	if r := run(t, m, nil, "admin", "nosuch", "key", "ls"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "nosuch" for "catena admin"`) {
		t.Fatalf("admin nosuch key ls: exit %d, stderr %q", r.code, r.stderr)
	}
	if out := ok(t, m, "status"); !strings.Contains(out, "3 alive, 0 dead") {
		t.Fatalf("status after a refused remove:\n%s", out)
	}

	// Restart: state survives, shutdown is clean.
	dev.stop(t)
	startDev(t, data, addr)
	if out := ok(t, m, "cat", "/dir/renamed.txt", "/hello.txt"); out != "v3\n"+hello {
		t.Fatalf("cat after restart = %q", out)
	}
	ok(t, m, "get", "/medium.bin", filepath.Join(tmp, "medium.after"))
	if s := fileSHA(t, filepath.Join(tmp, "medium.after")); s != medSHA {
		t.Fatal("get /medium.bin after restart: sha256 differs")
	}
	if out := ok(t, m, "ls"); out != "dir/\nhello.txt\nlog\nmedium.bin\n" {
		t.Fatalf("ls after restart = %q", out)
	}
	if n := strings.Count(ok(t, m, "cat", "--records", "/log"), "\n"); n != 410 {
		t.Fatalf("cat --records /log after restart: %d records, want 410", n)
	}
}

func TestNoChunkservers(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	startDev(t, t.TempDir(), addr, "--chunkservers", "1")
	wantFail(t, run(t, addr, strings.NewReader("data"), "put", "--replication", "3", "-", "/f"), "put /f", "not enough chunkservers available")
	// One replica fits.
	if r := run(t, addr, strings.NewReader("data"), "put", "--replication", "1", "-", "/f"); r.code != 0 {
		t.Fatalf("put --replication 1: %s", r.stderr)
	}
	if out := ok(t, addr, "cat", "/f"); out != "data" {
		t.Fatalf("cat /f = %q", out)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	if out := ok(t, freeAddr(t), "version"); !strings.HasPrefix(out, "catena ") {
		t.Fatalf("version = %q", out)
	}
}
