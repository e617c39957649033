package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/clock"
	"github.com/catena-io/catena/internal/rpcerr"
)

const testChunk = 1 << 20

func setup(t *testing.T) (*fakeCluster, *Client) {
	t.Helper()
	fc := newFakeCluster(t)
	c := newTestClient(t, Config{Masters: []string{fc.m.addr}, MaxIOSize: 64 << 10, IOConcurrency: 4, OpTimeout: 10 * time.Second})
	return fc, c
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func createFile(t *testing.T, c *Client, p string) *File {
	t.Helper()
	f, err := c.Create(context.Background(), p, CreateOptions{ChunkSize: testChunk})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestWriteReadAcrossChunks(t *testing.T) {
	fc, c := setup(t)
	ctx := context.Background()
	f := createFile(t, c, "/a")
	data := randBytes(3*testChunk+12345, 1)
	off := int64(testChunk - 1000) // starts inside chunk 0, ends in chunk 4
	n, err := f.WriteAt(data, off)
	if err != nil || n != len(data) {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	if got, want := f.Size(), off+int64(len(data)); got != want {
		t.Fatalf("Size = %d, want %d", got, want)
	}
	got := make([]byte, len(data))
	if n, err := f.ReadAt(got, off); err != nil || n != len(data) || !bytes.Equal(got, data) {
		t.Fatalf("ReadAt = %d, %v, equal %v", n, err, bytes.Equal(got, data))
	}
	// The head of chunk 0 is zero before off: a short replica reads as zeros.
	head := make([]byte, 10)
	if _, err := f.ReadAt(head, 0); err != nil || !bytes.Equal(head, make([]byte, 10)) {
		t.Fatalf("hole at start: %v %v", head, err)
	}
	// Size is reported once, on Close, not per write.
	if n := fc.m.callCount("SetSize"); n != 0 {
		t.Fatalf("SetSize before Close: %d calls", n)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n := fc.m.callCount("SetSize"); n != 1 {
		t.Fatalf("SetSize after Close: %d calls", n)
	}
	fi, err := c.Stat(ctx, "/a")
	if err != nil || fi.Size != off+int64(len(data)) {
		t.Fatalf("Stat after Close = %+v, %v", fi, err)
	}
	// Close-to-open: another File sees the size and the data.
	f2, err := c.Open(ctx, "/a")
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	got2 := make([]byte, len(data))
	if _, err := f2.ReadAt(got2, off); err != nil || !bytes.Equal(got2, data) {
		t.Fatalf("second File: %v", err)
	}
	_, chunks, err := c.StatChunks(ctx, "/a")
	if err != nil || len(chunks) != 5 || chunks[0].Index != 0 || chunks[4].Index != 4 || len(chunks[0].Chain) != 3 {
		t.Fatalf("StatChunks = %+v, %v", chunks, err)
	}
}

func TestReadEOFAndHoles(t *testing.T) {
	fc, c := setup(t)
	f := createFile(t, c, "/h")
	defer f.Close()
	buf := make([]byte, 10)
	if n, err := f.ReadAt(buf, 0); n != 0 || err != io.EOF {
		t.Fatalf("empty file: %d, %v", n, err)
	}
	// Write only into chunk 2; chunks 0 and 1 stay holes.
	if _, err := f.WriteAt([]byte("xyz"), 2*testChunk); err != nil {
		t.Fatal(err)
	}
	reads := fc.css[2].readCount()
	big := make([]byte, 2*testChunk)
	for i := range big {
		big[i] = 0xff
	}
	if n, err := f.ReadAt(big, 0); n != len(big) || err != nil {
		t.Fatalf("hole read: %d, %v", n, err)
	}
	if !bytes.Equal(big, make([]byte, len(big))) {
		t.Fatal("hole did not read as zeros")
	}
	if got := fc.css[2].readCount(); got != reads {
		t.Fatalf("holes were fetched: %d reads", got-reads)
	}
	// A read crossing the end returns what is there and io.EOF.
	buf = make([]byte, 10)
	n, err := f.ReadAt(buf, 2*testChunk+1)
	if n != 2 || err != io.EOF || string(buf[:2]) != "yz" {
		t.Fatalf("read past end: %d, %v, %q", n, err, buf[:n])
	}
	if _, err := f.ReadAt(buf, -1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative read offset: %v", err)
	}
	if _, err := f.WriteAt(buf, -1); !errors.Is(err, ErrInvalid) || !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("negative write offset: %v", err)
	}
}

// TestRetryReusesRequestID loses the head's ack after it applied a write:
// the client must retry with the same request id, and every replica must
// apply the write once.
func TestRetryReusesRequestID(t *testing.T) {
	fc, c := setup(t)
	f := createFile(t, c, "/x")
	defer f.Close()
	lost := 0
	fc.css[0].setHook(func(method string, _ uint64) (error, bool) {
		if method == "Write" && lost < 2 {
			lost++
			return status.Error(codes.Unavailable, "connection reset"), true
		}
		return nil, false
	})
	if _, err := f.WriteAt([]byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	fc.css[0].mu.Lock()
	writes := fc.css[0].writes
	fc.css[0].mu.Unlock()
	if len(writes) != 3 {
		t.Fatalf("head saw %d attempts, want 3", len(writes))
	}
	k := reqKey{writes[0].ClientId, writes[0].RequestId}
	for _, w := range writes {
		if w.ClientId != c.clientID || w.RequestId != k.req {
			t.Fatalf("retry changed ids: %d/%d vs %d/%d", w.ClientId, w.RequestId, c.clientID, k.req)
		}
	}
	for i, s := range fc.css {
		if got := s.applied(writes[0].Handle, k); got < 1 {
			t.Fatalf("replica %d never saw the write", i)
		}
	}
	got := make([]byte, 5)
	if _, err := f.ReadAt(got, 0); err != nil || string(got) != "hello" {
		t.Fatalf("read back %q, %v", got, err)
	}
	// A second write gets a new request id.
	if _, err := f.WriteAt([]byte("again"), 0); err != nil {
		t.Fatal(err)
	}
	fc.css[0].mu.Lock()
	last := fc.css[0].writes[len(fc.css[0].writes)-1]
	fc.css[0].mu.Unlock()
	if last.RequestId == k.req {
		t.Fatal("new write reused the old request id")
	}
}

// TestHeadFailover stops the head after the client cached the chain; the
// master installs a new chain with epoch+1 and the write goes through.
func TestHeadFailover(t *testing.T) {
	fc, c := setup(t)
	f := createFile(t, c, "/f")
	defer f.Close()
	if _, err := f.WriteAt([]byte("one"), 0); err != nil {
		t.Fatal(err)
	}
	fc.css[0].srv.Stop()
	ci := fc.m.reconfigure(t, "/f", 0, fc.css[1:])
	if _, err := f.WriteAt([]byte("two"), 3); err != nil {
		t.Fatalf("write after head failure: %v", err)
	}
	got := make([]byte, 6)
	if _, err := f.ReadAt(got, 0); err != nil || string(got) != "onetwo" {
		t.Fatalf("read %q, %v", got, err)
	}
	f.mu.Lock()
	cached := f.chunks[0]
	f.mu.Unlock()
	if cached.Epoch != ci.Epoch || cached.Chain[0].Addr != fc.css[1].addr {
		t.Fatalf("cache not refreshed: %+v", cached)
	}
}

func TestStaleEpochRefresh(t *testing.T) {
	fc, c := setup(t)
	f := createFile(t, c, "/s")
	defer f.Close()
	if _, err := f.WriteAt([]byte("abc"), 0); err != nil {
		t.Fatal(err)
	}
	// Same members, new epoch (a fenced reconfiguration): both the read on
	// the tail and the write on the head get STALE_EPOCH once.
	fc.m.reconfigure(t, "/s", 0, []*fakeCS{fc.css[2], fc.css[1], fc.css[0]})
	got := make([]byte, 3)
	if _, err := f.ReadAt(got, 0); err != nil || string(got) != "abc" {
		t.Fatalf("read after epoch change: %q %v", got, err)
	}
	if _, err := f.WriteAt([]byte("d"), 3); err != nil {
		t.Fatal(err)
	}
}

// TestCapabilityRefresh: the client shows every chunkserver the
// capability the master gave it with the chunk, and on CAPABILITY_EXPIRED
// gets the chunk again and retries with the new one, unseen by the caller;
// PERMISSION_DENIED is returned as ErrPermission.
func TestCapabilityRefresh(t *testing.T) {
	fc, c := setup(t)
	f := createFile(t, c, "/cap")
	defer f.Close()
	if _, err := f.WriteAt([]byte("abc"), 0); err != nil {
		t.Fatal(err)
	}
	current := []byte("cap 1")
	fc.m.setCapability("/cap", 0, &api.Capability{Body: current})
	var mu sync.Mutex
	check := func(cap *api.Capability) error {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case cap == nil:
			return rpcerr.New(api.ErrorCode_PERMISSION_DENIED, "no capability")
		case string(cap.Body) == "denied":
			return rpcerr.New(api.ErrorCode_PERMISSION_DENIED, "read only")
		case !bytes.Equal(cap.Body, current):
			return rpcerr.New(api.ErrorCode_CAPABILITY_EXPIRED, "expired")
		}
		return nil
	}
	for _, cs := range fc.css {
		cs.mu.Lock()
		cs.capCheck = check
		cs.mu.Unlock()
	}
	// The cached chunk predates the capability: get it again.
	if err := f.refresh(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 3)
	if _, err := f.ReadAt(got, 0); err != nil || string(got) != "abc" {
		t.Fatalf("read with the capability: %q %v", got, err)
	}
	// The master's capability expires and a new one is handed out.
	mu.Lock()
	current = []byte("cap 2")
	mu.Unlock()
	fc.m.setCapability("/cap", 0, &api.Capability{Body: []byte("cap 2")})
	if _, err := f.ReadAt(got, 0); err != nil || string(got) != "abc" {
		t.Fatalf("read after the capability expired: %q %v", got, err)
	}
	mu.Lock()
	current = []byte("cap 3")
	mu.Unlock()
	fc.m.setCapability("/cap", 0, &api.Capability{Body: []byte("cap 3")})
	if _, err := f.WriteAt([]byte("d"), 3); err != nil {
		t.Fatalf("write after the capability expired: %v", err)
	}
	fc.m.setCapability("/cap", 0, &api.Capability{Body: []byte("denied")})
	if err := f.refresh(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("e"), 4); !errors.Is(err, ErrPermission) {
		t.Fatalf("write with a denied capability: %v, want ErrPermission", err)
	}
}

func TestCorrupt(t *testing.T) {
	fc, c := setup(t)
	f := createFile(t, c, "/c")
	defer f.Close()
	if _, err := f.WriteAt([]byte("abc"), 0); err != nil {
		t.Fatal(err)
	}
	tail := fc.css[2]
	// Corrupt once, then healed: the read succeeds after a refresh.
	once := true
	tail.setHook(func(method string, _ uint64) (error, bool) {
		if method == "Read" && once {
			once = false
			return rpcerr.New(api.ErrorCode_CORRUPT, "block 0"), false
		}
		return nil, false
	})
	got := make([]byte, 3)
	if _, err := f.ReadAt(got, 0); err != nil || string(got) != "abc" {
		t.Fatalf("read after one CORRUPT: %q %v", got, err)
	}
	// Corrupt for good: ErrCorrupt, after a bounded number of tries.
	before := tail.readCount()
	tail.setHook(func(method string, _ uint64) (error, bool) {
		return rpcerr.New(api.ErrorCode_CORRUPT, "block 0"), false
	})
	_, err := f.ReadAt(got, 0)
	if !errors.Is(err, ErrCorrupt) || err.Error() != "read /c: data corrupt on every replica: chunk 1 (index 0), bytes [0, 3) of the chunk: block 0" {
		t.Fatalf("persistent corruption: %v", err)
	}
	if n := tail.readCount() - before; n != maxCorruptTries {
		t.Fatalf("%d read attempts, want %d", n, maxCorruptTries)
	}
}

func TestChunkserverErrorNotRetried(t *testing.T) {
	fc, c := setup(t)
	f := createFile(t, c, "/n")
	defer f.Close()
	fc.css[0].setHook(func(string, uint64) (error, bool) {
		return rpcerr.New(api.ErrorCode_NO_SPACE, "disk full"), false
	})
	n, err := f.WriteAt([]byte("abc"), 0)
	if n != 0 || !errors.Is(err, ErrNoSpace) {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	if f.Size() != 0 {
		t.Fatalf("failed write grew the file to %d", f.Size())
	}
}

// TestChunkTimeout: a write that only meets retryable refusals ends at the
// operation timeout with the last refusal named. The timeout leaves room
// for several attempts even under the race detector on a loaded machine
// (at 1.5 s, the first allocation and attempt could outlast it, leaving no
// refusal to name).
func TestChunkTimeout(t *testing.T) {
	fc := newFakeCluster(t)
	c := newTestClient(t, Config{Masters: []string{fc.m.addr}, OpTimeout: 5 * time.Second})
	f := createFile(t, c, "/t")
	defer f.Close()
	// The chunk is allocated first: the timeout under test is the
	// chunkserver's refusals', not a master call's.
	if _, err := f.WriteAt([]byte("abc"), 0); err != nil {
		t.Fatal(err)
	}
	fc.css[0].setHook(func(string, uint64) (error, bool) {
		return rpcerr.New(api.ErrorCode_UNAVAILABLE, "lease expired"), false
	})
	_, err := f.WriteAt([]byte("abc"), 0)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "lease expired") {
		t.Fatalf("WriteAt = %v", err)
	}
	// The caller's own cancellation is returned as such.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.WriteAtContext(ctx, []byte("abc"), 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled WriteAt = %v", err)
	}
}

func TestTruncate(t *testing.T) {
	fc, c := setup(t)
	ctx := context.Background()
	f := createFile(t, c, "/t")
	defer f.Close()
	data := randBytes(testChunk+500, 2)
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if f.Size() != 100 {
		t.Fatalf("Size = %d", f.Size())
	}
	fi, _ := c.Stat(ctx, "/t")
	if fi.Size != 100 {
		t.Fatalf("master size = %d", fi.Size)
	}
	// The cut part of chunk 0 was zeroed with a ZERO update.
	fc.css[0].mu.Lock()
	last := fc.css[0].writes[len(fc.css[0].writes)-1]
	fc.css[0].mu.Unlock()
	if last.Kind != api.UpdateKind_ZERO || last.Offset != 100 || last.Length != testChunk-100 {
		t.Fatalf("zero update = %v", last)
	}
	// Growing again shows zeros past 100, in chunk 0 and in chunk 1.
	if err := f.Truncate(ctx, testChunk+500); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, testChunk+500)
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:100], data[:100]) || !bytes.Equal(got[100:], make([]byte, len(got)-100)) {
		t.Fatal("truncate then grow did not read zeros past the cut")
	}
	if err := f.Truncate(ctx, -1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative truncate: %v", err)
	}
	// Past the maximum file size: ErrFileTooBig (also ErrInvalid), and
	// nothing changes.
	if err := f.Truncate(ctx, MaxFileSize+1); !errors.Is(err, ErrFileTooBig) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("truncate past the maximum: %v", err)
	}
	if _, err := f.WriteAt([]byte("xy"), MaxFileSize-1); !errors.Is(err, ErrFileTooBig) {
		t.Fatalf("write past the maximum: %v", err)
	}
	if err := f.PunchHole(ctx, 1<<62, 1<<62); !errors.Is(err, ErrFileTooBig) {
		t.Fatalf("punch past the maximum (overflowing): %v", err)
	}
	if fi, _ := c.Stat(ctx, "/t"); f.Size() != testChunk+500 || fi.Size != testChunk+500 {
		t.Fatalf("size after the refused calls: %d, master %d", f.Size(), fi.Size)
	}
}

func TestClosed(t *testing.T) {
	_, c := setup(t)
	f := createFile(t, c, "/z")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); !errors.Is(err, ErrClosed) || !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadAt after Close: %v", err)
	}
	if _, err := f.WriteAt([]byte("x"), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteAt after Close: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
	if err := f.Truncate(context.Background(), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Truncate after Close: %v", err)
	}
}

func TestSyncOncePerFlush(t *testing.T) {
	fc, c := setup(t)
	f := createFile(t, c, "/y")
	for i := range 5 {
		if _, err := f.WriteAt([]byte("x"), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil { // nothing new: no call
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 2); err != nil { // no growth
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n := fc.m.callCount("SetSize"); n != 1 {
		t.Fatalf("SetSize calls = %d, want 1", n)
	}
}

func TestNamespace(t *testing.T) {
	fc, c := setup(t)
	ctx := context.Background()
	if err := c.Mkdir(ctx, "/d", 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Mkdir(ctx, "/d", 0); !errors.Is(err, ErrExist) || err.Error() != "mkdir /d: file exists" {
		t.Fatalf("Mkdir twice: %v", err)
	}
	if err := c.MkdirAll(ctx, "/d/e/f", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := c.MkdirAll(ctx, "/d/e/f", 0o700); err != nil {
		t.Fatalf("MkdirAll existing: %v", err)
	}
	for _, name := range []string{"/d/b", "/d/a", "/d/c"} {
		f := createFile(t, c, name)
		f.Close()
	}
	ents, err := c.ReadDir(ctx, "/d")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	if strings.Join(names, ",") != "a,b,c,e" {
		t.Fatalf("ReadDir = %v", names)
	}
	if !ents[3].IsDir || ents[3].Mode&fs.ModeDir == 0 || ents[3].Mode.Perm() != 0o700 {
		t.Fatalf("dir entry = %+v", ents[3])
	}
	if _, err := c.Open(ctx, "/d"); !errors.Is(err, ErrIsDir) || err.Error() != "open /d: is a directory" {
		t.Fatalf("Open dir: %v", err)
	}
	if _, err := c.Stat(ctx, "/nope"); !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) || err.Error() != "stat /nope: no such file or directory" {
		t.Fatalf("Stat missing: %v", err)
	}
	if _, err := c.Create(ctx, "/d/a", CreateOptions{}); !errors.Is(err, ErrExist) {
		t.Fatalf("Create existing: %v", err)
	}
	if f, err := c.Create(ctx, "/d/a", CreateOptions{Overwrite: true}); err != nil {
		t.Fatalf("Create overwrite: %v", err)
	} else {
		f.Close()
	}
	if _, err := c.Create(ctx, "rel", CreateOptions{}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "invalid argument: path") {
		t.Fatalf("Create relative: %v", err)
	}
	if err := c.Rename(ctx, "/d/a", "/d/z"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stat(ctx, "/d/z"); err != nil {
		t.Fatalf("renamed: %v", err)
	}
	if err := c.Remove(ctx, "/d"); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Remove non-empty: %v", err)
	}
	if err := c.Remove(ctx, "/d/z"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveAll(ctx, "/d"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveAll(ctx, "/d"); err != nil {
		t.Fatalf("RemoveAll missing: %v", err)
	}
	if err := c.Remove(ctx, "/d"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remove missing: %v", err)
	}
	st, err := c.Status(ctx)
	if err != nil || len(st.Chunkservers) != 3 || !st.Masters[0].Leader || st.Directories != 1 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	fc.m.mu.Lock()
	fc.m.servers = nil
	fc.m.mu.Unlock()
	f := createFile(t, c, "/q")
	if _, err := f.WriteAt([]byte("x"), 0); !errors.Is(err, ErrNoChunkservers) || !strings.Contains(err.Error(), "need 3") {
		t.Fatalf("no chunkservers: %v", err)
	}
}

func TestMasterRedirect(t *testing.T) {
	fc := newFakeCluster(t)
	follower := newFakeMaster(t)
	follower.setHook(func(string) error { return rpcerr.NotLeader(fc.m.addr) })
	c := newTestClient(t, Config{Masters: []string{follower.addr}})
	if _, err := c.Stat(context.Background(), "/"); err != nil {
		t.Fatalf("Stat via follower: %v", err)
	}
	if c.Masters()[0] != fc.m.addr {
		t.Fatalf("leader guess = %v", c.Masters())
	}
	if n := follower.callCount("Lookup"); n != 1 {
		t.Fatalf("follower asked %d times", n)
	}
	// The next call goes straight to the leader.
	if _, err := c.Stat(context.Background(), "/"); err != nil {
		t.Fatal(err)
	}
	if n := follower.callCount("Lookup"); n != 1 {
		t.Fatalf("follower asked again: %d", n)
	}
}

func TestMasterFailover(t *testing.T) {
	fc := newFakeCluster(t)
	dead := deadAddr(t)
	// No leader known during an election: try the next address.
	electing := newFakeMaster(t)
	electing.setHook(func(string) error { return rpcerr.NotLeader("") })
	c := newTestClient(t, Config{Masters: []string{dead, electing.addr, fc.m.addr}})
	if _, err := c.Stat(context.Background(), "/"); err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if c.Masters()[0] != fc.m.addr {
		t.Fatalf("leader guess = %v", c.Masters())
	}
}

// TestBackoffOnClientClock: the wait between retries is on Config.Clock.
// On a fake clock a retrying call stays in its backoff, its timer armed,
// until the clock moves past it; then the retry succeeds.
func TestBackoffOnClientClock(t *testing.T) {
	m := newFakeMaster(t)
	var electing atomic.Bool
	electing.Store(true)
	m.setHook(func(string) error {
		if electing.Load() {
			return rpcerr.New(api.ErrorCode_UNAVAILABLE, "electing")
		}
		return nil
	})
	clk := clock.NewFake(time.Unix(0, 0))
	c := newTestClient(t, Config{Masters: []string{m.addr}, Clock: clk})
	done := make(chan error, 1)
	go func() {
		_, err := c.Stat(context.Background(), "/")
		done <- err
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := clk.BlockUntil(ctx, 1); err != nil { // backing off on clk
		t.Fatalf("no backoff timer on the client's clock: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Stat returned during its backoff: %v", err)
	default:
	}
	if n := m.callCount("Lookup"); n != 1 {
		t.Fatalf("%d Lookup calls before the clock moved, want 1", n)
	}
	electing.Store(false)
	clk.Advance(backoffMax)
	if err := <-done; err != nil {
		t.Fatalf("Stat after the backoff: %v", err)
	}
	if n := m.callCount("Lookup"); n != 2 {
		t.Fatalf("%d Lookup calls, want 2", n)
	}
}

func TestMasterUnreachable(t *testing.T) {
	dead := deadAddr(t)
	c := newTestClient(t, Config{Masters: []string{dead}, OpTimeout: 200 * time.Millisecond})
	_, err := c.Stat(context.Background(), "/a")
	if !errors.Is(err, ErrMasterUnreachable) {
		t.Fatalf("Stat = %v", err)
	}
	want := "stat /a: master unreachable at " + dead + ": connection refused"
	if err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// TestConcurrentWriters runs WriteAt and ReadAt from several goroutines on
// disjoint ranges of one File.
func TestConcurrentWriters(t *testing.T) {
	_, c := setup(t)
	f := createFile(t, c, "/cc")
	defer f.Close()
	const n, size = 8, 200 << 10
	errs := make(chan error, n)
	for i := range n {
		go func() {
			data := randBytes(size, uint64(i))
			off := int64(i * size)
			if _, err := f.WriteAt(data, off); err != nil {
				errs <- err
				return
			}
			got := make([]byte, size)
			if _, err := f.ReadAt(got, off); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, data) {
				errs <- errors.New("data mismatch")
				return
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if f.Size() != n*size {
		t.Fatalf("Size = %d", f.Size())
	}
}
