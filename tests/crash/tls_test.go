package crash

import (
	"fmt"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"

	"github.com/catena-io/catena/internal/auth"
)

// The crash suite's processes run as a real cluster does: mutual TLS,
// with certificates of a CA the test makes.

// testCerts are the TLS directories of a test's processes.
type testCerts struct {
	master string
	cs     []string // per chunkserver: its id is bound to its name
	admin  string   // clients, catena nbd and catena mount (root)
}

func issueCerts(t *testing.T, dir string, chunkservers int) *testCerts {
	t.Helper()
	ca := filepath.Join(dir, "tls", "ca")
	if err := auth.InitCA(ca); err != nil {
		t.Fatal(err)
	}
	issue := func(role auth.Role, name string) string {
		out := filepath.Join(dir, "tls", name)
		if err := auth.Issue(ca, role, name, []string{"127.0.0.1"}, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	c := &testCerts{master: issue(auth.RoleMaster, "master"), admin: issue(auth.RoleAdmin, "admin")}
	for i := range chunkservers {
		c.cs = append(c.cs, issue(auth.RoleChunkserver, fmt.Sprintf("cs%d", i+1)))
	}
	return c
}

// dialOption is an admin's connection to a master.
func (c *testCerts) dialOption(t testing.TB) grpc.DialOption {
	t.Helper()
	creds, err := auth.Load(c.admin)
	if err != nil {
		t.Fatal(err)
	}
	return creds.DialOption(auth.RoleMaster)
}
