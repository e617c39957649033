package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"

	"github.com/catena-io/catena/api"
)

// Record files. Many producers append records to one file without
// agreeing on offsets: the head of the chain of the file's last chunk
// picks each record's offset (the end of its replica), writes it on
// every replica and answers the offset; a record that does not fit
// before the chunk's end goes to the next chunk. A retried append (the
// same request id) is answered with its first offset: every record is
// in the file exactly once. Each record is framed:
//
//	"CREC" | length (uint32 LE) | CRC-32C of length and payload | payload | "CEND"
//
// so a reader (RecordReader) finds whole records only: it skips the zeros
// a chunk ends with, and anything that is not a whole, verified frame.

const (
	recordHeader   = 12
	recordOverhead = recordHeader + 4
)

var (
	recordMagic   = []byte("CREC")
	recordTrailer = []byte("CEND") // non-zero last byte: the head finds the end after it
	crcTable      = crc32.MakeTable(crc32.Castagnoli)
)

// MaxRecordSize is the largest record a file of chunkSize takes: a
// quarter of a chunk, less the frame.
func MaxRecordSize(chunkSize int64) int { return int(chunkSize/4) - recordOverhead }

// frameRecord returns rec framed.
func frameRecord(rec []byte) []byte {
	b := make([]byte, recordHeader, recordOverhead+len(rec))
	copy(b, recordMagic)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(rec)))
	crc := crc32.Update(0, crcTable, b[4:8])
	binary.LittleEndian.PutUint32(b[8:], crc32.Update(crc, crcTable, rec))
	b = append(b, rec...)
	return append(b, recordTrailer...)
}

// parseRecord parses the frame at the start of b. It returns the record
// and the frame's size; n == 0 when b starts with no whole, valid frame
// of at most max bytes of payload, need > 0 when b is too short to tell
// (b holds a valid header of a frame of need bytes).
func parseRecord(b []byte, max int) (rec []byte, n, need int) {
	if len(b) < recordHeader {
		if bytes.HasPrefix(recordMagic, b[:min(len(b), 4)]) {
			return nil, 0, recordHeader
		}
		return nil, 0, 0
	}
	if !bytes.Equal(b[:4], recordMagic) {
		return nil, 0, 0
	}
	l := binary.LittleEndian.Uint32(b[4:])
	if int64(l) > int64(max) {
		return nil, 0, 0
	}
	size := recordOverhead + int(l)
	if len(b) < size {
		return nil, 0, size
	}
	rec = b[recordHeader : recordHeader+int(l)]
	crc := crc32.Update(crc32.Update(0, crcTable, b[4:8]), crcTable, rec)
	if crc != binary.LittleEndian.Uint32(b[8:]) || !bytes.Equal(b[recordHeader+int(l):size], recordTrailer) {
		return nil, 0, 0
	}
	return rec, size, 0
}

// Append appends record to the file and returns the offset of its frame:
// durable on every replica, in the file exactly once, visible to every
// reader (the file's size is reported before it returns). Records are at
// most MaxRecordSize(chunk size) bytes; many Files, of many clients, may
// append to one file at once.
func (f *File) Append(ctx context.Context, record []byte) (int64, error) {
	if f.isClosed() {
		return 0, opError("append", f.path, ErrClosed)
	}
	if max := MaxRecordSize(f.chunkSize); len(record) > max {
		return 0, opError("append", f.path, detailf(ErrInvalid, "record of %d bytes over %d (a quarter of the chunk, less %d bytes of frame)", len(record), max, recordOverhead))
	}
	ctx, cancel := f.c.opContext(ctx)
	defer cancel()
	frame := frameRecord(record)
	f.mu.Lock()
	index := f.appendIndex
	if size := f.size; index*f.chunkSize < size-f.chunkSize {
		index = (size - 1) / f.chunkSize
	}
	f.mu.Unlock()
	// One request id for all attempts in all chunks: a chunk that
	// answered full wrote nothing, and ids are remembered per chunk.
	req := &api.WriteRequest{Kind: api.UpdateKind_WRITE, Data: frame, Append: true,
		ClientId: f.c.clientID, RequestId: f.c.reqSeq.Add(1)}
	for {
		if index >= MaxFileSize/f.chunkSize {
			return 0, opError("append", f.path, detailf(ErrFileTooBig, "no chunk left"))
		}
		resp, err := f.update(ctx, index, req, true)
		if err != nil {
			return 0, opError("append", f.path, err)
		}
		if resp == nil {
			return 0, opError("append", f.path, errors.New("chunk not allocated"))
		}
		if resp.Full {
			index++
			continue
		}
		off := index*f.chunkSize + resp.Offset
		f.mu.Lock()
		f.appendIndex = max(f.appendIndex, index)
		f.size = max(f.size, off+int64(len(frame)))
		f.mu.Unlock()
		if err := f.flush(ctx); err != nil {
			return 0, err
		}
		return off, nil
	}
}

// Record is a record read back and the offset of its frame.
type Record struct {
	Offset int64
	Data   []byte
}

// ParseRecords returns the whole, verified records in b, the bytes of a
// file of chunkSize at offset base: frames do not cross a chunk's end,
// and zeros or bytes that are no frame are skipped. The records' data
// is b's.
func ParseRecords(b []byte, base, chunkSize int64) []Record {
	max := MaxRecordSize(chunkSize)
	var out []Record
	for pos := 0; pos < len(b); {
		off := base + int64(pos)
		end := min(len(b), pos+int((off/chunkSize+1)*chunkSize-off))
		rec, n, _ := parseRecord(b[pos:end], max)
		switch {
		case n > 0:
			out = append(out, Record{Offset: off, Data: rec})
			pos += n
		case b[pos] == 0:
			// A run of zeros: a chunk's unused end.
			if i := bytes.IndexFunc(b[pos:end], func(c rune) bool { return c != 0 }); i > 0 {
				pos += i
			} else {
				pos = end
			}
		default:
			// Not a frame (damage, or a frame cut by b's end): on to the
			// next "CREC" in the chunk.
			if i := bytes.Index(b[pos+1:end], recordMagic); i >= 0 {
				pos += 1 + i
			} else {
				pos = end
			}
		}
	}
	return out
}

// RecordReader reads the records of a file in offset order, a chunk at
// a time (ParseRecords).
type RecordReader struct {
	f       *File
	ctx     context.Context
	size    int64
	index   int64 // next chunk to read
	pending []Record
	buf     []byte
}

// Records returns a reader of the file's records as of now: the file is
// reloaded from the master (Reload) first. It holds a chunk in memory.
func (f *File) Records(ctx context.Context) (*RecordReader, error) {
	if err := f.Reload(ctx); err != nil {
		return nil, err
	}
	return &RecordReader{f: f, ctx: ctx, size: f.Size()}, nil
}

// Next returns the next record; io.EOF after the last. Its data is
// valid until the call after next chunk's read.
func (r *RecordReader) Next() (Record, error) {
	for len(r.pending) == 0 {
		off := r.index * r.f.chunkSize
		if off >= r.size {
			return Record{}, io.EOF
		}
		n := min(r.f.chunkSize, r.size-off)
		if int64(cap(r.buf)) < n {
			r.buf = make([]byte, n)
		}
		b := r.buf[:n]
		got, err := r.f.ReadAtContext(r.ctx, b, off)
		if err != nil && !(errors.Is(err, io.EOF) && int64(got) == n) {
			return Record{}, err
		}
		r.pending = ParseRecords(b, off, r.f.chunkSize)
		r.index++
	}
	rec := r.pending[0]
	r.pending = r.pending[1:]
	return rec, nil
}
