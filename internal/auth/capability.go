package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/rpcerr"
)

// Capabilities: the master grants a client access to one chunk at one
// epoch with a short-lived token (api.Capability) that it signs with a
// key shared with the chunkservers; a chunkserver checks the token on
// every Read and Write without asking the master. Who may have which
// right is the master's decision (a reader's certificate gets read-only
// capabilities); a chunkserver only checks what the master signed.

// Rights are what a capability allows.
type Rights uint32

const (
	RightRead  Rights = 1 << 0
	RightWrite Rights = 1 << 1
)

// Capability bounds.
const (
	// CapabilityLifetime is how long a capability the master signs stays
	// valid.
	CapabilityLifetime = 10 * time.Minute
	// CapabilitySkew is how far a chunkserver's clock may be behind the
	// master's: a capability is taken until its expiry plus this.
	CapabilitySkew = time.Minute
	// keySize is the length of a capability key's secret.
	keySize = 32
)

// CapabilityKey is a key capabilities are signed with.
type CapabilityKey struct {
	ID     uint64
	Secret []byte
}

// Sign returns the capability for body under key (body.KeyId is set to
// key.ID).
func Sign(key CapabilityKey, body *api.CapabilityBody) *api.Capability {
	body.KeyId = key.ID
	b, err := proto.Marshal(body)
	if err != nil {
		panic(err) // a message of integers cannot fail to encode
	}
	return &api.Capability{Body: b, Mac: mac(key.Secret, b)}
}

func mac(secret, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(body)
	return h.Sum(nil)
}

// Keyring holds the keys a chunkserver checks capabilities with. The
// zero value holds none and refuses everything (UNAVAILABLE: the server
// has not heard from the master yet). Safe for concurrent use.
type Keyring struct {
	mu   sync.RWMutex
	keys map[uint64][]byte
}

// Set replaces the keys with those the master sent (a key with an empty
// or short secret is ignored). An empty list changes nothing: the
// master always sends its keys, so none means an older master or a
// message without them.
func (k *Keyring) Set(keys []*api.CapabilityKey) {
	m := make(map[uint64][]byte, len(keys))
	for _, key := range keys {
		if len(key.GetSecret()) >= keySize {
			m[key.GetId()] = slices.Clone(key.GetSecret())
		}
	}
	if len(m) == 0 {
		return
	}
	k.mu.Lock()
	k.keys = m
	k.mu.Unlock()
}

// Check is nil when c grants need on (handle, epoch) at now, and returns
// its body for the caller's further checks. Else an rpcerr error:
// PERMISSION_DENIED for a missing, forged or insufficient capability or
// one for another chunk or epoch; CAPABILITY_EXPIRED for an expired one
// or one signed with a key this ring lacks (the client gets a fresh one
// from the master); UNAVAILABLE while the ring holds no key.
func (k *Keyring) Check(c *api.Capability, handle, epoch uint64, need Rights, now time.Time) (*api.CapabilityBody, error) {
	if c == nil {
		return nil, rpcerr.New(api.ErrorCode_PERMISSION_DENIED, "chunk %d: no capability", handle)
	}
	var body api.CapabilityBody
	if err := proto.Unmarshal(c.GetBody(), &body); err != nil {
		return nil, rpcerr.New(api.ErrorCode_PERMISSION_DENIED, "chunk %d: malformed capability", handle)
	}
	k.mu.RLock()
	secret, known := k.keys[body.GetKeyId()]
	empty := len(k.keys) == 0
	k.mu.RUnlock()
	switch {
	case empty:
		return nil, rpcerr.New(api.ErrorCode_UNAVAILABLE, "chunk %d: no capability keys from the master yet", handle)
	case !known:
		return nil, rpcerr.New(api.ErrorCode_CAPABILITY_EXPIRED, "chunk %d: capability signed with key %d, which this server does not hold", handle, body.GetKeyId())
	case !hmac.Equal(mac(secret, c.GetBody()), c.GetMac()):
		return nil, rpcerr.New(api.ErrorCode_PERMISSION_DENIED, "chunk %d: capability signature does not verify", handle)
	case body.GetHandle() != handle || body.GetEpoch() != epoch:
		return nil, rpcerr.New(api.ErrorCode_PERMISSION_DENIED, "chunk %d epoch %d: capability is for chunk %d epoch %d",
			handle, epoch, body.GetHandle(), body.GetEpoch())
	case Rights(body.GetRights())&need != need:
		return nil, rpcerr.New(api.ErrorCode_PERMISSION_DENIED, "chunk %d: capability grants %s, not %s", handle, Rights(body.GetRights()), need)
	case now.After(time.UnixMilli(body.GetExpiresUnixMilli()).Add(CapabilitySkew)):
		return nil, rpcerr.New(api.ErrorCode_CAPABILITY_EXPIRED, "chunk %d: capability expired at %s",
			handle, time.UnixMilli(body.GetExpiresUnixMilli()).UTC().Format(time.RFC3339))
	}
	return &body, nil
}

func (r Rights) String() string {
	switch r {
	case 0:
		return "nothing"
	case RightRead:
		return "read"
	case RightWrite:
		return "write"
	case RightRead | RightWrite:
		return "read and write"
	}
	return "unknown rights"
}
