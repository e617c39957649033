package crash

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// A minimal NBD client (fixed newstyle, NBD_OPT_GO, simple replies, one
// request at a time), enough to drive "catena nbd" as a real client would.
// The wire format is the protocol's (see internal/nbd/wire.go).

const (
	nbdMagic        = 0x4e42444d41474943 // "NBDMAGIC"
	nbdOptMagic     = 0x49484156454f5054 // "IHAVEOPT"
	nbdOptReply     = 0x3e889045565a9
	nbdReqMagic     = 0x25609513
	nbdSimpleMagic  = 0x67446698
	nbdOptGo        = 7
	nbdRepAck       = 1
	nbdRepInfo      = 3
	nbdInfoExport   = 0
	nbdCmdRead      = 0
	nbdCmdWrite     = 1
	nbdCmdDisc      = 2
	nbdCmdFlush     = 3
	nbdFlagFixedNew = 1
	nbdFlagNoZeroes = 2
	// nbdIOTimeout bounds one request; the server retries within the
	// client library's own timeout (30 s) before it answers EIO.
	nbdIOTimeout = 90 * time.Second
)

// errNBD is an error reply (errno) from the server.
var errNBD = errors.New("nbd error reply")

type nbdConn struct {
	c      net.Conn
	size   uint64
	cookie uint64
}

// dialNBD connects to addr and opens export name with NBD_OPT_GO.
func dialNBD(addr, name string) (*nbdConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	n := &nbdConn{c: c}
	if err := n.handshake(name); err != nil {
		c.Close()
		return nil, fmt.Errorf("nbd handshake with %s: %w", addr, err)
	}
	return n, nil
}

func (n *nbdConn) handshake(name string) error {
	n.c.SetDeadline(time.Now().Add(nbdIOTimeout))
	defer n.c.SetDeadline(time.Time{})
	var hello [18]byte
	if _, err := io.ReadFull(n.c, hello[:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint64(hello[0:]) != nbdMagic || binary.BigEndian.Uint64(hello[8:]) != nbdOptMagic {
		return fmt.Errorf("bad greeting %x", hello)
	}
	if binary.BigEndian.Uint16(hello[16:])&nbdFlagFixedNew == 0 {
		return errors.New("server is not fixed newstyle")
	}
	b := binary.BigEndian.AppendUint32(nil, nbdFlagFixedNew|nbdFlagNoZeroes)
	data := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	data = append(data, name...)
	data = binary.BigEndian.AppendUint16(data, 0) // no info requests
	b = binary.BigEndian.AppendUint64(b, nbdOptMagic)
	b = binary.BigEndian.AppendUint32(b, nbdOptGo)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	if _, err := n.c.Write(b); err != nil {
		return err
	}
	for {
		var hdr [20]byte
		if _, err := io.ReadFull(n.c, hdr[:]); err != nil {
			return err
		}
		if binary.BigEndian.Uint64(hdr[0:]) != nbdOptReply {
			return fmt.Errorf("bad option reply magic %x", hdr[:8])
		}
		typ := binary.BigEndian.Uint32(hdr[12:])
		payload := make([]byte, binary.BigEndian.Uint32(hdr[16:]))
		if _, err := io.ReadFull(n.c, payload); err != nil {
			return err
		}
		switch {
		case typ == nbdRepAck:
			if n.size == 0 {
				return errors.New("no export size announced")
			}
			return nil
		case typ == nbdRepInfo:
			if len(payload) >= 12 && binary.BigEndian.Uint16(payload) == nbdInfoExport {
				n.size = binary.BigEndian.Uint64(payload[2:])
			}
		case typ&(1<<31) != 0:
			return fmt.Errorf("option refused (%#x): %s", typ, payload)
		}
	}
}

// do sends one request and waits for its reply; read data goes to buf.
func (n *nbdConn) do(typ uint16, off uint64, payload, buf []byte) error {
	n.cookie++
	length := uint32(len(payload))
	if typ == nbdCmdRead {
		length = uint32(len(buf))
	}
	b := binary.BigEndian.AppendUint32(nil, nbdReqMagic)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint64(b, n.cookie)
	b = binary.BigEndian.AppendUint64(b, off)
	b = binary.BigEndian.AppendUint32(b, length)
	n.c.SetDeadline(time.Now().Add(nbdIOTimeout))
	defer n.c.SetDeadline(time.Time{})
	if _, err := (&net.Buffers{b, payload}).WriteTo(n.c); err != nil {
		return err
	}
	var hdr [16]byte
	if _, err := io.ReadFull(n.c, hdr[:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(hdr[0:]) != nbdSimpleMagic {
		return fmt.Errorf("bad reply magic %x", hdr[:4])
	}
	if c := binary.BigEndian.Uint64(hdr[8:]); c != n.cookie {
		return fmt.Errorf("reply cookie %d, want %d", c, n.cookie)
	}
	if e := binary.BigEndian.Uint32(hdr[4:]); e != 0 {
		return fmt.Errorf("%w: errno %d", errNBD, e)
	}
	if typ == nbdCmdRead {
		if _, err := io.ReadFull(n.c, buf); err != nil {
			return err
		}
	}
	return nil
}

func (n *nbdConn) WriteAt(p []byte, off int64) error { return n.do(nbdCmdWrite, uint64(off), p, nil) }
func (n *nbdConn) ReadAt(p []byte, off int64) error  { return n.do(nbdCmdRead, uint64(off), nil, p) }
func (n *nbdConn) Flush() error                      { return n.do(nbdCmdFlush, 0, nil, nil) }

// Close ends the session politely when it can, then closes the socket.
func (n *nbdConn) Close() error {
	b := binary.BigEndian.AppendUint32(nil, nbdReqMagic)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, nbdCmdDisc)
	b = append(b, make([]byte, 20)...)
	n.c.SetWriteDeadline(time.Now().Add(time.Second))
	n.c.Write(b)
	return n.c.Close()
}
