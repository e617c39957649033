package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/catena-io/catena/internal/testtools"
)

// needPrograms skips (in CI: fails) t unless every program is on PATH.
func needPrograms(t *testing.T, progs ...string) {
	t.Helper()
	debs := map[string]string{"aws": "awscli", "curl": "curl", "rclone": "rclone"}
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			testtools.Lacking(t, "tests/s3", fmt.Sprintf("%s not installed (Debian: apt-get install %s)", p, debs[p]))
		}
	}
}

// awsCLI runs `aws --endpoint-url GATEWAY args...` with the env's key
// and nothing of the user's configuration.
func (e *env) aws(t *testing.T, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	// awscli 1.x presigns with Signature V2 unless told otherwise; the
	// gateway speaks V4 only (docs/s3.md).
	if err := os.WriteFile(filepath.Join(home, "config"), []byte("[default]\ns3 =\n    signature_version = s3v4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("aws", append([]string{"--endpoint-url", "http://" + e.addr}, args...)...)
	cmd.Env = append(cleanEnv(), "HOME="+home,
		"AWS_ACCESS_KEY_ID="+e.key.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+e.key.SecretAccessKey,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE="+filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"), "AWS_PAGER=")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("aws %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out.String(), nil
}

func (e *env) mustAWS(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.aws(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cleanEnv is the environment without the user's AWS_* and RCLONE_*
// settings (a CA bundle for AWS endpoints, a profile, ...).
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "RCLONE_") {
			out = append(out, kv)
		}
	}
	return out
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// TestAWSCLI drives the gateway with Debian's awscli: mb, a multipart
// cp both ways, ls with prefixes, sync of a tree both ways, rm, rb, and
// a presigned GET with curl.
func TestAWSCLI(t *testing.T) {
	t.Parallel()
	needPrograms(t, "aws", "curl")
	e := newEnv(t, 0)
	ctx := context.Background()
	dir := t.TempDir()

	// Each aws run costs a second or two of Python start-up: the test
	// makes few (the error codes are TestGateway's).
	e.mustAWS(t, "s3", "mb", "s3://cli")

	// 64 MiB: 8 parts of awscli's 8 MiB.
	big := filepath.Join(dir, "big")
	data := make([]byte, 64<<20)
	rand.Read(data)
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustAWS(t, "s3", "cp", "--only-show-errors", big, "s3://cli/data/big.bin")
	st, err := e.mc.StatObject(ctx, "cli", "data/big.bin", minio.StatObjectOptions{})
	if err != nil || st.Size != int64(len(data)) || !strings.HasSuffix(st.ETag, "-8") {
		t.Fatalf("the uploaded object: size %d etag %s err %v; want 8 parts", st.Size, st.ETag, err)
	}
	// Its 8 MiB parts were moved into the object, not copied.
	if fi, err := e.admin.Stat(ctx, "/s3/cli/data/big.bin"); err != nil || fi.ChunkSize != 8<<20 {
		t.Fatalf("the object's chunk size %d (%v): want awscli's 8 MiB parts moved into it", fi.ChunkSize, err)
	}
	back := filepath.Join(dir, "back")
	e.mustAWS(t, "s3", "cp", "--only-show-errors", "s3://cli/data/big.bin", back)
	if sha256File(t, back) != sha256File(t, big) {
		t.Fatal("the object downloaded differs from the file uploaded")
	}
	file, err := e.readFile("/s3/cli/data/big.bin")
	if err != nil || !bytes.Equal(file, data) {
		t.Fatalf("the namespace's file differs from the upload: %v", err)
	}
	// A copy between keys: awscli copies an object this large in parts
	// (UploadPartCopy).
	e.mustAWS(t, "s3", "cp", "--only-show-errors", "s3://cli/data/big.bin", "s3://cli/data/copy.bin")
	if file, err := e.readFile("/s3/cli/data/copy.bin"); err != nil || !bytes.Equal(file, data) {
		t.Fatalf("the copy differs from the original: %v", err)
	}

	// A tree: 3 directories of 40 files and some at the top.
	tree := filepath.Join(dir, "tree")
	want := map[string][]byte{}
	for d := range 3 {
		for f := range 40 {
			want[fmt.Sprintf("sub%d/f%02d.txt", d, f)] = []byte(fmt.Sprintf("file %d of %d\n", f, d))
		}
	}
	want["top.txt"] = []byte("top\n")
	want["sub1/deeper/x.txt"] = []byte("x\n")
	writeTree(t, tree, want)
	e.mustAWS(t, "s3", "sync", "--only-show-errors", tree, "s3://cli/tree/")
	keys := e.list(t, "cli", minio.ListObjectsOptions{Prefix: "tree/", Recursive: true})
	if len(keys) != len(want) {
		t.Fatalf("after sync: %d objects, want %d", len(keys), len(want))
	}
	ls := e.mustAWS(t, "s3", "ls", "s3://cli/tree/")
	for _, line := range []string{"PRE sub0/", "PRE sub1/", "PRE sub2/", "top.txt"} {
		if !strings.Contains(ls, line) {
			t.Fatalf("aws s3 ls s3://cli/tree/ lacks %q:\n%s", line, ls)
		}
	}
	ls = e.mustAWS(t, "s3", "ls", "s3://cli/tree/sub1/f0")
	if n := strings.Count(ls, "\n"); n != 10 {
		t.Fatalf("aws s3 ls of prefix sub1/f0: %d lines, want 10:\n%s", n, ls)
	}
	// A second sync sends only what changed, and --delete removes.
	want["sub0/f00.txt"] = []byte("changed, and longer than before\n")
	want["new.txt"] = []byte("new\n")
	os.Remove(filepath.Join(tree, "sub2", "f39.txt"))
	delete(want, "sub2/f39.txt")
	writeTree(t, tree, want)
	out := e.mustAWS(t, "s3", "sync", "--delete", tree, "s3://cli/tree/")
	if n := strings.Count(out, "upload:") + strings.Count(out, "delete:"); n != 3 {
		t.Fatalf("the second sync moved %d files, want 3:\n%s", n, out)
	}
	// And back: the bucket's tree equals the local one.
	tree2 := filepath.Join(dir, "tree2")
	e.mustAWS(t, "s3", "sync", "--only-show-errors", "s3://cli/tree/", tree2)
	if got := readTree(t, tree2); !equalTrees(got, want) {
		t.Fatalf("synced back: %d files, want %d", len(got), len(want))
	}
	if b, err := e.readFile("/s3/cli/tree/sub0/f00.txt"); err != nil || !bytes.Equal(b, want["sub0/f00.txt"]) {
		t.Fatalf("the namespace's file after sync: %q %v", b, err)
	}

	// s3api: a listing with a delimiter.
	out = e.mustAWS(t, "s3api", "list-objects-v2", "--bucket", "cli", "--prefix", "tree/sub", "--delimiter", "/", "--query", "CommonPrefixes[].Prefix", "--output", "text")
	if strings.Join(strings.Fields(out), " ") != "tree/sub0/ tree/sub1/ tree/sub2/" {
		t.Fatalf("list-objects-v2 common prefixes: %q", out)
	}

	// A presigned GET with curl.
	u := strings.TrimSpace(e.mustAWS(t, "s3", "presign", "s3://cli/data/big.bin", "--expires-in", "300"))
	curled := filepath.Join(dir, "curled")
	if out, err := exec.Command("curl", "-sSf", "-o", curled, u).CombinedOutput(); err != nil {
		t.Fatalf("curl of the presigned URL: %v: %s", err, out)
	}
	if sha256File(t, curled) != sha256File(t, big) {
		t.Fatal("the presigned GET returned other bytes")
	}
	if out, err := exec.Command("curl", "-sf", "-o", "/dev/null", strings.Replace(u, "big.bin", "other", 1)).CombinedOutput(); err == nil {
		t.Fatalf("curl of a presigned URL changed to another key succeeded: %s", out)
	}

	// rm, rb.
	e.mustAWS(t, "s3", "rm", "--only-show-errors", "--recursive", "s3://cli/")
	if keys := e.list(t, "cli", minio.ListObjectsOptions{Recursive: true}); len(keys) != 0 {
		t.Fatalf("after rm --recursive: %v", keys)
	}
	e.mustAWS(t, "s3", "rb", "s3://cli")
	if ok, err := e.mc.BucketExists(ctx, "cli"); err != nil || ok {
		t.Fatalf("bucket after rb: %v %v", ok, err)
	}
}

func writeTree(t *testing.T, root string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, b) {
			continue // unchanged: keep its mtime
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalTrees(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	var names []string
	for k := range a {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !bytes.Equal(a[k], b[k]) {
			return false
		}
	}
	return true
}
