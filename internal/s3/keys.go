package s3

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/clock"
)

// Access keys live in the Catena namespace, one file per key under
// KeysDir (root's, mode 0700), holding the key as JSON. They are thus
// replicated and durable like any file, survive master failovers, and
// only root (an admin certificate, or any caller of a cluster without
// TLS) can read or change them. A file is written under a temporary
// name and renamed into place, so a key appears whole or not at all.

// KeysDir is where access keys are kept.
const KeysDir = "/.catena/s3-keys"

// Key is an access key and the POSIX identity requests signed with it
// act as.
type Key struct {
	AccessKeyID     string    `json:"access_key_id"`
	SecretAccessKey string    `json:"secret_access_key"`
	Name            string    `json:"name"`
	UID             uint32    `json:"uid"`
	GID             uint32    `json:"gid"`
	Created         time.Time `json:"created"`
}

// Errors of the key store.
var (
	// ErrNoSuchKey: no access key has this id.
	ErrNoSuchAccessKey = errors.New("s3: no such access key")
	// ErrKeyName: a key's name is empty, too long or holds a control
	// character.
	ErrKeyName = errors.New("s3: invalid access key name")
)

// Keys is the access keys' store. Lookups are cached for cacheTTL, so a
// removed key stops working within that time on every gateway.
type Keys struct {
	c     *client.Client
	clock clock.Clock

	mu    sync.Mutex
	cache map[string]cachedKey
}

type cachedKey struct {
	key *Key // nil: known not to exist
	at  time.Time
}

// cacheTTL bounds how long a gateway acts on a key after its removal.
const cacheTTL = 2 * time.Second

// NewKeys returns the key store of the cluster c talks to; clk nil
// means the real clock.
func NewKeys(c *client.Client, clk clock.Clock) *Keys {
	return &Keys{c: c, clock: clock.Or(clk), cache: map[string]cachedKey{}}
}

// randomString is n characters from alphabet, uniformly.
func randomString(n int, alphabet string) (string, error) {
	out := make([]byte, n)
	buf := make([]byte, 1)
	limit := 256 - 256%len(alphabet)
	for i := 0; i < n; {
		if _, err := io.ReadFull(rand.Reader, buf); err != nil {
			return "", err
		}
		if int(buf[0]) >= limit {
			continue
		}
		out[i] = alphabet[int(buf[0])%len(alphabet)]
		i++
	}
	return string(out), nil
}

// Create issues a new key named name for the identity uid:gid.
func (k *Keys) Create(ctx context.Context, name string, uid, gid uint32) (*Key, error) {
	if name == "" || len(name) > 128 || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, fmt.Errorf("%w: %q", ErrKeyName, name)
	}
	id, err := randomString(20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
	if err != nil {
		return nil, err
	}
	secret, err := randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
	if err != nil {
		return nil, err
	}
	key := &Key{AccessKeyID: "CK" + id[2:], SecretAccessKey: secret, Name: name, UID: uid, GID: gid, Created: k.clock.Now().UTC().Truncate(time.Second)}
	b, err := json.MarshalIndent(key, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := k.c.MkdirAll(ctx, path.Dir(KeysDir), 0o755); err != nil {
		return nil, err
	}
	if err := k.c.Mkdir(ctx, KeysDir, 0o700); err != nil && !errors.Is(err, client.ErrExist) {
		return nil, err
	}
	tmp := path.Join(KeysDir, ".new-"+key.AccessKeyID)
	f, err := k.c.Create(ctx, tmp, client.CreateOptions{Mode: 0o600, Overwrite: true})
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteAtContext(ctx, append(b, '\n'), 0); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := k.c.Rename(ctx, tmp, path.Join(KeysDir, key.AccessKeyID)); err != nil {
		return nil, err
	}
	return key, nil
}

// List returns every key, by name then id.
func (k *Keys) List(ctx context.Context) ([]Key, error) {
	ents, err := k.c.ReadDir(ctx, KeysDir)
	if errors.Is(err, client.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Key
	for _, e := range ents {
		if e.IsDir || strings.HasPrefix(e.Name, ".") {
			continue
		}
		key, err := k.read(ctx, e.Name)
		if errors.Is(err, ErrNoSuchAccessKey) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *key)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].AccessKeyID < out[j].AccessKeyID
	})
	return out, nil
}

// Remove removes the key with id (or, when no key has that id, the only
// key named so); it returns the key removed.
func (k *Keys) Remove(ctx context.Context, idOrName string) (*Key, error) {
	key, err := k.read(ctx, idOrName)
	if errors.Is(err, ErrNoSuchAccessKey) {
		keys, lerr := k.List(ctx)
		if lerr != nil {
			return nil, lerr
		}
		var named []Key
		for _, kk := range keys {
			if kk.Name == idOrName {
				named = append(named, kk)
			}
		}
		switch len(named) {
		case 0:
			return nil, err
		case 1:
			key = &named[0]
		default:
			return nil, fmt.Errorf("s3: %d keys are named %q: remove one by its access key id", len(named), idOrName)
		}
	} else if err != nil {
		return nil, err
	}
	if err := k.c.Remove(ctx, path.Join(KeysDir, key.AccessKeyID)); err != nil {
		if errors.Is(err, client.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrNoSuchAccessKey, idOrName)
		}
		return nil, err
	}
	k.mu.Lock()
	delete(k.cache, key.AccessKeyID)
	k.mu.Unlock()
	return key, nil
}

// validID reports whether id can name a key file.
func validID(id string) bool {
	if id == "" || len(id) > 128 || strings.HasPrefix(id, ".") {
		return false
	}
	for _, r := range id {
		if !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// read reads the key with id from the namespace.
func (k *Keys) read(ctx context.Context, id string) (*Key, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w: %s", ErrNoSuchAccessKey, id)
	}
	f, err := k.c.Open(ctx, path.Join(KeysDir, id))
	if errors.Is(err, client.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoSuchAccessKey, id)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if f.Size() > 64<<10 {
		return nil, fmt.Errorf("s3: access key file %s: too large", id)
	}
	b := make([]byte, f.Size())
	if _, err := f.ReadAtContext(ctx, b, 0); err != nil && err != io.EOF {
		return nil, err
	}
	var key Key
	if err := json.Unmarshal(b, &key); err != nil {
		return nil, fmt.Errorf("s3: access key file %s: %w", id, err)
	}
	if key.AccessKeyID != id {
		return nil, fmt.Errorf("s3: access key file %s names key %s", id, key.AccessKeyID)
	}
	return &key, nil
}

// Lookup returns the key with id, from the cache when fresh.
func (k *Keys) Lookup(ctx context.Context, id string) (*Key, error) {
	now := k.clock.Now()
	k.mu.Lock()
	ck, ok := k.cache[id]
	k.mu.Unlock()
	if ok && now.Sub(ck.at) < cacheTTL {
		if ck.key == nil {
			return nil, fmt.Errorf("%w: %s", ErrNoSuchAccessKey, id)
		}
		return ck.key, nil
	}
	key, err := k.read(ctx, id)
	if err != nil && !errors.Is(err, ErrNoSuchAccessKey) {
		return nil, err
	}
	k.mu.Lock()
	if len(k.cache) > 10000 {
		clear(k.cache) // bounded: unknown ids must not grow it forever
	}
	k.cache[id] = cachedKey{key: key, at: now}
	k.mu.Unlock()
	return key, err
}
