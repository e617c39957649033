package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/catena-io/catena/internal/proctest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// catenaBin builds the catena binary once for the package.
func catenaBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "catena-s3-test-")
		if err != nil {
			buildErr = err
			return
		}
		binPath, buildErr = proctest.Build(dir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestCLI: catena dev serves S3 and says where; catena admin s3 key
// create|ls|rm; catena s3 as a process of its own; an object and a
// file are the same data through catena put and catena cat.
func TestCLI(t *testing.T) {
	t.Parallel()
	bin := catenaBin(t)
	dir := t.TempDir()
	master, s3addr := proctest.FreeAddr(t), proctest.FreeAddr(t)
	dev := proctest.Start(t, bin, "catena dev", "catena dev: master listening on "+master, nil,
		"dev", "--dir", filepath.Join(dir, "data"), "--listen", master, "--http-listen", "", "--s3-listen", s3addr)
	if err := dev.AwaitReady("catena dev: S3 on http://"+s3addr+"/", time.Minute); err != nil {
		t.Fatal(err)
	}
	tlsDir := filepath.Join(dir, "data", "tls", "admin")
	run := func(stdin []byte, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "CATENA_MASTER="+master, "CATENA_TLS_DIR="+tlsDir)
		cmd.Stdin = bytes.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("catena %s: %v: %s", strings.Join(args, " "), err, stderr)
		}
		return string(out)
	}
	var key struct {
		ID     string `json:"access_key_id"`
		Secret string `json:"secret_access_key"`
	}
	if err := json.Unmarshal([]byte(run(nil, "admin", "s3", "key", "create", "ci", "--uid", "1000:100", "--json")), &key); err != nil || key.ID == "" || key.Secret == "" {
		t.Fatalf("key create --json: %+v %v", key, err)
	}
	var list struct {
		Keys []struct {
			ID   string `json:"access_key_id"`
			Name string `json:"name"`
			UID  uint32 `json:"uid"`
			GID  uint32 `json:"gid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(run(nil, "admin", "s3", "key", "ls", "--json")), &list); err != nil || len(list.Keys) != 1 ||
		list.Keys[0].ID != key.ID || list.Keys[0].Name != "ci" || list.Keys[0].UID != 1000 || list.Keys[0].GID != 100 {
		t.Fatalf("key ls --json: %+v %v", list, err)
	}
	if strings.Contains(run(nil, "admin", "s3", "key", "ls", "--json"), key.Secret) {
		t.Fatal("key ls shows the secret")
	}

	ctx := context.Background()
	mc, err := minio.New(s3addr, &minio.Options{Creds: credentials.NewStaticV4(key.ID, key.Secret, ""), Region: "us-east-1"})
	must(t, "minio", err)
	must(t, "make bucket", mc.MakeBucket(ctx, "cli-bucket", minio.MakeBucketOptions{}))
	_, err = mc.PutObject(ctx, "cli-bucket", "a/b.txt", strings.NewReader("put through S3"), 14, minio.PutObjectOptions{})
	must(t, "put", err)
	if out := run(nil, "cat", "/s3/cli-bucket/a/b.txt"); out != "put through S3" {
		t.Fatalf("catena cat of an object: %q", out)
	}
	run([]byte("put by catena"), "put", "-", "/s3/cli-bucket/c.txt")
	o, err := mc.GetObject(ctx, "cli-bucket", "c.txt", minio.GetObjectOptions{})
	must(t, "get", err)
	var b bytes.Buffer
	b.ReadFrom(o)
	if b.String() != "put by catena" {
		t.Fatalf("GET of a file put by catena: %q", b.String())
	}
	var st struct {
		UID uint32 `json:"uid"`
		GID uint32 `json:"gid"`
	}
	if err := json.Unmarshal([]byte(run(nil, "stat", "--json", "/s3/cli-bucket/a/b.txt")), &st); err != nil || st.UID != 1000 || st.GID != 100 {
		t.Fatalf("the object's owner %+v (%v), want the key's 1000:100", st, err)
	}

	// catena s3 as a process of its own, on the same cluster.
	own := proctest.FreeAddr(t)
	p := proctest.Spawn(t, bin, "catena s3", proctest.Options{}, "s3", "--master", master, "--tls-dir", tlsDir, "--listen", own)
	if err := p.AwaitReady("catena s3: serving /s3 on http://"+own+"/", time.Minute); err != nil {
		t.Fatal(err)
	}
	mc2, err := minio.New(own, &minio.Options{Creds: credentials.NewStaticV4(key.ID, key.Secret, ""), Region: "us-east-1"})
	must(t, "minio", err)
	keys := 0
	for oi := range mc2.ListObjects(ctx, "cli-bucket", minio.ListObjectsOptions{Recursive: true}) {
		must(t, "list", oi.Err)
		keys++
	}
	if keys != 2 {
		t.Fatalf("catena s3 lists %d objects, want 2", keys)
	}

	// A removed key is refused, by every gateway, within seconds.
	run(nil, "admin", "s3", "key", "rm", "ci")
	for _, c := range []*minio.Client{mc, mc2} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := c.ListBuckets(ctx)
			if code(err) == "InvalidAccessKeyId" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a removed key still works: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // the gateways' key cache lapses after 2 s
		}
	}
	p.Stop(t, 30*time.Second)
	dev.Stop(t, 30*time.Second)
}
