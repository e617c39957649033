package nbd

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// testClient is a minimal NBD client speaking to a Server over net.Pipe.
type testClient struct {
	t *testing.T
	c net.Conn
}

func startPipe(t *testing.T, exports Exports) (*testClient, chan error) {
	t.Helper()
	s, err := NewServer(Config{Exports: exports, MaxPayload: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- s.ServeConn(b) }()
	t.Cleanup(func() { a.Close(); s.Close() })
	a.SetDeadline(time.Now().Add(20 * time.Second))
	return &testClient{t: t, c: a}, done
}

func (tc *testClient) read(n int) []byte {
	tc.t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(tc.c, b); err != nil {
		tc.t.Fatalf("read %d: %v", n, err)
	}
	return b
}

func (tc *testClient) send(b []byte) {
	tc.t.Helper()
	if _, err := tc.c.Write(b); err != nil {
		tc.t.Fatalf("write: %v", err)
	}
}

func (tc *testClient) hello(flags uint32) {
	tc.t.Helper()
	h := tc.read(18)
	if binary.BigEndian.Uint64(h) != nbdMagic || binary.BigEndian.Uint64(h[8:]) != optMagic {
		tc.t.Fatalf("bad greeting %x", h)
	}
	if hf := binary.BigEndian.Uint16(h[16:]); hf != flagFixedNewstyle|flagNoZeroes {
		tc.t.Fatalf("handshake flags %#x", hf)
	}
	tc.send(binary.BigEndian.AppendUint32(nil, flags))
}

func (tc *testClient) option(opt uint32, data []byte) {
	b := binary.BigEndian.AppendUint64(nil, optMagic)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	tc.send(append(b, data...))
}

type optRep struct {
	opt, typ uint32
	data     []byte
}

func (tc *testClient) optReply() optRep {
	tc.t.Helper()
	h := tc.read(20)
	if binary.BigEndian.Uint64(h) != optReplyMagic {
		tc.t.Fatalf("option reply magic %x", h)
	}
	r := optRep{opt: binary.BigEndian.Uint32(h[8:]), typ: binary.BigEndian.Uint32(h[12:])}
	r.data = tc.read(int(binary.BigEndian.Uint32(h[16:])))
	return r
}

func infoPayload(name string, infos ...uint16) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(infos)))
	for _, i := range infos {
		b = binary.BigEndian.AppendUint16(b, i)
	}
	return b
}

// goExport negotiates (optionally structured replies) and enters
// transmission; it returns the export size and flags.
func (tc *testClient) goExport(name string, structured bool) (uint64, uint16) {
	tc.t.Helper()
	tc.hello(flagFixedNewstyle | flagNoZeroes)
	if structured {
		tc.option(optStructuredReply, nil)
		if r := tc.optReply(); r.typ != repAck {
			tc.t.Fatalf("structured reply: %+v", r)
		}
	}
	tc.option(optGo, infoPayload(name, infoBlockSize))
	var size uint64
	var flags uint16
	for {
		r := tc.optReply()
		switch r.typ {
		case repInfo:
			if binary.BigEndian.Uint16(r.data) == infoExport {
				size, flags = binary.BigEndian.Uint64(r.data[2:]), binary.BigEndian.Uint16(r.data[10:])
			}
		case repAck:
			return size, flags
		default:
			tc.t.Fatalf("GO reply %+v", r)
		}
	}
}

func (tc *testClient) request(r Request, payload []byte) {
	tc.send(append(AppendRequest(nil, r), payload...))
}

// simpleReply reads a simple reply; for a successful read, n data bytes.
func (tc *testClient) simpleReply(n int) (errno uint32, cookie uint64, data []byte) {
	tc.t.Helper()
	h := tc.read(16)
	if binary.BigEndian.Uint32(h) != simpleMagic {
		tc.t.Fatalf("simple reply magic %x", h)
	}
	errno, cookie = binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint64(h[8:])
	if errno == 0 && n > 0 {
		data = tc.read(n)
	}
	return errno, cookie, data
}

func TestListInfoAndAbort(t *testing.T) {
	tc, done := startPipe(t, MapExports{"a": NewMemDevice(4096), "b": NewMemDevice(8192)})
	tc.hello(flagFixedNewstyle | flagNoZeroes)
	tc.option(optList, nil)
	var names []string
	for {
		r := tc.optReply()
		if r.typ == repAck {
			break
		}
		if r.typ != repServer {
			t.Fatalf("list reply %+v", r)
		}
		names = append(names, string(r.data[4:4+binary.BigEndian.Uint32(r.data)]))
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Fatalf("names %v", names)
	}
	tc.option(optInfo, infoPayload("b", infoName))
	var size uint64
	var sawBlock, sawName bool
	for r := tc.optReply(); r.typ != repAck; r = tc.optReply() {
		switch binary.BigEndian.Uint16(r.data) {
		case infoExport:
			size = binary.BigEndian.Uint64(r.data[2:])
		case infoBlockSize:
			sawBlock = binary.BigEndian.Uint32(r.data[2:]) == 1
		case infoName:
			sawName = string(r.data[2:]) == "b"
		}
	}
	if size != 8192 || !sawBlock || !sawName {
		t.Fatalf("info: size %d block %v name %v", size, sawBlock, sawName)
	}
	tc.option(optInfo, infoPayload("nope"))
	if r := tc.optReply(); r.typ != repErrUnknown {
		t.Fatalf("unknown export: %+v", r)
	}
	tc.option(optInfo, []byte{0, 0, 0, 9})
	if r := tc.optReply(); r.typ != repErrInvalid {
		t.Fatalf("malformed info: %+v", r)
	}
	tc.option(99, []byte("x"))
	if r := tc.optReply(); r.typ != repErrUnsup {
		t.Fatalf("unknown option: %+v", r)
	}
	tc.option(optAbort, nil)
	if r := tc.optReply(); r.typ != repAck {
		t.Fatalf("abort: %+v", r)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve after abort: %v", err)
	}
}

func TestTransmissionSimple(t *testing.T) {
	dev := NewMemDevice(1 << 16)
	tc, done := startPipe(t, MapExports{"v": dev})
	size, flags := tc.goExport("", false)
	if size != 1<<16 {
		t.Fatalf("size %d", size)
	}
	for _, f := range []uint16{tfHasFlags, tfSendFlush, tfSendFUA, tfSendTrim, tfSendWriteZeros, tfCanMultiConn} {
		if flags&f == 0 {
			t.Errorf("flag %#x missing from %#x", f, flags)
		}
	}
	data := bytes.Repeat([]byte("catena!"), 100) // 700 bytes, unaligned
	tc.request(Request{Type: cmdWrite, Flags: cmdFlagFUA, Cookie: 1, Offset: 4095, Length: uint32(len(data))}, data)
	if errno, cookie, _ := tc.simpleReply(0); errno != 0 || cookie != 1 {
		t.Fatalf("write: errno %d cookie %d", errno, cookie)
	}
	if dev.FlushCount() != 1 {
		t.Fatalf("FUA did not flush: %d", dev.FlushCount())
	}
	tc.request(Request{Type: cmdRead, Cookie: 2, Offset: 4095, Length: 700}, nil)
	if errno, _, got := tc.simpleReply(700); errno != 0 || !bytes.Equal(got, data) {
		t.Fatalf("read back: errno %d", errno)
	}
	tc.request(Request{Type: cmdWriteZeroes, Cookie: 3, Offset: 4100, Length: 10}, nil)
	tc.request(Request{Type: cmdTrim, Cookie: 4, Offset: 4200, Length: 10}, nil)
	tc.request(Request{Type: cmdFlush, Cookie: 5}, nil)
	for range 3 {
		if errno, _, _ := tc.simpleReply(0); errno != 0 {
			t.Fatalf("zero/trim/flush: errno %d", errno)
		}
	}
	tc.request(Request{Type: cmdRead, Cookie: 6, Offset: 4095, Length: 700}, nil)
	_, _, got := tc.simpleReply(700)
	want := slices.Clone(data)
	clear(want[5:15])
	clear(want[105:115])
	if !bytes.Equal(got, want) {
		t.Fatal("zeroed ranges not zero")
	}
	// Hostile requests: past the end, overflow, oversized, unknown.
	bad := []struct {
		r     Request
		errno uint32
	}{
		{Request{Type: cmdRead, Cookie: 7, Offset: 1<<16 - 1, Length: 2}, errInval},
		{Request{Type: cmdRead, Cookie: 8, Offset: ^uint64(0), Length: 2}, errInval},
		{Request{Type: cmdWriteZeroes, Cookie: 9, Offset: 1 << 16, Length: 1}, errNoSpc},
		{Request{Type: cmdTrim, Cookie: 10, Offset: 1 << 20, Length: 1}, errInval},
		{Request{Type: 77, Cookie: 11}, errInval},
		{Request{Type: cmdFlush, Cookie: 12, Length: 5}, errInval},
	}
	for _, b := range bad {
		tc.request(b.r, nil)
		if errno, cookie, _ := tc.simpleReply(0); errno != b.errno || cookie != b.r.Cookie {
			t.Errorf("%+v: errno %d cookie %d, want %d", b.r, errno, cookie, b.errno)
		}
	}
	// A write past the end still consumes its payload.
	tc.request(Request{Type: cmdWrite, Cookie: 13, Offset: 1<<16 - 2, Length: 4}, []byte("abcd"))
	if errno, _, _ := tc.simpleReply(0); errno != errNoSpc {
		t.Fatalf("write past end: errno %d", errno)
	}
	tc.request(Request{Type: cmdDisc}, nil)
	if err := <-done; err != nil {
		t.Fatalf("serve after disc: %v", err)
	}
}

func TestStructuredReadAndManyInFlight(t *testing.T) {
	dev := NewMemDevice(1 << 20)
	for i := range dev.data {
		dev.data[i] = byte(i * 7)
	}
	tc, done := startPipe(t, MapExports{"v": dev})
	_, flags := tc.goExport("v", true)
	if flags&tfSendDF == 0 {
		t.Fatalf("DF not advertised with structured replies: %#x", flags)
	}
	const n = 50
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // send all requests before reading any reply
		defer wg.Done()
		for i := range n {
			tc.request(Request{Type: cmdRead, Cookie: uint64(i), Offset: uint64(i * 1000), Length: 333}, nil)
		}
		tc.request(Request{Type: cmdRead, Cookie: 999, Offset: 1 << 20, Length: 1}, nil)
	}()
	seen := map[uint64]bool{}
	for range n + 1 {
		h := tc.read(20)
		if binary.BigEndian.Uint32(h) != structMagic || binary.BigEndian.Uint16(h[4:])&replyFlagDone == 0 {
			t.Fatalf("structured header %x", h)
		}
		typ, cookie := binary.BigEndian.Uint16(h[6:]), binary.BigEndian.Uint64(h[8:])
		body := tc.read(int(binary.BigEndian.Uint32(h[16:])))
		if cookie == 999 {
			if typ != replyTypeError || binary.BigEndian.Uint32(body) != errInval {
				t.Fatalf("read past end: type %d body %x", typ, body)
			}
			continue
		}
		off := binary.BigEndian.Uint64(body)
		if typ != replyTypeData || off != cookie*1000 || !bytes.Equal(body[8:], dev.data[off:off+333]) {
			t.Fatalf("read %d: type %d off %d", cookie, typ, off)
		}
		seen[cookie] = true
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d distinct replies", len(seen))
	}
	tc.c.Close() // vanish instead of DISC
	if err := <-done; err != nil {
		t.Logf("serve after vanish: %v", err)
	}
}

func TestBadMagicCloses(t *testing.T) {
	tc, done := startPipe(t, MapExports{"v": NewMemDevice(4096)})
	tc.goExport("v", false)
	tc.send(make([]byte, requestHeaderLen))
	if err := <-done; err == nil {
		t.Fatal("bad request magic accepted")
	}
	if _, err := tc.c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open")
	}
}

func TestOversizedWriteCloses(t *testing.T) {
	tc, done := startPipe(t, MapExports{"v": NewMemDevice(4096)})
	tc.goExport("v", false)
	tc.request(Request{Type: cmdWrite, Offset: 0, Length: 1 << 30}, nil)
	if err := <-done; err == nil {
		t.Fatal("oversized write accepted")
	}
}

func TestExportNameOldStyle(t *testing.T) {
	tc, _ := startPipe(t, MapExports{"v": NewMemDevice(4096)})
	tc.hello(flagFixedNewstyle) // zeroes padding expected
	tc.option(optExportName, []byte("v"))
	b := tc.read(8 + 2 + 124)
	if binary.BigEndian.Uint64(b) != 4096 || !bytes.Equal(b[10:], make([]byte, 124)) {
		t.Fatalf("export name reply %x", b[:10])
	}
}

func TestServeListener(t *testing.T) {
	s, err := NewServer(Config{Exports: MapExports{"v": NewMemDevice(4096)}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.ReadFull(c, make([]byte, 18)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := <-errc; err != ErrServerClosed {
		t.Fatalf("Serve: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection survived Close")
	}
}

// roDevice is a MemDevice that says it is read-only (a volume snapshot).
type roDevice struct{ *MemDevice }

func (roDevice) ReadOnly() bool { return true }

// TestReadOnlyExport: a read-only device is announced so
// (NBD_FLAG_READ_ONLY) and its writes, trims and zeroes fail with EPERM
// and change nothing, whatever the client does with the flag.
func TestReadOnlyExport(t *testing.T) {
	dev := NewMemDevice(1 << 16)
	copy(dev.data, "snapshot")
	tc, done := startPipe(t, MapExports{"v@s": roDevice{dev}})
	_, flags := tc.goExport("v@s", false)
	if flags&tfReadOnly == 0 {
		t.Fatalf("flags %#x lack the read-only flag", flags)
	}
	tc.request(Request{Type: cmdWrite, Cookie: 1, Offset: 0, Length: 4}, []byte("over"))
	tc.request(Request{Type: cmdTrim, Cookie: 2, Offset: 0, Length: 8}, nil)
	tc.request(Request{Type: cmdWriteZeroes, Cookie: 3, Offset: 0, Length: 8}, nil)
	seen := map[uint64]bool{}
	for range 3 { // in any order: requests are served concurrently
		errno, cookie, _ := tc.simpleReply(0)
		if errno != errPerm || cookie < 1 || cookie > 3 || seen[cookie] {
			t.Fatalf("a change to a read-only export: errno %d cookie %d, want %d for each of cookies 1-3 once", errno, cookie, errPerm)
		}
		seen[cookie] = true
	}
	tc.request(Request{Type: cmdRead, Cookie: 4, Offset: 0, Length: 8}, nil)
	if errno, _, got := tc.simpleReply(8); errno != 0 || string(got) != "snapshot" {
		t.Fatalf("read: errno %d, %q", errno, got)
	}
	tc.request(Request{Type: cmdDisc}, nil)
	if err := <-done; err != nil {
		t.Fatalf("serve after disc: %v", err)
	}
}
