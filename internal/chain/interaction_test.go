package chain

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestInteraction runs the transcripts in testdata. Regenerate with
// go test ./internal/chain -run TestInteraction -rewrite, then review the diff.
//
// Commands:
//
//	new self=1,2,3 chain=1,2,3 epoch=1 [applied=0] [reloaded] [size=N]
//	propose node=1 req=7/1 off=0 (data=hello | zero=N) [epoch=E] [nolease]
//	read node=N [epoch=E] [nolease]    AdmitRead: the seq to wait for, or the refusal
//	settled [node=N] [epoch=E]  AdmitSettled: may the replica be cloned or diffed
//	lease grant sent=T ms=D | lease check now=T    the server lease (times in ms)
//	fence node=N epoch=E        Fence(E)
//	fail node=N                 Fail()
//	tick [node=N] [n=K]         K ticks of the watchdogs
//	reconnect node=N peer=P     PeerReconnected(P)
//	catchup-target node=N       CatchUpTarget()
//	catchup-check node=N seq=S [epoch=E] [from=P]   CheckCatchUp of a copy at S fetched at epoch E from P
//	catchup node=N seq=S [epoch=E] [source=P]  InstallCatchUp(E, S, nil), then P's request ids
//	resync node=N chain=... epoch=E   Resync(cfg)
//	copy node=N seq=S epoch=E [source=P]   InstallCopy(E, S, nil), then P's request ids
//	since node=N epoch=E seq=S  Since(E, S)
//	ready [node=N]              take, print and carry out each Ready (queue messages, record applies)
//	persist node=N [seq=S]      Persisted(S); S defaults to the last seq the node was handed
//	deliver [from=N] [to=N] [n=K] [drop] [reorder] [dup]
//	                            (reorder: newest first; dup: each twice)
//	net                         print queued messages
//	reconfigure node=1,2 chain=1,3 epoch=2
//	resend node=N
//	status [node=N]
//	log [node=N]                the updates each node was handed in Apply
//	step from=1 to=3 [epoch=E] (update=S [start] | ack=S)   inject a message (start: an epoch start)
//	stabilize                   ready, persist everything, deliver everything, until quiet
func TestInteraction(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		e := newEnv()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return e.handle(t, d)
		})
	})
}

type env struct {
	nodes map[NodeID]*Node
	net   []Message
	log   map[NodeID][]Update // what each node was handed in Apply, in order
	lease Lease
}

// ms is a time in milliseconds since the transcript's origin.
func ms(v uint64) time.Time { return time.Unix(0, 0).Add(time.Duration(v) * time.Millisecond) }

func newEnv() *env {
	return &env{nodes: map[NodeID]*Node{}, log: map[NodeID][]Update{}}
}

func (e *env) ids() []NodeID {
	var ids []NodeID
	for id := range e.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func argIDs(t *testing.T, d *datadriven.TestData, key string) []NodeID {
	arg, ok := d.Arg(key)
	if !ok {
		return nil
	}
	var ids []NodeID
	for _, v := range arg.Vals {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			x, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				d.Fatalf(t, "bad %s: %v", key, err)
			}
			ids = append(ids, NodeID(x))
		}
	}
	return ids
}

func argUint(t *testing.T, d *datadriven.TestData, key string, def uint64) uint64 {
	if !d.HasArg(key) {
		return def
	}
	var x uint64
	d.ScanArgs(t, key, &x)
	return x
}

// nodesArg returns the nodes named by node=, or all nodes.
func (e *env) nodesArg(t *testing.T, d *datadriven.TestData) []NodeID {
	ids := argIDs(t, d, "node")
	if ids == nil {
		return e.ids()
	}
	for _, id := range ids {
		if e.nodes[id] == nil {
			d.Fatalf(t, "no node %d", id)
		}
	}
	return ids
}

// rememberFrom gives n the request ids of the source named by
// source=N, as a catch-up's or copy's last message does.
func (e *env) rememberFrom(t *testing.T, d *datadriven.TestData, n *Node) {
	if src := argIDs(t, d, "source"); src != nil {
		n.RememberRequests(e.nodes[src[0]].Requests())
	}
}

func (e *env) handle(t *testing.T, d *datadriven.TestData) string {
	var b strings.Builder
	switch d.Cmd {
	case "new":
		cfg := Config{Epoch: argUint(t, d, "epoch", 1), Chain: argIDs(t, d, "chain")}
		st := Start{Applied: argUint(t, d, "applied", 0), Reloaded: d.HasArg("reloaded"), Size: int64(argUint(t, d, "size", 0))}
		if st.Applied > 0 {
			st.AppliedEpoch = cfg.Epoch
		}
		for _, id := range argIDs(t, d, "self") {
			e.nodes[id] = NewNode(id, cfg, st)
			e.log[id] = nil
			fmt.Fprintf(&b, "%d: %s", id, e.nodes[id].Role())
			if e.nodes[id].Fenced() {
				b.WriteString(" fenced")
			}
			b.WriteString("\n")
		}
	case "propose":
		id := argIDs(t, d, "node")[0]
		n := e.nodes[id]
		w := ClientWrite{Epoch: argUint(t, d, "epoch", n.Config().Epoch), Leased: !d.HasArg("nolease")}
		var req string
		d.ScanArgs(t, "req", &req)
		c, s, _ := strings.Cut(req, "/")
		w.Req.Client, _ = strconv.ParseUint(c, 10, 64)
		w.Req.Seq, _ = strconv.ParseUint(s, 10, 64)
		w.Offset = int64(argUint(t, d, "off", 0))
		if d.HasArg("zero") {
			w.Kind, w.Length = KindZero, int64(argUint(t, d, "zero", 0))
		} else {
			var data string
			d.ScanArgs(t, "data", &data)
			w.Kind, w.Data = KindWrite, []byte(data)
		}
		if err := n.Propose(w); err != nil {
			fmt.Fprintf(&b, "error: %v\n", err)
		} else {
			b.WriteString("ok\n")
		}
	case "damage":
		// damage node=N ranges=OFF+LEN,...: the replica's unverifiable
		// ranges (none: ranges=).
		n := e.nodes[argIDs(t, d, "node")[0]]
		var spec string
		d.ScanArgs(t, "ranges", &spec)
		var rs []Range
		for _, p := range strings.Split(spec, ",") {
			if p == "" {
				continue
			}
			o, l, _ := strings.Cut(p, "+")
			off, err1 := strconv.ParseInt(o, 10, 64)
			n, err2 := strconv.ParseInt(l, 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("bad range %q", p)
			}
			rs = append(rs, Range{Off: off, Len: n})
		}
		n.SetDamaged(rs)
		b.WriteString("ok\n")
	case "ready":
		for _, id := range e.nodesArg(t, d) {
			e.ready(t, id, &b)
		}
		if b.Len() == 0 {
			b.WriteString("<empty>\n")
		}
	case "persist":
		for _, id := range e.nodesArg(t, d) {
			e.nodes[id].Persisted(argUint(t, d, "seq", e.lastHanded(id)))
			e.status(id, &b)
		}
	case "deliver":
		e.deliver(t, d, &b)
	case "net":
		for _, m := range e.net {
			fmt.Fprintf(&b, "%s\n", fmtMsg(m))
		}
		if b.Len() == 0 {
			b.WriteString("<empty>\n")
		}
	case "reconfigure":
		cfg := Config{Epoch: argUint(t, d, "epoch", 0), Chain: argIDs(t, d, "chain")}
		for _, id := range e.nodesArg(t, d) {
			e.nodes[id].Reconfigure(cfg)
			fmt.Fprintf(&b, "%d: %s epoch=%d\n", id, e.nodes[id].Role(), e.nodes[id].Config().Epoch)
		}
	case "clone":
		// Each node named makes a clone of its replica (as a chunkserver's
		// CloneReplica: settled, so all it holds is committed) and serves
		// the clone, in configuration epoch= chain=, from then on.
		cfg := Config{Epoch: argUint(t, d, "epoch", 0), Chain: argIDs(t, d, "chain")}
		for _, id := range e.nodesArg(t, d) {
			n := e.nodes[id]
			if err := n.AdmitSettled(n.Config().Epoch); err != nil {
				d.Fatalf(t, "node %d: %v", id, err)
			}
			st := n.Status()
			e.nodes[id] = NewNode(id, cfg, Start{Applied: st.Applied, AppliedEpoch: st.AppliedEpoch, Size: n.size,
				Committed: true, Requests: n.Requests()})
			fmt.Fprintf(&b, "%d: %s epoch=%d remembers %d\n", id, e.nodes[id].Role(), cfg.Epoch, len(e.nodes[id].Requests()))
		}
	case "catchup":
		for _, id := range e.nodesArg(t, d) {
			n := e.nodes[id]
			n.InstallCatchUp(argUint(t, d, "epoch", n.Config().Epoch), argUint(t, d, "seq", 0), nil)
			e.rememberFrom(t, d, n)
			e.status(id, &b)
		}
	case "catchup-target":
		for _, id := range e.nodesArg(t, d) {
			if c, ok := e.nodes[id].CatchUpTarget(); ok {
				fmt.Fprintf(&b, "%d: fetch from %d since e%d/s%d at epoch %d\n", id, c.From, c.SinceEpoch, c.SinceSeq, c.Epoch)
			} else {
				fmt.Fprintf(&b, "%d: nothing to catch up\n", id)
			}
		}
	case "catchup-check":
		n := e.nodes[argIDs(t, d, "node")[0]]
		target := CatchUp{From: n.Predecessor(), Epoch: n.Config().Epoch}
		if from := argIDs(t, d, "from"); from != nil {
			target.From = from[0]
		}
		target.Epoch = argUint(t, d, "epoch", target.Epoch)
		switch v := n.CheckCatchUp(target, argUint(t, d, "seq", 0)); v {
		case CatchUpRetry:
			b.WriteString("retry\n")
		case CatchUpInstall:
			b.WriteString("install\n")
		case CatchUpDone:
			b.WriteString("done\n")
		default:
			fmt.Fprintf(&b, "verdict %d\n", v)
		}
	case "read":
		n := e.nodes[argIDs(t, d, "node")[0]]
		wait, err := n.AdmitRead(ReadRequest{Epoch: argUint(t, d, "epoch", n.Config().Epoch), Leased: !d.HasArg("nolease")})
		if err != nil {
			fmt.Fprintf(&b, "error: %v\n", err)
		} else {
			fmt.Fprintf(&b, "ok: wait for seq %d (persisted %d)\n", wait, n.Status().Persisted)
		}
	case "settled":
		for _, id := range e.nodesArg(t, d) {
			n := e.nodes[id]
			if err := n.AdmitSettled(argUint(t, d, "epoch", n.Config().Epoch)); err != nil {
				fmt.Fprintf(&b, "%d: %v\n", id, err)
			} else {
				fmt.Fprintf(&b, "%d: settled\n", id)
			}
		}
	case "lease":
		switch {
		case d.HasArg("sent"):
			e.lease.Grant(ms(argUint(t, d, "sent", 0)), time.Duration(argUint(t, d, "ms", 0))*time.Millisecond)
			fmt.Fprintf(&b, "until %d\n", e.lease.Until().Sub(ms(0)).Milliseconds())
		default:
			fmt.Fprintf(&b, "valid=%t\n", e.lease.Valid(ms(argUint(t, d, "now", 0))))
		}
	case "fence":
		for _, id := range e.nodesArg(t, d) {
			became := e.nodes[id].Fence(argUint(t, d, "epoch", 0))
			fmt.Fprintf(&b, "%d: fenced=%t (newly %t)\n", id, e.nodes[id].Fenced(), became)
		}
	case "fail":
		for _, id := range e.nodesArg(t, d) {
			e.nodes[id].Fail()
			e.status(id, &b)
		}
	case "tick":
		for range argUint(t, d, "n", 1) {
			for _, id := range e.nodesArg(t, d) {
				e.nodes[id].Tick()
			}
		}
		b.WriteString("ok\n")
	case "reconnect":
		for _, id := range e.nodesArg(t, d) {
			e.nodes[id].PeerReconnected(argIDs(t, d, "peer")[0])
		}
		b.WriteString("ok\n")
	case "resync":
		cfg := Config{Epoch: argUint(t, d, "epoch", 0), Chain: argIDs(t, d, "chain")}
		for _, id := range e.nodesArg(t, d) {
			e.nodes[id].Resync(cfg)
			e.status(id, &b)
		}
	case "copy":
		for _, id := range e.nodesArg(t, d) {
			e.nodes[id].InstallCopy(argUint(t, d, "epoch", 0), argUint(t, d, "seq", 0), nil)
			e.rememberFrom(t, d, e.nodes[id])
			e.log[id] = nil
			e.status(id, &b)
		}
	case "since":
		n := e.nodes[argIDs(t, d, "node")[0]]
		rs, ok := n.Since(argUint(t, d, "epoch", 0), argUint(t, d, "seq", 0))
		fmt.Fprintf(&b, "%v %t\n", rs, ok)
	case "resend":
		for _, id := range e.nodesArg(t, d) {
			e.nodes[id].ResendSent()
		}
		b.WriteString("ok\n")
	case "status":
		for _, id := range e.nodesArg(t, d) {
			e.status(id, &b)
		}
	case "log":
		for _, id := range e.nodesArg(t, d) {
			fmt.Fprintf(&b, "%d:", id)
			for _, u := range e.log[id] {
				fmt.Fprintf(&b, " e%d/s%d(%d/%d)", u.Epoch, u.Seq, u.Req.Client, u.Req.Seq)
			}
			b.WriteString("\n")
		}
	case "stabilize":
		e.stabilize(t, &b)
	case "step":
		m := Message{From: argIDs(t, d, "from")[0], To: argIDs(t, d, "to")[0]}
		m.Epoch = argUint(t, d, "epoch", e.nodes[m.To].Config().Epoch)
		if d.HasArg("ack") {
			m.Type, m.Seq = MsgAck, argUint(t, d, "ack", 0)
		} else {
			seq := argUint(t, d, "update", 0)
			m.Type = MsgUpdate
			m.Update = Update{Epoch: m.Epoch, Seq: seq, Kind: KindWrite, Length: 1, Data: []byte("?")}
			if d.HasArg("start") { // the head's epoch start: empty
				m.Update = Update{Epoch: m.Epoch, Seq: seq, Kind: KindZero}
			}
		}
		fmt.Fprintf(&b, "%s", fmtMsg(m))
		if err := e.nodes[m.To].Step(m); err != nil {
			fmt.Fprintf(&b, " -> %v", err)
		}
		b.WriteString("\n")
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	return b.String()
}

func (e *env) lastHanded(id NodeID) uint64 {
	l := e.log[id]
	if len(l) == 0 {
		return 0
	}
	return l[len(l)-1].Seq
}

func (e *env) status(id NodeID, b *strings.Builder) {
	n := e.nodes[id]
	s := n.Status()
	fmt.Fprintf(b, "%d: %s epoch=%d applied=%d persisted=%d acked=%d sent=%d pending=%d",
		id, n.Role(), s.Epoch, s.Applied, s.Persisted, s.Acked, s.SentLen, s.Pending)
	if s.NextPending != 0 {
		fmt.Fprintf(b, " next=%d", s.NextPending)
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{s.Fenced, "fenced"}, {s.Rejoining, "rejoining"}, {s.CatchingUp, "catching-up"}, {s.Failed, "failed"}} {
		if f.on {
			b.WriteString(" " + f.name)
		}
	}
	b.WriteString("\n")
}

// ready takes node id's Ready, prints it and carries it out. It reports
// whether the batch held anything.
func (e *env) ready(t *testing.T, id NodeID, b *strings.Builder) bool {
	rd := e.nodes[id].Ready()
	if rd.Empty() {
		return false
	}
	fmt.Fprintf(b, "%d ready:\n", id)
	for _, m := range rd.Messages {
		fmt.Fprintf(b, "  send %s\n", fmtMsg(m))
		e.net = append(e.net, m)
	}
	for _, u := range rd.Apply {
		fmt.Fprintf(b, "  apply %s\n", fmtUpdate(u))
		if last := e.lastHanded(id); u.Seq != last+1 && len(e.log[id]) > 0 {
			t.Fatalf("node %d handed seq %d after %d", id, u.Seq, last)
		}
		e.log[id] = append(e.log[id], u)
	}
	for _, r := range rd.Replies {
		fmt.Fprintf(b, "  reply req=%d/%d seq=%d", r.Req.Client, r.Req.Seq, r.Seq)
		if r.Offset != 0 {
			fmt.Fprintf(b, " off=%d", r.Offset)
		}
		b.WriteString("\n")
	}
	for _, r := range rd.Abandoned {
		fmt.Fprintf(b, "  abandon req=%d/%d seq=%d\n", r.Req.Client, r.Req.Seq, r.Seq)
	}
	if rd.CatchUp {
		b.WriteString("  catch up\n")
	}
	return true
}

func (e *env) deliver(t *testing.T, d *datadriven.TestData, b *strings.Builder) {
	from, to := argIDs(t, d, "from"), argIDs(t, d, "to")
	limit := int(argUint(t, d, "n", uint64(len(e.net))))
	var match, keep []Message
	for _, m := range e.net {
		if (from == nil || slices.Contains(from, m.From)) && (to == nil || slices.Contains(to, m.To)) {
			match = append(match, m)
		} else {
			keep = append(keep, m)
		}
	}
	if d.HasArg("reorder") {
		slices.Reverse(match)
	}
	take := match[:min(limit, len(match))]
	rest := slices.Clone(match[len(take):])
	if d.HasArg("reorder") {
		slices.Reverse(rest)
	}
	// Messages not taken go back to the queue; order among different
	// links does not matter, order within one is kept.
	e.net = append(keep, rest...)
	for _, m := range take {
		if d.HasArg("drop") {
			fmt.Fprintf(b, "drop %s\n", fmtMsg(m))
			continue
		}
		times := 1
		if d.HasArg("dup") {
			times = 2
		}
		for range times {
			fmt.Fprintf(b, "%s", fmtMsg(m))
			if n := e.nodes[m.To]; n == nil {
				b.WriteString(" (no such node)")
			} else if err := n.Step(m); err != nil {
				fmt.Fprintf(b, " -> %v", err)
			}
			b.WriteString("\n")
		}
	}
	if len(take) == 0 {
		b.WriteString("<nothing>\n")
	}
}

func (e *env) stabilize(t *testing.T, b *strings.Builder) {
	for round := 0; ; round++ {
		if round > 100 {
			t.Fatal("stabilize: no quiescence after 100 rounds")
		}
		active := false
		for _, id := range e.ids() {
			active = e.ready(t, id, b) || active
		}
		for _, id := range e.ids() {
			n := e.nodes[id]
			if last := e.lastHanded(id); n.Status().Persisted < last {
				fmt.Fprintf(b, "%d persist %d\n", id, last)
				n.Persisted(last)
				active = true
			}
		}
		if !active && len(e.net) == 0 {
			return
		}
		msgs := e.net
		e.net = nil
		for _, m := range msgs {
			fmt.Fprintf(b, "%s", fmtMsg(m))
			if n := e.nodes[m.To]; n == nil {
				b.WriteString(" (no such node)")
			} else if err := n.Step(m); err != nil {
				fmt.Fprintf(b, " -> %v", err)
			}
			b.WriteString("\n")
		}
	}
}

func fmtMsg(m Message) string {
	switch m.Type {
	case MsgUpdate:
		return fmt.Sprintf("%d->%d e%d update %s", m.From, m.To, m.Epoch, fmtUpdate(m.Update))
	case MsgAck:
		return fmt.Sprintf("%d->%d e%d ack %d", m.From, m.To, m.Epoch, m.Seq)
	}
	return fmt.Sprintf("%d->%d e%d type=%d", m.From, m.To, m.Epoch, m.Type)
}

func fmtUpdate(u Update) string {
	switch u.Kind {
	case KindWrite:
		return fmt.Sprintf("e%d/s%d req=%d/%d write@%d %q", u.Epoch, u.Seq, u.Req.Client, u.Req.Seq, u.Offset, u.Data)
	case KindZero:
		return fmt.Sprintf("e%d/s%d req=%d/%d zero@%d+%d", u.Epoch, u.Seq, u.Req.Client, u.Req.Seq, u.Offset, u.Length)
	}
	return fmt.Sprintf("e%d/s%d req=%d/%d kind=%d", u.Epoch, u.Seq, u.Req.Client, u.Req.Seq, u.Kind)
}
