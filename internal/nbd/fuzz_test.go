package nbd

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

func FuzzParseRequest(f *testing.F) {
	f.Add(AppendRequest(nil, Request{Type: cmdWrite, Cookie: 3, Offset: 10, Length: 5}))
	f.Add(make([]byte, requestHeaderLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			return
		}
		if !bytes.Equal(AppendRequest(nil, r), b) {
			t.Fatalf("round trip differs: %x", b)
		}
		_ = checkRange(r, 1<<20, 1<<16)
	})
}

func FuzzParseInfoRequest(f *testing.F) {
	f.Add(infoPayload("vol", infoBlockSize, infoName))
	f.Add([]byte{0, 0, 0, 0, 0, 0})
	f.Add([]byte{255, 255, 255, 255, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseInfoRequest(b)
		if err != nil {
			return
		}
		if !bytes.Equal(infoPayload(r.Name, r.Infos...), b) {
			t.Fatalf("round trip differs: %x", b)
		}
	})
}

// FuzzServe feeds arbitrary client bytes after a valid greeting (and,
// with go set, after a valid GO) to a server: it must answer or close,
// never panic or hang.
func FuzzServe(f *testing.F) {
	seed := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	opt := func(o uint32, d []byte) []byte {
		b := binary.BigEndian.AppendUint64(nil, optMagic)
		b = binary.BigEndian.AppendUint32(b, o)
		b = binary.BigEndian.AppendUint32(b, uint32(len(d)))
		return append(b, d...)
	}
	f.Add(false, seed(opt(optList, nil), opt(optGo, infoPayload("v")), AppendRequest(nil, Request{Type: cmdRead, Length: 10})))
	f.Add(true, seed(AppendRequest(nil, Request{Type: cmdWrite, Offset: 4090, Length: 10}), []byte("0123456789")))
	f.Add(true, AppendRequest(nil, Request{Type: cmdTrim, Offset: 1, Length: 4095}))
	f.Add(false, opt(optInfo, []byte{0, 0, 0, 1, 'v', 0, 5}))
	f.Fuzz(func(t *testing.T, goFirst bool, in []byte) {
		s, _ := NewServer(Config{Exports: MapExports{"v": NewMemDevice(4096)}, MaxPayload: 1 << 12})
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() { s.ServeConn(b); close(done) }()
		go io.Copy(io.Discard, a) // drain replies
		a.SetDeadline(time.Now().Add(2 * time.Second))
		a.Write(binary.BigEndian.AppendUint32(nil, flagFixedNewstyle|flagNoZeroes))
		if goFirst {
			a.Write(opt(optGo, infoPayload("v")))
		}
		a.Write(in)
		a.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("server did not end after the client closed")
		}
		s.Close()
	})
}
