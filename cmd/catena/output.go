package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/catena-io/catena/client"
)

// fileJSON is a file or directory in --json output. Field names are a stable
// interface.
type fileJSON struct {
	Path        string `json:"path"`
	Name        string `json:"name,omitempty"`
	Size        int64  `json:"size"`
	ChunkSize   int64  `json:"chunk_size"`
	Replication int    `json:"replication"`
	Mode        string `json:"mode"`  // permission bits in octal, "0644"
	Mtime       string `json:"mtime"` // RFC 3339, UTC
	Type        string `json:"type"`  // "file" or "directory"
}

func toFileJSON(fi *client.FileInfo) fileJSON {
	return fileJSON{
		Path:        fi.Path,
		Size:        fi.Size,
		ChunkSize:   fi.ChunkSize,
		Replication: fi.Replication,
		Mode:        fmt.Sprintf("%04o", fi.Mode.Perm()),
		Mtime:       fi.ModTime.UTC().Format(time.RFC3339Nano),
		Type:        fileType(fi),
	}
}

func fileType(fi *client.FileInfo) string {
	if fi.IsDir {
		return "directory"
	}
	return "file"
}

// modeString renders a mode as ls does: "drwxr-xr-x", "-rw-r--r--".
func modeString(fi *client.FileInfo) string {
	m := fi.Mode.Perm()
	if fi.IsDir {
		m |= os.ModeDir
	}
	return m.String()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// timeString is the human form of a modification time.
func timeString(t time.Time) string {
	return t.Local().Format("2006-01-02 15:04:05")
}
