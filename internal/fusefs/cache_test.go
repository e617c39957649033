package fusefs_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/catena-io/catena/internal/fusefs"
)

// The sequences of issue 20, each of which the cache model of an open file
// (doc.go) once got wrong.

func wantSize(t *testing.T, f *os.File, want int64) {
	t.Helper()
	st, err := f.Stat()
	must(t, err)
	if st.Size() != want {
		t.Fatalf("fstat size %d, want %d", st.Size(), want)
	}
	st, err = os.Stat(f.Name())
	must(t, err)
	if st.Size() != want {
		t.Fatalf("stat size %d, want %d", st.Size(), want)
	}
	end, err := f.Seek(0, io.SeekEnd)
	must(t, err)
	if end != want {
		t.Fatalf("SEEK_END %d, want %d", end, want)
	}
}

// pwrite at X, ftruncate to S < X: the size is S at once, and an O_APPEND
// write and a fallocate extension start from S.
func TestTruncateBelowBufferedWrite(t *testing.T) {
	d := mount(t)
	p := filepath.Join(d, "f")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	must(t, err)
	defer f.Close()
	a, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	defer a.Close()
	_, err = f.WriteAt(bytes.Repeat([]byte{1}, 1000), 199_001)
	must(t, err)
	must(t, f.Truncate(1000))
	wantSize(t, f, 1000)
	_, err = a.Write([]byte("appended"))
	must(t, err)
	wantSize(t, f, 1008)
	// A fallocate extension below the old buffered end still extends.
	must(t, unix.Fallocate(int(f.Fd()), 0, 0, 5000))
	wantSize(t, f, 5000)
	must(t, f.Truncate(10))
	must(t, unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_ZERO_RANGE, 4, 100))
	wantSize(t, f, 104)
	got := make([]byte, 200)
	n, _ := f.ReadAt(got, 0)
	if n != 104 || !bytes.Equal(got[4:104], make([]byte, 100)) {
		t.Fatalf("after ZERO_RANGE: %d bytes %x", n, got[:n])
	}
	must(t, f.Close())
	must(t, a.Close())
	st, err := os.Stat(p)
	must(t, err)
	if st.Size() != 104 {
		t.Fatalf("stored size %d, want 104", st.Size())
	}
}

// pwrite at 0x34c2b, a pread at 0 (which fills the read-ahead from the
// replicas while the write is still buffered), fsync: a pread of the written
// range returns the new bytes, not the read-ahead's old ones.
func TestReadAheadAfterWriteBack(t *testing.T) {
	d := mount(t)
	p := filepath.Join(d, "f")
	old := make([]byte, 1<<20)
	rand.Read(old)
	must(t, os.WriteFile(p, old, 0o644))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	w := make([]byte, 20000)
	rand.Read(w)
	_, err = f.WriteAt(w, 0x34c2b)
	must(t, err)
	_, err = f.ReadAt(make([]byte, 4096), 0)
	must(t, err)
	must(t, f.Sync())
	// Drop the kernel's clean pages: the next read comes to the mount.
	must(t, unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED))
	got := make([]byte, len(w))
	_, err = f.ReadAt(got, 0x34c2b)
	must(t, err)
	if !bytes.Equal(got, w) {
		t.Fatal("read after write-back returned old bytes")
	}
}

// A write exactly as large as the write-back buffer, over bytes still in
// the buffer: it goes straight to the replicas, and the older buffered
// bytes must not be laid over it (on reads, or by a later flush).
func TestWriteOfBufferSizeOverBufferedBytes(t *testing.T) {
	const buf = 64 << 10
	d := mountConfig(t, fusefs.Config{WriteBuffer: buf})
	p := filepath.Join(d, "f")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	must(t, err)
	_, err = f.WriteAt(bytes.Repeat([]byte{1}, 4096), 0)
	must(t, err)
	want := bytes.Repeat([]byte{2}, buf)
	_, err = f.WriteAt(want, 0)
	must(t, err)
	got := make([]byte, buf)
	_, err = f.ReadAt(got, 0)
	must(t, err)
	if !bytes.Equal(got, want) {
		t.Fatal("read after the buffer-sized write returns older buffered bytes")
	}
	must(t, f.Close())
	got, err = os.ReadFile(p)
	must(t, err)
	if !bytes.Equal(got, want) {
		t.Fatal("after close, the older buffered bytes overwrote the buffer-sized write")
	}
}
