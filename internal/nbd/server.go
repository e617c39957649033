package nbd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
)

// Device is a block device served as an export. Calls are concurrent; the
// Server checks every range against Size before calling. WriteAt, Trim and
// Zero should be durable when they return; Flush makes earlier completed
// writes durable (a no-op for a Device whose writes are durable anyway).
type Device interface {
	Size() int64
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Flush() error
	// Trim discards [off, off+n); the range may read as anything afterwards
	// (a Catena volume reads zeros).
	Trim(off, n int64) error
	// Zero makes [off, off+n) read as zeros.
	Zero(off, n int64) error
}

// ReadOnlyDevice is a Device that may refuse writes: the export is then
// announced read-only and writes, trims and zeroes fail with EPERM.
type ReadOnlyDevice interface {
	ReadOnly() bool
}

func readOnly(dev Device) bool {
	ro, ok := dev.(ReadOnlyDevice)
	return ok && ro.ReadOnly()
}

// Exports names and opens the devices a Server offers. Both methods are
// called concurrently. Open returns ErrUnknownExport for an unknown name; the
// empty name means the default export, if there is one.
type Exports interface {
	List() ([]string, error)
	Open(name string) (Device, error)
}

// Config configures a Server.
type Config struct {
	Exports Exports
	// Logger receives connection-level logs; nil discards them.
	Logger *slog.Logger
	// MaxPayload is the largest READ or WRITE (default and cap 32 MiB); it
	// is advertised as the maximum block size.
	MaxPayload uint32
	// MaxInFlight bounds concurrent requests per connection (default 64).
	MaxInFlight int
	// MaxMemory bounds the bytes of request data (a WRITE's payload, a
	// READ's buffer) the whole server holds at once (default 256 MiB,
	// at least MaxPayload): a request waits for room before its payload
	// is read off the wire, so a client that sends faster than the
	// volumes take it is slowed by TCP, not by the server's memory.
	MaxMemory int64
	// MaxConns bounds the connections served at once (default 256);
	// further ones wait in the listen backlog until one ends.
	MaxConns int
	// HandshakeTimeout bounds the negotiation of a new connection
	// (default 30 s): a client that opens one and says nothing holds no
	// slot for longer.
	HandshakeTimeout time.Duration
	// ReplyTimeout bounds the sending of one reply (default 60 s): a
	// client that stops reading its replies is disconnected instead of
	// holding its requests' memory.
	ReplyTimeout time.Duration
	// Metrics receives the server's Prometheus collectors (nil: none are
	// gathered).
	Metrics prometheus.Registerer
}

const (
	defaultMaxPayload       = 32 << 20
	defaultMaxInFlight      = 64
	defaultMaxMemory        = 256 << 20
	defaultMaxConns         = 256
	defaultHandshakeTimeout = 30 * time.Second
	defaultReplyTimeout     = 60 * time.Second
	preferredBlockSize      = 4096
)

// Server serves Exports over NBD.
type Server struct {
	cfg Config
	log *slog.Logger
	mx  *serverMetrics

	mem    *semaphore.Weighted // MaxMemory
	slots  chan struct{}       // MaxConns
	ctx    context.Context     // cancelled by Close
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
}

// NewServer returns a Server; it serves nothing until Serve or ServeConn.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Exports == nil {
		return nil, errors.New("nbd: Config.Exports is nil")
	}
	if cfg.MaxPayload == 0 || cfg.MaxPayload > defaultMaxPayload {
		cfg.MaxPayload = defaultMaxPayload
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = defaultMaxInFlight
	}
	if cfg.MaxMemory <= 0 {
		cfg.MaxMemory = defaultMaxMemory
	}
	cfg.MaxMemory = max(cfg.MaxMemory, int64(cfg.MaxPayload))
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = defaultMaxConns
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = defaultHandshakeTimeout
	}
	if cfg.ReplyTimeout <= 0 {
		cfg.ReplyTimeout = defaultReplyTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: log, listeners: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{},
		mem: semaphore.NewWeighted(cfg.MaxMemory), slots: make(chan struct{}, cfg.MaxConns), ctx: ctx, cancel: cancel}
	s.mx = newServerMetrics(s, cfg.Metrics)
	return s, nil
}

// Serve accepts connections on l until Close; it returns ErrServerClosed
// then, or the accept error.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	for {
		// A free slot first: past MaxConns, connections wait in the
		// backlog.
		select {
		case s.slots <- struct{}{}:
		case <-s.ctx.Done():
			return ErrServerClosed
		}
		c, err := l.Accept()
		if err != nil {
			<-s.slots
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			return fmt.Errorf("nbd: accept: %w", err)
		}
		go func() {
			defer func() { <-s.slots }()
			if err := s.ServeConn(c); err != nil {
				s.log.Debug("nbd: connection ended", "remote", c.RemoteAddr(), "err", err)
			}
		}()
	}
}

// ServeConn runs one client connection to its end and closes c. It returns
// nil after a clean disconnect.
func (s *Server) ServeConn(c net.Conn) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return ErrServerClosed
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	cn := &conn{s: s, c: c}
	c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	dev, err := cn.handshake()
	if err != nil || dev == nil {
		return err
	}
	c.SetDeadline(time.Time{}) // an export may stay idle for as long as it is attached
	cn.transmitting = true
	return cn.transmit(dev)
}

// Close stops the listeners, closes every connection and waits for their
// in-flight requests.
func (s *Server) Close() error {
	s.mu.Lock()
	s.cancel()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// conn is one client connection.
type conn struct {
	s          *Server
	c          net.Conn
	noZeroes   bool
	structured bool

	wmu          sync.Mutex // serialises replies
	transmitting bool       // set before the transmission phase starts
}

func (cn *conn) write(bufs ...[]byte) error {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	if cn.transmitting {
		cn.c.SetWriteDeadline(time.Now().Add(cn.s.cfg.ReplyTimeout))
	}
	nb := net.Buffers(bufs)
	_, err := nb.WriteTo(cn.c)
	return err
}

func (cn *conn) optReply(opt, typ uint32, data []byte) error {
	return cn.write(appendOptReply(nil, opt, typ, data))
}

func (cn *conn) transmissionFlags(dev Device) uint16 {
	f := uint16(tfHasFlags | tfSendFlush | tfSendFUA | tfSendTrim | tfSendWriteZeros | tfCanMultiConn | tfSendFastZero)
	if readOnly(dev) {
		f |= tfReadOnly
	}
	if cn.structured {
		f |= tfSendDF
	}
	return f
}

// handshake runs the fixed newstyle negotiation. It returns the device to
// serve, or nil when the client ended the session.
func (cn *conn) handshake() (Device, error) {
	var hello []byte
	hello = binary.BigEndian.AppendUint64(hello, nbdMagic)
	hello = binary.BigEndian.AppendUint64(hello, optMagic)
	hello = binary.BigEndian.AppendUint16(hello, flagFixedNewstyle|flagNoZeroes)
	if err := cn.write(hello); err != nil {
		return nil, err
	}
	var cf [4]byte
	if _, err := io.ReadFull(cn.c, cf[:]); err != nil {
		return nil, err
	}
	flags := binary.BigEndian.Uint32(cf[:])
	if flags&^(flagFixedNewstyle|flagNoZeroes) != 0 {
		return nil, fmt.Errorf("%w: client flags %#x", ErrProtocol, flags)
	}
	cn.noZeroes = flags&flagNoZeroes != 0
	var hdr [optHeaderLen]byte
	for {
		if _, err := io.ReadFull(cn.c, hdr[:]); err != nil {
			return nil, err
		}
		oh, err := ParseOptionHeader(hdr[:])
		if err != nil {
			return nil, err
		}
		if oh.Length > maxOptionLen {
			return nil, fmt.Errorf("%w: option %d of %d bytes", ErrProtocol, oh.Option, oh.Length)
		}
		data := make([]byte, oh.Length)
		if _, err := io.ReadFull(cn.c, data); err != nil {
			return nil, err
		}
		dev, done, err := cn.option(oh.Option, data)
		if err != nil || done {
			return dev, err
		}
	}
}

// option answers one option; done ends the haggling (dev nil: close).
func (cn *conn) option(opt uint32, data []byte) (dev Device, done bool, err error) {
	switch opt {
	case optExportName:
		dev, err := cn.s.cfg.Exports.Open(string(data))
		if err != nil {
			// The protocol has no error reply here: close.
			return nil, true, fmt.Errorf("nbd: export %q: %w", data, err)
		}
		b := binary.BigEndian.AppendUint64(nil, uint64(dev.Size()))
		b = binary.BigEndian.AppendUint16(b, cn.transmissionFlags(dev))
		if !cn.noZeroes {
			b = append(b, make([]byte, 124)...)
		}
		return dev, true, cn.write(b)
	case optAbort:
		cn.optReply(opt, repAck, nil) // best effort: the client may be gone
		return nil, true, nil
	case optList:
		if len(data) != 0 {
			return nil, false, cn.optReply(opt, repErrInvalid, nil)
		}
		names, err := cn.s.cfg.Exports.List()
		if err != nil {
			return nil, false, cn.optReply(opt, repErrShutdown, []byte(err.Error()))
		}
		for _, n := range names {
			b := binary.BigEndian.AppendUint32(nil, uint32(len(n)))
			if err := cn.optReply(opt, repServer, append(b, n...)); err != nil {
				return nil, false, err
			}
		}
		return nil, false, cn.optReply(opt, repAck, nil)
	case optStructuredReply:
		if len(data) != 0 {
			return nil, false, cn.optReply(opt, repErrInvalid, nil)
		}
		cn.structured = true
		return nil, false, cn.optReply(opt, repAck, nil)
	case optInfo, optGo:
		req, err := ParseInfoRequest(data)
		if err != nil {
			return nil, false, cn.optReply(opt, repErrInvalid, []byte(err.Error()))
		}
		dev, err := cn.s.cfg.Exports.Open(req.Name)
		if errors.Is(err, ErrUnknownExport) {
			return nil, false, cn.optReply(opt, repErrUnknown, []byte(err.Error()))
		}
		if errors.Is(err, ErrExportDenied) {
			return nil, false, cn.optReply(opt, repErrPolicy, []byte(err.Error()))
		}
		if err != nil {
			return nil, false, cn.optReply(opt, repErrShutdown, []byte(err.Error()))
		}
		if err := cn.optReply(opt, repInfo, appendInfoExport(nil, uint64(dev.Size()), cn.transmissionFlags(dev))); err != nil {
			return nil, false, err
		}
		// Unaligned I/O is fine (minimum 1); always announced, as the
		// spec allows, so clients pick good request sizes.
		if err := cn.optReply(opt, repInfo, appendInfoBlockSize(nil, 1, preferredBlockSize, cn.s.cfg.MaxPayload)); err != nil {
			return nil, false, err
		}
		for _, i := range req.Infos {
			if i == infoName {
				b := binary.BigEndian.AppendUint16(nil, infoName)
				if err := cn.optReply(opt, repInfo, append(b, req.Name...)); err != nil {
					return nil, false, err
				}
			}
		}
		if err := cn.optReply(opt, repAck, nil); err != nil {
			return nil, false, err
		}
		if opt == optGo {
			return dev, true, nil
		}
		return nil, false, nil
	default: // STARTTLS, meta contexts, extended headers, ...
		return nil, false, cn.optReply(opt, repErrUnsup, nil)
	}
}

// transmit runs the transmission phase until DISC, a protocol error or a
// vanished client, then waits for the requests in flight.
func (cn *conn) transmit(dev Device) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, cn.s.cfg.MaxInFlight)
	size := uint64(dev.Size())
	var hdr [requestHeaderLen]byte
	for {
		if _, err := io.ReadFull(cn.c, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // vanished between requests
			}
			return err
		}
		req, err := ParseRequest(hdr[:])
		if err != nil {
			return err
		}
		if req.Type == cmdDisc {
			return nil
		}
		// The request's data counts against the server's MaxMemory from
		// before its payload is read until its reply is sent.
		var cost int64
		switch {
		case req.Type == cmdWrite && req.Length > cn.s.cfg.MaxPayload:
			// Cannot skip an unbounded payload: close.
			return fmt.Errorf("%w: write of %d bytes", ErrProtocol, req.Length)
		case req.Type == cmdWrite, req.Type == cmdRead && req.Length <= cn.s.cfg.MaxPayload:
			cost = int64(req.Length)
		}
		if err := cn.s.acquire(cost); err != nil {
			return err
		}
		var payload []byte
		if req.Type == cmdWrite {
			payload = make([]byte, req.Length)
			if _, err := io.ReadFull(cn.c, payload); err != nil {
				cn.s.release(cost)
				return err
			}
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer cn.s.release(cost)
			if err := cn.handle(dev, size, req, payload); err != nil {
				// The reply could not be sent: the client is gone.
				cn.c.Close()
			}
		}()
	}
}

// acquire waits for n bytes of MaxMemory, or until Close.
func (s *Server) acquire(n int64) error {
	if n == 0 {
		return nil
	}
	if err := s.mem.Acquire(s.ctx, n); err != nil {
		return ErrServerClosed
	}
	s.mx.memUsed.Add(n)
	return nil
}

// release gives back n bytes of MaxMemory.
func (s *Server) release(n int64) {
	if n == 0 {
		return
	}
	s.mx.memUsed.Add(-n)
	s.mem.Release(n)
}

// handle executes one request, counts it and sends its reply.
func (cn *conn) handle(dev Device, size uint64, req Request, payload []byte) error {
	start := time.Now()
	errno, data, msg := cn.execute(dev, size, req, payload)
	cn.s.mx.served(req, errno, start)
	return cn.reply(req, errno, data, msg)
}

// execute executes one request and returns its reply: an errno, a READ's
// data, an error message.
func (cn *conn) execute(dev Device, size uint64, req Request, payload []byte) (uint32, []byte, string) {
	if errno := cn.validate(req, size); errno != 0 {
		return errno, nil, "invalid request"
	}
	if req.Type == cmdWrite || req.Type == cmdTrim || req.Type == cmdWriteZeroes {
		if readOnly(dev) {
			return errPerm, nil, "read-only export (a snapshot)"
		}
	}
	off, n := int64(req.Offset), int64(req.Length)
	var err error
	switch req.Type {
	case cmdRead:
		buf := make([]byte, n)
		if _, err = dev.ReadAt(buf, off); err == nil {
			return 0, buf, ""
		}
	case cmdWrite:
		_, err = dev.WriteAt(payload, off)
	case cmdFlush:
		err = dev.Flush()
	case cmdTrim:
		err = dev.Trim(off, n)
	case cmdWriteZeroes:
		err = dev.Zero(off, n)
	}
	if err == nil && req.Flags&cmdFlagFUA != 0 && req.Type != cmdFlush && req.Type != cmdRead {
		err = dev.Flush()
	}
	if err != nil {
		cn.s.log.Warn("nbd: I/O error", "cmd", req.Type, "offset", off, "length", n, "err", err)
		return errIO, nil, err.Error()
	}
	return 0, nil, ""
}

// validate returns the errno for a request the device must not see.
func (cn *conn) validate(req Request, size uint64) uint32 {
	switch req.Type {
	case cmdRead, cmdWrite, cmdTrim, cmdWriteZeroes:
		return checkRange(req, size, cn.s.cfg.MaxPayload)
	case cmdFlush:
		if req.Offset != 0 || req.Length != 0 {
			return errInval
		}
		return 0
	default:
		return errInval
	}
}

// reply sends the answer to req: data for a successful READ, errno otherwise.
func (cn *conn) reply(req Request, errno uint32, data []byte, msg string) error {
	if !cn.structured || req.Type != cmdRead {
		hdr := appendSimpleReply(nil, errno, req.Cookie)
		if errno == 0 && req.Type == cmdRead {
			return cn.write(hdr, data)
		}
		return cn.write(hdr)
	}
	if errno != 0 {
		return cn.write(appendStructuredError(nil, req.Cookie, errno, msg))
	}
	if len(data) == 0 {
		return cn.write(appendStructuredHeader(nil, replyFlagDone, replyTypeNone, req.Cookie, 0))
	}
	hdr := appendStructuredHeader(nil, replyFlagDone, replyTypeData, req.Cookie, uint32(8+len(data)))
	hdr = binary.BigEndian.AppendUint64(hdr, req.Offset)
	return cn.write(hdr, data)
}
