package s3

import "testing"

func TestPartChunkSize(t *testing.T) {
	for _, c := range []struct{ n, want int64 }{
		// Not a multiple of 1 MiB: the smallest power of two holding it.
		{-1, 0}, {0, 1 << 20}, {1, 1 << 20}, {1<<20 + 1, 2 << 20}, {5_000_000, 8 << 20},
		{5<<20 + 64<<10, 8 << 20}, {3<<30 + 1, 1 << 30},
		// A multiple of 1 MiB: the largest power of two dividing it.
		{1 << 20, 1 << 20}, {5 << 20, 1 << 20}, {8 << 20, 8 << 20}, {15 << 20, 1 << 20},
		{16 << 20, 16 << 20}, {100 << 20, 4 << 20}, {528 << 20, 16 << 20},
		{1 << 30, 1 << 30}, {4 << 30, 1 << 30}, {5 << 30, 1 << 30},
	} {
		if got := partChunkSize(c.n); got != c.want {
			t.Errorf("partChunkSize(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// TestMovable: which part lists Complete moves rather than copies.
func TestMovable(t *testing.T) {
	const mib = 1 << 20
	p := func(size int64) part { return part{size: size, chunkSize: partChunkSize(size)} }
	cases := []struct {
		name     string
		parts    []part
		cs       int64
		copyLast bool
		ok       bool
	}{
		{"awscli: 8 MiB parts, a smaller last", []part{p(8 * mib), p(8 * mib), p(3 * mib)}, 8 * mib, true, true},
		{"minio-go: 16 MiB parts, a 16 MiB last", []part{p(16 * mib), p(16 * mib)}, 16 * mib, false, true},
		{"one part of any size", []part{p(5*mib + 3)}, 8 * mib, false, true},
		{"a last part larger than the others", []part{p(8 * mib), p(12 * mib)}, 8 * mib, true, true},
		{"a last part of 5 MiB after 8 MiB parts", []part{p(8 * mib), p(5 * mib)}, 8 * mib, true, true},
		{"a last part of 3.5 MiB after 8 MiB parts", []part{p(8 * mib), p(7 * mib / 2)}, 8 * mib, true, true},
		{"rclone: 5 MiB parts", []part{p(5 * mib), p(5 * mib), p(1 * mib)}, mib, false, true},
		{"rclone: 5 MiB parts, a last of 2.5 MiB", []part{p(5 * mib), p(5 * mib), p(5 * mib / 2)}, mib, true, true},
		{"s3cmd: 15 MiB parts", []part{p(15 * mib), p(15 * mib), p(3 * mib)}, mib, false, true},
		{"minio-go, a stream: 528 MiB parts", []part{p(528 * mib), p(528 * mib), p(7 * mib)}, 16 * mib, true, true},
		{"parts of 5,000,000 bytes", []part{p(5_000_000), p(5_000_000), p(100)}, 0, false, false},
		{"uneven parts", []part{p(8 * mib), p(16 * mib), p(1)}, 0, false, false},
		{"parts over 1 GiB, aligned", []part{p(2 << 30), p(2 << 30), p(1)}, 1 << 30, true, true},
		{"parts over 1 GiB, not aligned", []part{p(2<<30 + 100), p(1)}, 0, false, false},
		{"a part of unknown chunk size", []part{{size: 8 * mib}, p(1)}, 0, false, false},
	}
	for _, c := range cases {
		cs, copyLast, ok := movable(c.parts)
		if cs != c.cs || copyLast != c.copyLast || ok != c.ok {
			t.Errorf("%s: movable = %d %v %v, want %d %v %v", c.name, cs, copyLast, ok, c.cs, c.copyLast, c.ok)
		}
	}
}
