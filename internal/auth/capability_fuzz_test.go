package auth

import (
	"bytes"
	"testing"
	"time"

	"github.com/catena-io/catena/api"
)

// FuzzCapabilityCheck: a capability of any bytes (from a client) is
// refused or taken, never a panic; one taken was signed with the ring's
// key for exactly the chunk, epoch and rights asked, and is unexpired.
func FuzzCapabilityCheck(f *testing.F) {
	key := CapabilityKey{ID: 1, Secret: bytes.Repeat([]byte{3}, keySize)}
	var ring Keyring
	ring.Set([]*api.CapabilityKey{{Id: key.ID, Secret: key.Secret}})
	now := time.UnixMilli(1_800_000_000_000)
	good := Sign(key, &api.CapabilityBody{Handle: 7, Epoch: 2, Rights: uint32(RightRead | RightWrite),
		ExpiresUnixMilli: now.Add(time.Minute).UnixMilli(), ChunkSize: 1 << 20, Chain: []uint64{1, 2}})
	f.Add(good.Body, good.Mac, uint64(7), uint64(2), uint32(RightWrite))
	f.Add([]byte{0xff, 0x01}, []byte{}, uint64(7), uint64(2), uint32(RightRead))
	f.Fuzz(func(t *testing.T, body, tag []byte, handle, epoch uint64, need uint32) {
		c := &api.Capability{Body: body, Mac: tag}
		b, err := ring.Check(c, handle, epoch, Rights(need), now)
		if err != nil {
			return
		}
		if !bytes.Equal(tag, mac(key.Secret, body)) {
			t.Fatalf("taken with a MAC the key did not make")
		}
		if b.Handle != handle || b.Epoch != epoch || Rights(b.Rights)&Rights(need) != Rights(need) ||
			now.After(time.UnixMilli(b.ExpiresUnixMilli).Add(CapabilitySkew)) {
			t.Fatalf("taken for %d/%d/%v: %v", handle, epoch, Rights(need), b)
		}
	})
}
