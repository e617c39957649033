package cluster

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseReplicaName(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    uint64
		ok   bool
	}{
		{"0000000000000001.chunk", 1, true},
		{"ffffffffffffffff.chunk", ^uint64(0), true},
		{"00000000000000ab.chunk", 0xab, true},
		{"1.chunk", 0, false},
		{"000000000000000g.chunk", 0, false},
		{"0000000000000001.tmp", 0, false},
		{"0000000000000001", 0, false},
		{"", 0, false},
	} {
		h, ok := parseReplicaName(tc.name)
		if h != tc.h || ok != tc.ok {
			t.Errorf("parseReplicaName(%q) = %d, %v; want %d, %v", tc.name, h, ok, tc.h, tc.ok)
		}
	}
}

func FuzzParseReplicaName(f *testing.F) {
	f.Add("0000000000000001.chunk")
	f.Add("+000000000000001.chunk")
	f.Add("x.chunk")
	f.Fuzz(func(t *testing.T, name string) {
		h, ok := parseReplicaName(name)
		if !ok {
			return
		}
		// Every accepted name is its handle's name, up to hex digit case.
		if want := fmt.Sprintf("%016x.chunk", h); strings.ToLower(name) != want {
			t.Fatalf("%q decoded to handle %d, whose name is %q", name, h, want)
		}
	})
}
