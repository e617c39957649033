package chunkstore

import "testing"

func benchReplica(b *testing.B) *fileReplica {
	s := mustOpen(b, OSFS, b.TempDir())
	b.Cleanup(func() { s.Close() })
	return mustCreate(b, s, Meta{Handle: 1, ChunkSize: 64 << 20})
}

// BenchmarkWriteSync is one small durable write: 4 KiB + Sync.
func BenchmarkWriteSync(b *testing.B) {
	r := benchReplica(b)
	p := make([]byte, 4096)
	for i := range p {
		p[i] = byte(i)
	}
	b.SetBytes(int64(len(p)))
	var i int64
	for b.Loop() {
		off := (i * 4096) % (64 << 20)
		i++
		if err := r.WriteAt(p, off); err != nil {
			b.Fatal(err)
		}
		if err := r.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeqWrite1MiB is sequential 1 MiB writes, synced every 8 MiB.
func BenchmarkSeqWrite1MiB(b *testing.B) {
	r := benchReplica(b)
	p := make([]byte, 1<<20)
	for i := range p {
		p[i] = byte(i)
	}
	b.SetBytes(int64(len(p)))
	var i int64
	for b.Loop() {
		off := (i << 20) % (64 << 20)
		i++
		if err := r.WriteAt(p, off); err != nil {
			b.Fatal(err)
		}
		if i%8 == 0 {
			if err := r.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := r.Sync(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRead1MiB is verified 1 MiB reads.
func BenchmarkRead1MiB(b *testing.B) {
	r := benchReplica(b)
	p := make([]byte, 1<<20)
	if err := r.WriteAt(p, 0); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := r.ReadAt(p, 0); err != nil {
			b.Fatal(err)
		}
	}
}
