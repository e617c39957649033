package s3

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"time"
)

// The aws-chunked body of a streaming upload
// (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html):
//
//	HEXSIZE;chunk-signature=SIG\r\n DATA \r\n ... 0;chunk-signature=SIG\r\n\r\n
//
// Each chunk's signature chains on the previous one (the first on the
// header's "seed" signature), so a chunk cannot be changed, dropped or
// reordered. With STREAMING-UNSIGNED-PAYLOAD-TRAILER the chunks carry no
// signature ("HEXSIZE\r\n DATA \r\n ... 0\r\n") and trailing headers
// (checksums) follow the last one, ended by an empty line.
//
// The reader hands a chunk's bytes on as they arrive and checks its
// signature at the chunk's end: a caller must not make anything it read
// visible before Read has returned io.EOF (the gateway writes to a
// temporary file and renames it into place only then).

// Errors of the chunked decoder.
var (
	errChunkFormat    = errors.New("s3: malformed aws-chunked body")
	errChunkSignature = errors.New("s3: chunk signature does not match")
	errChunkTooLarge  = errors.New("s3: aws-chunked chunk too large")
	// errChunkTruncated: the body ended before its last chunk; it is an
	// io.ErrUnexpectedEOF, but never equal to it, so that a reader that
	// takes io.ErrUnexpectedEOF for a short last read cannot mistake it.
	errChunkTruncated = fmt.Errorf("s3: aws-chunked body cut short: %w", io.ErrUnexpectedEOF)
)

// maxChunkSize bounds one chunk (clients send 64 KiB to 16 MiB).
const maxChunkSize = 64 << 20

// maxChunkLine bounds a chunk header or trailer line.
const maxChunkLine = 4096

// chunkSigner checks the chained chunk signatures; nil for unsigned
// chunks.
type chunkSigner struct {
	key     []byte
	amzDate time.Time
	scope   string
	prev    string // the previous signature (first: the seed)
}

// next checks sig as the signature of a chunk whose data hashes to sum.
func (s *chunkSigner) next(sum []byte, sig string) bool {
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + s.amzDate.UTC().Format(amzDateFormat) + "\n" + s.scope + "\n" +
		s.prev + "\n" + emptySHA256 + "\n" + hex.EncodeToString(sum)
	want := signature(s.key, sts)
	if !sigEqual(want, sig) {
		return false
	}
	s.prev = sig
	return true
}

// trailer checks sig as the signature of the trailing headers.
func (s *chunkSigner) trailer(headers []byte, sig string) bool {
	sum := sha256.Sum256(headers)
	sts := "AWS4-HMAC-SHA256-TRAILER\n" + s.amzDate.UTC().Format(amzDateFormat) + "\n" + s.scope + "\n" +
		s.prev + "\n" + hex.EncodeToString(sum[:])
	if !sigEqual(signature(s.key, sts), sig) {
		return false
	}
	s.prev = sig
	return true
}

// chunkedReader decodes an aws-chunked body.
type chunkedReader struct {
	r       *bufio.Reader
	signer  *chunkSigner // nil: unsigned chunks
	trailer bool         // trailing headers after the last chunk
	left    int64        // bytes of the current chunk still to read
	sig     string       // the current chunk's claimed signature
	h       hash.Hash    // the current chunk's SHA-256 (signed only)
	done    bool
	err     error
}

func newChunkedReader(r io.Reader, signer *chunkSigner, trailer bool) *chunkedReader {
	return &chunkedReader{r: bufio.NewReaderSize(r, 64<<10), signer: signer, trailer: trailer, h: sha256.New()}
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	for {
		if c.err != nil {
			return 0, c.err
		}
		if c.done {
			return 0, io.EOF
		}
		if c.left > 0 {
			if int64(len(p)) > c.left {
				p = p[:c.left]
			}
			n, err := c.r.Read(p)
			c.left -= int64(n)
			if c.signer != nil {
				c.h.Write(p[:n])
			}
			if err == io.EOF {
				err = errChunkTruncated
			}
			if err != nil {
				c.err = err
				return n, err
			}
			if c.left == 0 {
				c.err = c.endChunk(false)
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		c.err = c.beginChunk()
	}
}

// readLine reads one CRLF-terminated line without its CRLF.
func (c *chunkedReader) readLine() (string, error) {
	var b []byte
	for {
		part, err := c.r.ReadSlice('\n')
		b = append(b, part...)
		if len(b) > maxChunkLine {
			return "", errChunkFormat
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return "", errChunkTruncated
		}
		if err != nil {
			return "", err
		}
		break
	}
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		return "", errChunkFormat
	}
	return string(b[:len(b)-2]), nil
}

// beginChunk reads a chunk header; a zero-length chunk ends the body.
func (c *chunkedReader) beginChunk() error {
	line, err := c.readLine()
	if err != nil {
		return err
	}
	size, ext, _ := strings.Cut(line, ";")
	n, err := strconv.ParseInt(size, 16, 64)
	if err != nil || n < 0 || size == "" || len(size) > 16 {
		return errChunkFormat
	}
	if n > maxChunkSize {
		return errChunkTooLarge
	}
	c.sig = ""
	if c.signer != nil {
		sig, ok := strings.CutPrefix(ext, "chunk-signature=")
		if !ok || len(sig) != 64 {
			return errChunkFormat
		}
		c.sig = sig
	} else if ext != "" && !strings.HasPrefix(ext, "chunk-signature=") {
		return errChunkFormat
	}
	c.left = n
	c.h.Reset()
	if n == 0 {
		return c.endChunk(true)
	}
	return nil
}

// endChunk checks the chunk's signature and reads what follows its data.
func (c *chunkedReader) endChunk(last bool) error {
	if c.signer != nil && !c.signer.next(c.h.Sum(nil), c.sig) {
		return errChunkSignature
	}
	if !last {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if line != "" {
			return errChunkFormat
		}
		return nil
	}
	if !c.trailer {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if line != "" {
			return errChunkFormat
		}
		c.done = true
		return nil
	}
	if err := c.readTrailer(); err != nil {
		return err
	}
	c.done = true
	return nil
}

// readTrailer reads the trailing headers after the last chunk (lines
// ending in LF or CRLF, as clients differ), the trailer signature of a
// signed body, and the empty lines that end the body.
func (c *chunkedReader) readTrailer() error {
	var trailer []byte
	var sig string
	seen := 0
	for lines := 0; ; lines++ {
		if lines > 128 {
			return errChunkFormat
		}
		line, err := c.readTrailerLine()
		if err == io.EOF {
			return errChunkTruncated // the empty line that ends the body is missing
		}
		if err != nil {
			return err
		}
		switch k, v, _ := strings.Cut(line, ":"); {
		case line == "":
			if seen > 0 && (c.signer == nil || sig != "") {
				return c.drain()
			}
		case k == "x-amz-trailer-signature":
			if c.signer == nil || sig != "" || len(v) != 64 {
				return errChunkFormat
			}
			sig = v
			if !c.signer.trailer(trailer, sig) {
				return errChunkSignature
			}
		default:
			if k == "" || sig != "" || seen > 64 {
				return errChunkFormat
			}
			trailer = append(trailer, line+"\n"...)
			seen++
		}
	}
}

// readTrailerLine reads a line ending in LF, without it and a CR before.
func (c *chunkedReader) readTrailerLine() (string, error) {
	b, err := c.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(b) > maxChunkLine {
		return "", errChunkFormat
	}
	if err == io.EOF && len(b) == 0 {
		return "", io.EOF
	}
	if err != nil {
		return "", errChunkTruncated
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
}

// drain reads what is left of the body: only line ends may be.
func (c *chunkedReader) drain() error {
	for i := 0; ; i++ {
		b, err := c.r.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if (b != '\r' && b != '\n') || i > 8 {
			return errChunkFormat
		}
	}
}
