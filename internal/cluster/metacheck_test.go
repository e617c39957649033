package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catena-io/catena/internal/meta"
)

// fakeMaster is a master as checkMasters reads it: a state (checkpoint
// bytes) at an applied index, a fsck verdict, and optionally a follower's
// lag: it reports the leader's index only after a few reads.
type fakeMaster struct {
	mu      sync.Mutex
	index   uint64
	snap    string
	fsck    error
	catchUp func(reads int) (uint64, string) // nil: stays as it is
	reads   int
}

func (f *fakeMaster) CheckState() error { return f.fsck }

func (f *fakeMaster) StateAt() (uint64, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.catchUp != nil {
		f.reads++
		f.index, f.snap = f.catchUp(f.reads)
	}
	return f.index, []byte(f.snap), nil
}

func TestCheckMasters(t *testing.T) {
	const state = `{"V":1,"NextInode":3,"Inodes":[{"ID":1,"Dir":true},{"ID":2,"Name":"f"}]}`
	const other = `{"V":1,"NextInode":3,"Inodes":[{"ID":1,"Dir":true},{"ID":2,"Name":"g"}]}`
	fsckErr := fmt.Errorf("%w: refcounts: chunk 1: refs 2, but 1 slots name it", meta.ErrInconsistent)
	cases := []struct {
		name string
		ms   []*fakeMaster
		want error  // nil, meta.ErrInconsistent or ErrMastersDiffer
		msg  string // in the error
	}{
		{"one master", []*fakeMaster{{index: 9, snap: state}}, nil, ""},
		{"the same state", []*fakeMaster{{index: 9, snap: state}, {index: 9, snap: state}, {index: 9, snap: state}}, nil, ""},
		{"a follower catches up", []*fakeMaster{{index: 9, snap: state}, {catchUp: func(reads int) (uint64, string) {
			if reads < 10 {
				return 7, other
			}
			return 9, state
		}}}, nil, ""},
		{"fsck fails", []*fakeMaster{{index: 9, snap: state}, {index: 9, snap: state, fsck: fsckErr}}, meta.ErrInconsistent,
			"cluster: master 1: meta: inconsistent state: refcounts: chunk 1"},
		{"states differ at one index", []*fakeMaster{{index: 9, snap: state}, {index: 9, snap: other}}, ErrMastersDiffer,
			`at applied index 9: master 0 and master 1: Inodes differ; Inodes: at byte 37: `},
		{"a follower never catches up", []*fakeMaster{{index: 9, snap: state}, {index: 7, snap: state}}, ErrMastersDiffer,
			"not at one applied index before the deadline (master 0: 9, master 1: 7)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			var ids []int
			var ms []masterState
			for i, m := range c.ms {
				ids, ms = append(ids, i), append(ms, m)
			}
			err := checkMasters(ctx, ids, ms)
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("checkMasters = %v\nwant %v with %q", err, c.want, c.msg)
			}
		})
	}
}
