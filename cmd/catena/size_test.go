package main

import (
	"errors"
	"strconv"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"4096", 4096},
		{"0", 0},
		{"64K", 64 << 10},
		{"16MiB", 16 << 20},
		{"64M", 64 << 20},
		{"64mb", 64 << 20},
		{"1GiB", 1 << 30},
		{"2 GiB", 2 << 30},
		{"1T", 1 << 40},
		{"12b", 12},
	} {
		got, err := parseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1.5G", "12X", "99999999999999999999", "9000000000T", "1 G B"} {
		if n, err := parseSize(bad); !errors.Is(err, errBadSize) {
			t.Errorf("parseSize(%q) = %d, %v; want errBadSize", bad, n, err)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1 KiB"},
		{1536, "1.5 KiB"},
		{64 << 20, "64 MiB"},
		{100 << 20, "100 MiB"},
		{3 << 30, "3 GiB"},
		{5 << 40, "5 TiB"},
	} {
		if got := formatSize(tc.in); got != tc.want {
			t.Errorf("formatSize(%d) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseSize: parseSize never panics, never returns a negative size, and
// a parsed size written as plain digits parses back to itself.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"4096", "16MiB", "64M", "1GiB", "", "1.5G", " 7 kb ", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil {
			if !errors.Is(err, errBadSize) {
				t.Fatalf("parseSize(%q): unexpected error %v", s, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("parseSize(%q) = %d < 0", s, n)
		}
		if back, err := parseSize(strconv.FormatInt(n, 10)); err != nil || back != n {
			t.Fatalf("parseSize(%d) = %d, %v", n, back, err)
		}
		_ = formatSize(n)
	})
}
