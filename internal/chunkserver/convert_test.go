package chunkserver

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chain"
)

func TestMessageRoundTrip(t *testing.T) {
	msgs := []chain.Message{
		{Type: chain.MsgUpdate, From: 3, To: 9, Epoch: 4, Update: chain.Update{
			Epoch: 3, Seq: 17, Kind: chain.KindWrite, Offset: 4096, Length: 3, Data: []byte("abc"),
			Req: chain.RequestID{Client: 5, Seq: 6},
		}},
		{Type: chain.MsgUpdate, From: 3, To: 9, Epoch: 4, Update: chain.Update{
			Epoch: 4, Seq: 18, Kind: chain.KindZero, Offset: 0, Length: 1 << 20, Req: chain.RequestID{Client: 5, Seq: 7},
		}},
		{Type: chain.MsgAck, From: 3, To: 9, Epoch: 4, Seq: 18},
	}
	for _, m := range msgs {
		wire, err := proto.Marshal(messageToAPI(42, m))
		if err != nil {
			t.Fatal(err)
		}
		var in api.ChainMessage
		if err := proto.Unmarshal(wire, &in); err != nil {
			t.Fatal(err)
		}
		h, got, err := messageFromAPI(9, &in)
		if err != nil {
			t.Fatal(err)
		}
		if h != 42 {
			t.Fatalf("handle %d", h)
		}
		if got.Type != m.Type || got.From != m.From || got.To != m.To || got.Epoch != m.Epoch || got.Seq != m.Seq ||
			got.Update.Epoch != m.Update.Epoch || got.Update.Seq != m.Update.Seq || got.Update.Kind != m.Update.Kind ||
			got.Update.Offset != m.Update.Offset || got.Update.Length != m.Update.Length || got.Update.Req != m.Update.Req ||
			!bytes.Equal(got.Update.Data, m.Update.Data) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
		}
	}
	for _, bad := range []*api.ChainMessage{
		{},
		{From: 1},
		{From: 1, Msg: &api.ChainMessage_Update{Update: &api.Update{Seq: 1}}},
		{From: 1, Msg: &api.ChainMessage_Update{Update: &api.Update{Seq: 1, Kind: api.UpdateKind_ZERO, Data: []byte("x")}}},
		{From: 1, Msg: &api.ChainMessage_Update{Update: &api.Update{Seq: 1, Kind: api.UpdateKind_WRITE, Offset: -1}}},
		{From: 1, Msg: &api.ChainMessage_Update{Update: &api.Update{Seq: 0, Kind: api.UpdateKind_WRITE}}},
	} {
		if _, _, err := messageFromAPI(9, bad); err == nil {
			t.Fatalf("accepted malformed message %v", bad)
		}
	}
}

// FuzzMessageFromAPI decodes arbitrary wire bytes as a chain message: it
// never panics, and whatever it accepts is well formed and re-encodes to
// the same message.
func FuzzMessageFromAPI(f *testing.F) {
	for _, m := range []chain.Message{
		{Type: chain.MsgUpdate, From: 1, Epoch: 2, Update: chain.Update{Epoch: 2, Seq: 1, Kind: chain.KindWrite, Offset: 5, Length: 2, Data: []byte("hi")}},
		{Type: chain.MsgUpdate, From: 1, Epoch: 2, Update: chain.Update{Epoch: 2, Seq: 1, Kind: chain.KindZero, Length: 10}},
		{Type: chain.MsgAck, From: 1, Epoch: 2, Seq: 9},
	} {
		b, _ := proto.Marshal(messageToAPI(3, m))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var in api.ChainMessage
		if proto.Unmarshal(b, &in) != nil {
			return
		}
		h, m, err := messageFromAPI(7, &in)
		if err != nil {
			return
		}
		if m.From == 0 || m.To != 7 {
			t.Fatalf("bad ids: %+v", m)
		}
		switch m.Type {
		case chain.MsgUpdate:
			u := m.Update
			if u.Seq == 0 || u.Offset < 0 || u.Length < 0 || u.Offset > maxChunkSize || u.Length > maxChunkSize {
				t.Fatalf("accepted bad update %+v", u)
			}
			if u.Kind == chain.KindWrite && u.Length != int64(len(u.Data)) {
				t.Fatalf("write length %d, data %d", u.Length, len(u.Data))
			}
			if u.Kind != chain.KindWrite && (u.Kind != chain.KindZero || len(u.Data) != 0) {
				t.Fatalf("accepted bad kind %+v", u)
			}
		case chain.MsgAck:
		default:
			t.Fatalf("type %d", m.Type)
		}
		h2, m2, err := messageFromAPI(7, messageToAPI(h, m))
		if err != nil || h2 != h || m2.Type != m.Type || m2.Seq != m.Seq || m2.Update.Seq != m.Update.Seq ||
			m2.Update.Length != m.Update.Length || !bytes.Equal(m2.Update.Data, m.Update.Data) {
			t.Fatalf("re-encode: %v %+v vs %+v", err, m2, m)
		}
	})
}

// FuzzParseServerID: the server-id decoder accepts exactly the non-zero
// decimal ids, which it round-trips.
func FuzzParseServerID(f *testing.F) {
	for _, s := range []string{"1\n", "0", "18446744073709551615", "", " 12 ", "x", "-1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := parseServerID(b)
		if err != nil {
			return
		}
		if id == 0 {
			t.Fatal("accepted id 0")
		}
		again, err := parseServerID([]byte(uintString(uint64(id))))
		if err != nil || again != id {
			t.Fatalf("round trip %d: %d %v", id, again, err)
		}
	})
}

func uintString(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
