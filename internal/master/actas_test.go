package master

import (
	"slices"
	"testing"
)

func TestParseActAs(t *testing.T) {
	for _, c := range []struct {
		in     string
		ok     bool
		uid    uint32
		gid    uint32
		groups []uint32
		root   bool
	}{
		{"1000:100", true, 1000, 100, nil, false},
		{"0:0", true, 0, 0, nil, true},
		{"1000:100:5,6", true, 1000, 100, []uint32{5, 6}, false},
		{"1000:100:", true, 1000, 100, nil, false},
		{"1000", false, 0, 0, nil, false},
		{"", false, 0, 0, nil, false},
		{"a:b", false, 0, 0, nil, false},
		{"1:2:x", false, 0, 0, nil, false},
		{"4294967296:0", false, 0, 0, nil, false},
		{"-1:0", false, 0, 0, nil, false},
	} {
		u, ok := ParseActAs(c.in)
		if ok != c.ok || ok && (u.UID != c.uid || u.GID != c.gid || !slices.Equal(u.Groups, c.groups) || u.Root != c.root) {
			t.Errorf("ParseActAs(%q) = %+v, %v", c.in, u, ok)
		}
	}
}
