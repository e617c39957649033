package nbd

import (
	"encoding/binary"
	"fmt"
)

// Protocol constants (doc/proto.md).
const (
	nbdMagic      = 0x4e42444d41474943 // "NBDMAGIC"
	optMagic      = 0x49484156454f5054 // "IHAVEOPT"
	optReplyMagic = 0x3e889045565a9
	requestMagic  = 0x25609513
	simpleMagic   = 0x67446698
	structMagic   = 0x668e33ef

	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1

	optExportName      = 1
	optAbort           = 2
	optList            = 3
	optStartTLS        = 5
	optInfo            = 6
	optGo              = 7
	optStructuredReply = 8

	repAck          = 1
	repServer       = 2
	repInfo         = 3
	repErrUnsup     = 1<<31 + 1
	repErrPolicy    = 1<<31 + 2
	repErrInvalid   = 1<<31 + 3
	repErrUnknown   = 1<<31 + 6
	repErrShutdown  = 1<<31 + 7
	repErrTooBig    = 1<<31 + 9
	infoExport      = 0
	infoName        = 1
	infoDescription = 2
	infoBlockSize   = 3

	tfHasFlags       = 1 << 0
	tfReadOnly       = 1 << 1
	tfSendFlush      = 1 << 2
	tfSendFUA        = 1 << 3
	tfSendTrim       = 1 << 5
	tfSendWriteZeros = 1 << 6
	tfSendDF         = 1 << 7
	tfCanMultiConn   = 1 << 8
	tfSendFastZero   = 1 << 11

	cmdRead        = 0
	cmdWrite       = 1
	cmdDisc        = 2
	cmdFlush       = 3
	cmdTrim        = 4
	cmdWriteZeroes = 6

	cmdFlagFUA      = 1 << 0
	cmdFlagNoHole   = 1 << 1
	cmdFlagDF       = 1 << 2
	cmdFlagFastZero = 1 << 4

	replyFlagDone    = 1
	replyTypeNone    = 0
	replyTypeData    = 1
	replyTypeError   = 1<<15 + 1
	requestHeaderLen = 28
	optHeaderLen     = 16
	// maxOptionLen bounds an option's payload (names are at most 4 KiB).
	maxOptionLen = 64 << 10
)

// NBD error numbers (errno values on the wire).
const (
	errPerm     = 1
	errIO       = 5
	errInval    = 22
	errNoSpc    = 28
	errOverflow = 75
	errNotSup   = 95
	errShutdown = 108
)

// Request is a decoded transmission-phase request header.
type Request struct {
	Flags  uint16
	Type   uint16
	Cookie uint64
	Offset uint64
	Length uint32
}

// ParseRequest decodes a 28-byte request header. It wraps ErrProtocol.
func ParseRequest(b []byte) (Request, error) {
	if len(b) != requestHeaderLen {
		return Request{}, fmt.Errorf("%w: request header of %d bytes", ErrProtocol, len(b))
	}
	if m := binary.BigEndian.Uint32(b); m != requestMagic {
		return Request{}, fmt.Errorf("%w: request magic %#x", ErrProtocol, m)
	}
	return Request{
		Flags:  binary.BigEndian.Uint16(b[4:]),
		Type:   binary.BigEndian.Uint16(b[6:]),
		Cookie: binary.BigEndian.Uint64(b[8:]),
		Offset: binary.BigEndian.Uint64(b[16:]),
		Length: binary.BigEndian.Uint32(b[24:]),
	}, nil
}

// AppendRequest encodes a request header (the client side, for tests).
func AppendRequest(b []byte, r Request) []byte {
	b = binary.BigEndian.AppendUint32(b, requestMagic)
	b = binary.BigEndian.AppendUint16(b, r.Flags)
	b = binary.BigEndian.AppendUint16(b, r.Type)
	b = binary.BigEndian.AppendUint64(b, r.Cookie)
	b = binary.BigEndian.AppendUint64(b, r.Offset)
	return binary.BigEndian.AppendUint32(b, r.Length)
}

// OptionHeader is a decoded option-haggling header.
type OptionHeader struct {
	Option uint32
	Length uint32
}

// ParseOptionHeader decodes a 16-byte option header. It wraps ErrProtocol.
func ParseOptionHeader(b []byte) (OptionHeader, error) {
	if len(b) != optHeaderLen {
		return OptionHeader{}, fmt.Errorf("%w: option header of %d bytes", ErrProtocol, len(b))
	}
	if m := binary.BigEndian.Uint64(b); m != optMagic {
		return OptionHeader{}, fmt.Errorf("%w: option magic %#x", ErrProtocol, m)
	}
	return OptionHeader{Option: binary.BigEndian.Uint32(b[8:]), Length: binary.BigEndian.Uint32(b[12:])}, nil
}

// InfoRequest is the payload of NBD_OPT_INFO and NBD_OPT_GO.
type InfoRequest struct {
	Name  string
	Infos []uint16
}

// ParseInfoRequest decodes an INFO/GO payload. It wraps ErrProtocol.
func ParseInfoRequest(b []byte) (InfoRequest, error) {
	if len(b) < 4 {
		return InfoRequest{}, fmt.Errorf("%w: info request of %d bytes", ErrProtocol, len(b))
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n)+6 > uint64(len(b)) {
		return InfoRequest{}, fmt.Errorf("%w: export name length %d in %d bytes", ErrProtocol, n, len(b))
	}
	r := InfoRequest{Name: string(b[4 : 4+n])}
	rest := b[4+n:]
	k := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) != 2*k {
		return InfoRequest{}, fmt.Errorf("%w: %d info requests in %d bytes", ErrProtocol, k, len(rest))
	}
	for i := 0; i < k; i++ {
		r.Infos = append(r.Infos, binary.BigEndian.Uint16(rest[2*i:]))
	}
	return r, nil
}

// appendOptReply encodes an option reply.
func appendOptReply(b []byte, opt, typ uint32, data []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, optReplyMagic)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// appendSimpleReply encodes a simple reply header (data follows for READ).
func appendSimpleReply(b []byte, errno uint32, cookie uint64) []byte {
	b = binary.BigEndian.AppendUint32(b, simpleMagic)
	b = binary.BigEndian.AppendUint32(b, errno)
	return binary.BigEndian.AppendUint64(b, cookie)
}

// appendStructuredHeader encodes a structured reply chunk header.
func appendStructuredHeader(b []byte, flags, typ uint16, cookie uint64, length uint32) []byte {
	b = binary.BigEndian.AppendUint32(b, structMagic)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint64(b, cookie)
	return binary.BigEndian.AppendUint32(b, length)
}

// appendStructuredError encodes a final NBD_REPLY_TYPE_ERROR chunk.
func appendStructuredError(b []byte, cookie uint64, errno uint32, msg string) []byte {
	if len(msg) > 4096 {
		msg = msg[:4096]
	}
	b = appendStructuredHeader(b, replyFlagDone, replyTypeError, cookie, uint32(6+len(msg)))
	b = binary.BigEndian.AppendUint32(b, errno)
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	return append(b, msg...)
}

// appendInfoExport encodes the NBD_INFO_EXPORT payload.
func appendInfoExport(b []byte, size uint64, flags uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, infoExport)
	b = binary.BigEndian.AppendUint64(b, size)
	return binary.BigEndian.AppendUint16(b, flags)
}

// appendInfoBlockSize encodes the NBD_INFO_BLOCK_SIZE payload.
func appendInfoBlockSize(b []byte, minimum, preferred, maximum uint32) []byte {
	b = binary.BigEndian.AppendUint16(b, infoBlockSize)
	b = binary.BigEndian.AppendUint32(b, minimum)
	b = binary.BigEndian.AppendUint32(b, preferred)
	return binary.BigEndian.AppendUint32(b, maximum)
}

// checkRange validates a request range against the export size and the
// largest payload: it returns 0 or the errno to reply.
func checkRange(r Request, size uint64, maxPayload uint32) uint32 {
	end := r.Offset + uint64(r.Length)
	if end < r.Offset || end > size {
		if r.Type == cmdWrite || r.Type == cmdWriteZeroes {
			return errNoSpc
		}
		return errInval
	}
	if (r.Type == cmdRead || r.Type == cmdWrite) && r.Length > maxPayload {
		return errOverflow
	}
	return 0
}
