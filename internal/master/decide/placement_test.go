package decide

import (
	"errors"
	"slices"
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

// TestPlaceErrors: too few candidates is a *ShortageError with the counts
// (ErrNoChunkservers); fewer than one replica is ErrInvalid.
func TestPlaceErrors(t *testing.T) {
	tests := []struct {
		name     string
		cands    []Candidate
		n        int
		want     error
		shortage *ShortageError // nil: not a shortage
	}{
		{"one candidate for three", []Candidate{{ID: 1}}, 3, ErrNoChunkservers, &ShortageError{Need: 3, Alive: 1}},
		{"none for one", nil, 1, ErrNoChunkservers, &ShortageError{Need: 1, Alive: 0}},
		{"zero replicas", []Candidate{{ID: 1}}, 0, ErrInvalid, nil},
		{"negative replicas", nil, -1, ErrInvalid, nil},
	}
	for _, tt := range tests {
		chain, err := Place(tt.cands, tt.n, DefaultDomainKey)
		if !errors.Is(err, tt.want) || chain != nil {
			t.Errorf("%s: %v %v, want %v", tt.name, chain, err, tt.want)
			continue
		}
		var se *ShortageError
		switch {
		case errors.As(err, &se) != (tt.shortage != nil):
			t.Errorf("%s: %v: shortage %v, want %v", tt.name, err, se, tt.shortage)
		case se != nil && *se != *tt.shortage:
			t.Errorf("%s: shortage %+v, want %+v", tt.name, *se, *tt.shortage)
		}
	}
	err := &ShortageError{Need: 3, Alive: 1}
	if want := "decide: not enough chunkservers: need 3 chunkservers, 1 alive"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

// TestRotateHead: the k-th placement's chain is led by its k-th member
// (mod its length), the members unchanged; over n placements of the
// same members each leads once.
func TestRotateHead(t *testing.T) {
	chain := []uint64{4, 2, 1}
	for k, want := range [][]uint64{{4, 2, 1}, {2, 1, 4}, {1, 4, 2}, {4, 2, 1}} {
		if got := RotateHead(chain, uint64(k)); !slices.Equal(got, want) {
			t.Errorf("RotateHead(%v, %d) = %v, want %v", chain, k, got, want)
		}
	}
	if !slices.Equal(chain, []uint64{4, 2, 1}) {
		t.Fatalf("the input changed: %v", chain)
	}
	heads := map[uint64]int{}
	for k := range uint64(30) {
		heads[RotateHead(chain, k)[0]]++
	}
	if heads[4] != 10 || heads[2] != 10 || heads[1] != 10 {
		t.Fatalf("heads over 30 placements: %v", heads)
	}
	if got := RotateHead(nil, 5); len(got) != 0 {
		t.Fatalf("empty chain: %v", got)
	}
}
