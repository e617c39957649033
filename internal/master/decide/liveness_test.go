package decide

import (
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const d = 1250 * time.Millisecond
	tests := []struct {
		name              string
		last, now, leader time.Time
		want              Liveness
	}{
		{"fresh heartbeat", t0, t0.Add(d / 2), t0.Add(-time.Hour), Alive},
		{"exactly lease plus drift: still alive", t0, t0.Add(d), t0.Add(-time.Hour), Alive},
		{"lease plus drift passed", t0, t0.Add(d + 1), t0.Add(-time.Hour), Dead},
		{"heard by a new leader: alive at once", t0, t0.Add(1), t0, Alive},
		{"never heard, new leader", time.Time{}, t0.Add(d), t0, Unknown},
		{"never heard, grace over", time.Time{}, t0.Add(d + 1), t0, Dead},
		{"silent, leader too new", t0, t0.Add(2 * d), t0.Add(d + 1), Unknown},
		{"silent, leader's grace over", t0, t0.Add(3 * d), t0.Add(d + 1), Dead},
	}
	for _, tt := range tests {
		if got := Classify(tt.last, tt.now, tt.leader, d); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLivenessString(t *testing.T) {
	for _, tt := range []struct {
		l    Liveness
		want string
	}{{Unknown, "unknown"}, {Alive, "alive"}, {Dead, "dead"}, {Liveness(9), "unknown"}} {
		if got := tt.l.String(); got != tt.want {
			t.Errorf("Liveness(%d) = %q, want %q", tt.l, got, tt.want)
		}
	}
}
