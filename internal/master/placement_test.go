package master

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func zone(z string) map[string]string { return map[string]string{DefaultDomainKey: z} }

func TestPlace(t *testing.T) {
	cases := []struct {
		name  string
		cands []Candidate
		n     int
		want  []uint64
	}{
		{"most free first", []Candidate{{ID: 1, Free: 10}, {ID: 2, Free: 30}, {ID: 3, Free: 20}, {ID: 4, Free: 5}}, 3, []uint64{2, 3, 1}},
		{"ties by id", []Candidate{{ID: 3, Free: 1}, {ID: 1, Free: 1}, {ID: 2, Free: 1}}, 2, []uint64{1, 2}},
		{"distinct zones beat free space",
			[]Candidate{{ID: 1, Free: 100, Labels: zone("a")}, {ID: 2, Free: 90, Labels: zone("a")}, {ID: 3, Free: 10, Labels: zone("b")}, {ID: 4, Free: 5, Labels: zone("c")}},
			3, []uint64{1, 3, 4}},
		{"reuse a zone only when needed",
			[]Candidate{{ID: 1, Free: 100, Labels: zone("a")}, {ID: 2, Free: 90, Labels: zone("a")}, {ID: 3, Free: 10, Labels: zone("b")}},
			3, []uint64{1, 3, 2}},
		{"unlabelled servers are their own domain",
			[]Candidate{{ID: 1, Free: 100}, {ID: 2, Free: 90}, {ID: 3, Free: 10, Labels: zone("a")}},
			2, []uint64{1, 2}},
		{"single replica", []Candidate{{ID: 7, Free: 1}}, 1, []uint64{7}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Place(c.cands, c.n, DefaultDomainKey)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestPlaceNotEnough(t *testing.T) {
	_, err := Place([]Candidate{{ID: 1}}, 3, DefaultDomainKey)
	if !errors.Is(err, ErrNoChunkservers) {
		t.Fatalf("err = %v", err)
	}
	if want := "need 3 chunkservers, 1 alive"; !strings.Contains(err.Error(), want) {
		t.Fatalf("message %q lacks %q", err, want)
	}
	if _, err := Place(nil, 0, DefaultDomainKey); err == nil {
		t.Fatal("placing 0 replicas succeeded")
	}
}
