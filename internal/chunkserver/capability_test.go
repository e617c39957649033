package chunkserver

import (
	"bytes"
	"testing"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/rpcerr"
)

// TestCapabilities: Read and Write need the master's capability for that
// chunk, epoch and right, unexpired and signed with a key the server got
// from the master; a head creates a replica only from the chunk its
// capability names. Every refusal changes nothing.
func TestCapabilities(t *testing.T) {
	c := newBareCluster(t)
	head, tail := dialRaw(t, c.servers[0].Addr()), dialRaw(t, c.servers[2].Addr())
	spec := c.spec(0, 1, 2)
	good := testCapability(c.handle, 1, spec)
	sign := func(key auth.CapabilityKey, mod func(b *api.CapabilityBody)) *api.Capability {
		b := &api.CapabilityBody{Handle: c.handle, Epoch: 1, Rights: uint32(auth.RightRead | auth.RightWrite),
			ExpiresUnixMilli: time.Now().Add(time.Minute).UnixMilli(), ChunkSize: spec.ChunkSize}
		for _, ref := range spec.Chain {
			b.Chain = append(b.Chain, ref.Id)
		}
		mod(b)
		return auth.Sign(key, b)
	}
	forged := sign(testCapKey, func(*api.CapabilityBody) {})
	forged.Mac[0] ^= 1
	otherKey := auth.CapabilityKey{ID: 1, Secret: bytes.Repeat([]byte{8}, 32)}
	write := func(cap *api.Capability, sp *api.ReplicaSpec, data string) error {
		_, err := head.Write(ctxT(t), &api.WriteRequest{Handle: c.handle, Epoch: 1, Data: []byte(data),
			ClientId: 9, RequestId: uint64(len(data)), Create: sp, Capability: cap})
		return err
	}
	denied := []struct {
		name string
		cap  *api.Capability
		spec *api.ReplicaSpec
		code api.ErrorCode
	}{
		{"none", nil, spec, api.ErrorCode_PERMISSION_DENIED},
		{"forged signature", forged, spec, api.ErrorCode_PERMISSION_DENIED},
		{"signed with another secret", sign(otherKey, func(*api.CapabilityBody) {}), spec, api.ErrorCode_PERMISSION_DENIED},
		{"another chunk", sign(testCapKey, func(b *api.CapabilityBody) { b.Handle++ }), spec, api.ErrorCode_PERMISSION_DENIED},
		{"another epoch", sign(testCapKey, func(b *api.CapabilityBody) { b.Epoch = 2 }), spec, api.ErrorCode_PERMISSION_DENIED},
		{"read only", sign(testCapKey, func(b *api.CapabilityBody) { b.Rights = uint32(auth.RightRead) }), spec, api.ErrorCode_PERMISSION_DENIED},
		{"another chain", good, c.spec(0, 2), api.ErrorCode_PERMISSION_DENIED},
		{"expired", sign(testCapKey, func(b *api.CapabilityBody) {
			b.ExpiresUnixMilli = time.Now().Add(-auth.CapabilitySkew - time.Minute).UnixMilli()
		}), spec, api.ErrorCode_CAPABILITY_EXPIRED},
		{"unknown key", sign(auth.CapabilityKey{ID: 2, Secret: testCapKey.Secret}, func(*api.CapabilityBody) {}), spec, api.ErrorCode_CAPABILITY_EXPIRED},
	}
	for _, d := range denied {
		if err := write(d.cap, d.spec, "forged "+d.name); rpcerr.Code(err) != d.code {
			t.Errorf("write with %s: %v, want %v", d.name, err, d.code)
		}
	}
	for i := range c.servers {
		if c.hasReplica(i) {
			t.Fatalf("a refused write created a replica on server %d", i)
		}
	}
	if err := write(good, spec, "real"); err != nil {
		t.Fatal(err)
	}
	read := func(cap *api.Capability) ([]byte, error) {
		resp, err := tail.Read(ctxT(t), &api.ReadRequest{Handle: c.handle, Epoch: 1, Length: 4, Capability: cap})
		return resp.GetData(), err
	}
	for _, d := range denied[:6] { // a read-only capability reads
		if _, err := read(d.cap); err == nil {
			if d.name != "read only" {
				t.Errorf("read with %s served", d.name)
			}
		} else if d.name == "read only" || rpcerr.Code(err) != d.code {
			t.Errorf("read with %s: %v", d.name, err)
		}
	}
	if _, err := read(sign(testCapKey, func(b *api.CapabilityBody) { b.Rights = uint32(auth.RightWrite) })); rpcerr.Code(err) != api.ErrorCode_PERMISSION_DENIED {
		t.Errorf("read with a write-only capability: %v", err)
	}
	got, err := read(good)
	if err != nil || string(got) != "real" {
		t.Fatalf("read %q, %v; want the one real write", got, err)
	}
	c.checkIdentical(0, 1, 2)
}

// TestNoKeysNoIO: a server that has no capability keys from its master
// yet takes no client I/O (UNAVAILABLE, which clients retry).
func TestNoKeysNoIO(t *testing.T) {
	s := startServer(t, t.TempDir(), "127.0.0.1:1") // no master answers
	cl := dialRaw(t, s.Addr())
	_, err := cl.Read(ctxT(t), &api.ReadRequest{Handle: 1, Epoch: 1, Length: 1, Capability: testCapability(1, 1, nil)})
	if rpcerr.Code(err) != api.ErrorCode_UNAVAILABLE {
		t.Fatalf("read before any key: %v, want UNAVAILABLE", err)
	}
}
