package decide

import (
	"testing"
	"time"
)

func TestWriter(t *testing.T) {
	const lease = 30 * time.Second
	for _, c := range []struct {
		name string
		ask  WriterAsk
		want WriterVerdict
	}{
		{"no session", WriterAsk{Asker: "nbd@a"}, WriterNew},
		{"no session, anonymous", WriterAsk{}, WriterNew},
		{"the same identity joins", WriterAsk{Session: "s", Owner: "nbd@a", Asker: "nbd@a", Lease: lease}, WriterJoin},
		{"the same identity joins a lapsed session", WriterAsk{Session: "s", Owner: "nbd@a", Asker: "nbd@a", SinceRenewal: time.Hour, Lease: lease}, WriterJoin},
		{"the same identity taking over still joins", WriterAsk{Session: "s", Owner: "nbd@a", Asker: "nbd@a", TakeOver: true, Lease: lease}, WriterJoin},
		{"another identity is refused", WriterAsk{Session: "s", Owner: "nbd@a", Asker: "nbd@b", SinceRenewal: time.Second, Lease: lease}, WriterRefuse},
		{"anonymous never joins an anonymous session", WriterAsk{Session: "s", SinceRenewal: time.Second, Lease: lease}, WriterRefuse},
		{"renewed exactly a lease ago: still held", WriterAsk{Session: "s", Owner: "nbd@a", Asker: "nbd@b", SinceRenewal: lease, Lease: lease}, WriterRefuse},
		{"lapsed: replaced", WriterAsk{Session: "s", Owner: "nbd@a", Asker: "nbd@b", SinceRenewal: lease + time.Millisecond, Lease: lease}, WriterNew},
		{"take-over replaces a live session", WriterAsk{Session: "s", Owner: "nbd@a", Asker: "nbd@b", TakeOver: true, SinceRenewal: time.Second, Lease: lease}, WriterNew},
	} {
		if got := Writer(c.ask); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
