package client

// piece is one chunkserver request of a larger read or write: bytes
// [bufOff, bufOff+n) of the caller's buffer map to [chunkOff, chunkOff+n)
// of chunk index.
type piece struct {
	index    int64
	chunkOff int64
	bufOff   int
	n        int
}

// splitRange cuts the file range [off, off+n) at chunk boundaries and into
// pieces of at most maxIO bytes. Pieces come in file order and never cross a
// chunk boundary, because each chunk is a separate chain.
func splitRange(off int64, n int, chunkSize int64, maxIO int) []piece {
	if n <= 0 || chunkSize <= 0 || maxIO <= 0 {
		return nil
	}
	var out []piece
	bufOff := 0
	for bufOff < n {
		pos := off + int64(bufOff)
		index := pos / chunkSize
		chunkOff := pos % chunkSize
		size := int64(n - bufOff)
		if room := chunkSize - chunkOff; size > room {
			size = room
		}
		if size > int64(maxIO) {
			size = int64(maxIO)
		}
		out = append(out, piece{index: index, chunkOff: chunkOff, bufOff: bufOff, n: int(size)})
		bufOff += int(size)
	}
	return out
}
