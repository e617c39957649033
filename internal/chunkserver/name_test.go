package chunkserver

import (
	"os"
	"strings"
	"testing"

	"github.com/catena-io/catena/internal/meta"
)

// TestDefaultName: the host's short name and the data directory's last
// element, always a valid name.
func TestDefaultName(t *testing.T) {
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	if got := DefaultName("/var/lib/catena/disk2"); got != host+"-disk2" && host != "" {
		t.Errorf("DefaultName = %q, want %q", got, host+"-disk2")
	}
	for _, dir := range []string{"/", ".", "/data/my disk!", "/x/" + strings.Repeat("long", 40), "/srv/é"} {
		if got := DefaultName(dir); meta.ValidServerName(got) != nil {
			t.Errorf("DefaultName(%q) = %q: %v", dir, got, meta.ValidServerName(got))
		}
	}
}
