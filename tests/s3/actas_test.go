package s3

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/master"
)

// TestActAsOnlyForAdmins: the identity the gateway sends narrows an
// admin certificate to a user; a user's own certificate is never
// widened by it.
func TestActAsOnlyForAdmins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	ctx := context.Background()
	must(t, "mkdir", e.admin.Mkdir(ctx, "/private", 0o700))
	e.writeFile("/private/f", []byte("root's"))

	as := func(id string) context.Context { return metadata.AppendToOutgoingContext(ctx, master.MDActAs, id) }
	if _, err := e.admin.Stat(as("1000:1000"), "/private/f"); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("admin acting as 1000:1000 stats a root-only file: %v", err)
	}
	if _, err := e.admin.Stat(as("garbage"), "/private/f"); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("admin with a malformed identity stats a root-only file: %v", err)
	}
	if _, err := e.admin.Stat(as("0:0"), "/private/f"); err != nil {
		t.Fatalf("admin acting as root: %v", err)
	}

	dir := t.TempDir()
	if err := auth.IssueUser(filepath.Join(e.c.Dir(), "tls", "ca"), auth.RoleClient, "mallory", &auth.User{UID: 1000, GID: 1000}, []string{"127.0.0.1"}, dir); err != nil {
		t.Fatal(err)
	}
	user, err := e.c.NewClientConfig(client.Config{TLSDir: dir})
	must(t, "user client", err)
	defer user.Close()
	if _, err := user.Stat(as("0:0"), "/private/f"); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("a user certificate claiming root stats a root-only file: %v", err)
	}
	if _, err := user.Open(as("0:0"), "/.catena/s3-keys/"+e.key.AccessKeyID); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("a user certificate claiming root opens an access key: %v", err)
	}
}
