package meta

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Command is a state change carried through the Raft log. Implemented only
// by the command structs of this package.
type Command interface {
	commandType() string
}

// Mkdir creates a directory. With Parents, missing ancestors are created
// too and an existing directory at Path is not an error.
type Mkdir struct {
	Path    string
	Parents bool
	Mode    uint32
	Time    int64
	// Uid and Gid own the new directories (0: root).
	Uid uint32 `json:",omitempty"`
	Gid uint32 `json:",omitempty"`
}

// Create creates an empty file. Replication 0 and ChunkSize 0 mean the
// defaults. With Overwrite an existing file is truncated to size 0, loses
// its chunks and takes the new parameters (its inode number stays).
type Create struct {
	Path        string
	Mode        uint32
	Replication int
	ChunkSize   int64
	Overwrite   bool
	Time        int64
	// Uid and Gid own a new file (0: root); an overwritten one keeps its
	// owner.
	Uid uint32 `json:",omitempty"`
	Gid uint32 `json:",omitempty"`
}

// Rename moves Src to the free name Dst.
type Rename struct {
	Src, Dst string
	Time     int64
}

// Remove deletes a file or an empty directory (any directory with
// Recursive). Chunks whose refcount drops to 0 leave the chunk map.
type Remove struct {
	Path      string
	Recursive bool
	Time      int64
}

// SizeMode says how SetSize applies its size.
type SizeMode uint8

const (
	// SizeExtend sets size = max(size, new size).
	SizeExtend SizeMode = 1
	// SizeExact sets the size exactly; shrinking drops the chunks wholly
	// past the new size.
	SizeExact SizeMode = 2
)

// SetSize changes a file's size.
type SetSize struct {
	Inode uint64
	Size  int64
	Mode  SizeMode
	Time  int64
}

// AllocateChunk gives a file a chunk at Index with the chain the leader
// placed. If the index is already allocated the existing chunk is returned
// and Chain is ignored.
type AllocateChunk struct {
	Inode uint64
	Index int64
	Chain []ServerID
	Time  int64
}

// RegisterServer adds or updates a chunkserver in the registry.
type RegisterServer struct {
	ID     ServerID
	Addr   string
	Labels map[string]string
	// Name: the server's human name, unique (ValidServerName): when
	// another server holds it, ErrExists, unless TakeName (the master
	// found the holder dead: a disk replaced, the server started anew
	// under the same name), which leaves the holder nameless.
	Name     string `json:",omitempty"`
	TakeName bool   `json:",omitempty"`
	// CertName: the registering caller's certificate name ("" without
	// TLS). A server bound to a name (Server.CertName) is registered
	// again only under it (ErrExists otherwise); one without takes it.
	CertName string `json:",omitempty"`
}

func (Mkdir) commandType() string          { return "mkdir" }
func (Create) commandType() string         { return "create" }
func (Rename) commandType() string         { return "rename" }
func (Remove) commandType() string         { return "remove" }
func (SetSize) commandType() string        { return "setsize" }
func (AllocateChunk) commandType() string  { return "allocate" }
func (RegisterServer) commandType() string { return "register" }

// encodingVersion is the version of the command envelope.
const encodingVersion = 1

type envelope struct {
	V    int             `json:"v"`
	Type string          `json:"type"`
	Cmd  json.RawMessage `json:"cmd"`
}

// Encode serialises a command into a versioned envelope.
func Encode(c Command) ([]byte, error) {
	if c == nil {
		return nil, errorf(ErrInvalid, "nil command")
	}
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("meta: encode %s: %w", c.commandType(), err)
	}
	return json.Marshal(envelope{V: encodingVersion, Type: c.commandType(), Cmd: body})
}

// Decode parses an envelope written by Encode. It wraps ErrCorrupt.
func Decode(b []byte) (Command, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, errorf(ErrCorrupt, "command envelope: %v", err)
	}
	if env.V != encodingVersion {
		return nil, errorf(ErrCorrupt, "command version %d", env.V)
	}
	var c Command
	var err error
	switch env.Type {
	case "mkdir":
		c, err = decodeAs[Mkdir](env.Cmd)
	case "create":
		c, err = decodeAs[Create](env.Cmd)
	case "rename":
		c, err = decodeAs[Rename](env.Cmd)
	case "remove":
		c, err = decodeAs[Remove](env.Cmd)
	case "setsize":
		c, err = decodeAs[SetSize](env.Cmd)
	case "allocate":
		c, err = decodeAs[AllocateChunk](env.Cmd)
	case "register":
		c, err = decodeAs[RegisterServer](env.Cmd)
	case "setchain":
		c, err = decodeAs[SetChain](env.Cmd)
	case "caughtup":
		c, err = decodeAs[CaughtUp](env.Cmd)
	case "as":
		c, err = decodeGuarded(env.Cmd)
	case "setrep":
		c, err = decodeAs[SetReplication](env.Cmd)
	case "setdraining":
		c, err = decodeAs[SetDraining](env.Cmd)
	case "removeserver":
		c, err = decodeAs[RemoveServer](env.Cmd)
	case "concat":
		c, err = decodeAs[Concat](env.Cmd)
	default:
		var ok bool
		if c, ok, err = decodeVolume(env.Type, env.Cmd); !ok {
			if c, ok, err = decodePosix(env.Type, env.Cmd); !ok {
				if c, ok, err = decodeHA(env.Type, env.Cmd); !ok {
					if c, ok, err = decodeOrphan(env.Type, env.Cmd); !ok {
						if c, ok, err = decodeSnapshot(env.Type, env.Cmd); !ok {
							return nil, errorf(ErrCorrupt, "unknown command type %q", env.Type)
						}
					}
				}
			}
		}
	}
	if err != nil {
		return nil, errorf(ErrCorrupt, "%s: %v", env.Type, err)
	}
	return c, nil
}

func decodeAs[T Command](raw json.RawMessage) (T, error) {
	var v T
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(&v)
	return v, err
}
