package s3

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

// rclone runs rclone against the gateway as remote "cat:" with the
// env's key.
func (e *env) rclone(t *testing.T, args ...string) (string, error) {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "rclone.conf")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("rclone", append([]string{"--config", conf}, args...)...)
	cmd.Env = append(cleanEnv(), "RCLONE_CONFIG_CAT_TYPE=s3", "RCLONE_CONFIG_CAT_PROVIDER=Other",
		"RCLONE_CONFIG_CAT_ENDPOINT=http://"+e.addr, "RCLONE_CONFIG_CAT_REGION=us-east-1",
		"RCLONE_CONFIG_CAT_ACCESS_KEY_ID="+e.key.AccessKeyID, "RCLONE_CONFIG_CAT_SECRET_ACCESS_KEY="+e.key.SecretAccessKey)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("rclone %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (e *env) mustRclone(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.rclone(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRclone drives the gateway with Debian's rclone: copy (a file large
// enough for a multipart upload among small ones; its 5 MiB parts
// moved at completion, as 8 MiB ones are), check (hashes
// agree, and a changed object is found), sync with deletions, delete.
func TestRclone(t *testing.T) {
	t.Parallel()
	needPrograms(t, "rclone")
	e := newEnv(t, 0)
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	files := map[string][]byte{}
	for i := range 30 {
		files[fmt.Sprintf("d%d/f%02d", i%3, i)] = []byte(fmt.Sprintf("small file %d\n", i))
	}
	big := make([]byte, 12<<20)
	rand.Read(big)
	files["big.bin"] = big
	writeTree(t, tree, files)

	e.mustRclone(t, "mkdir", "cat:rcl")
	multipart := []string{"--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M"}
	e.mustRclone(t, append([]string{"copy", tree, "cat:rcl/t"}, multipart...)...)
	st, err := e.mc.StatObject(t.Context(), "rcl", "t/big.bin", minio.StatObjectOptions{})
	if err != nil || !strings.HasSuffix(st.ETag, "-3") {
		t.Fatalf("big.bin: etag %s err %v; want a 3-part upload", st.ETag, err)
	}
	// rclone's 5 MiB parts fill 1 MiB chunks: they were moved into the
	// object, which has their chunk size (a copy would have the default
	// 64 MiB). Parts of 8 MiB get and keep 8 MiB chunks.
	if fi, err := e.admin.Stat(t.Context(), "/s3/rcl/t/big.bin"); err != nil || fi.ChunkSize != 1<<20 {
		t.Fatalf("big.bin in 5 MiB parts: chunk size %d (%v), want the parts' 1 MiB (moved)", fi.ChunkSize, err)
	}
	e.mustRclone(t, "copyto", filepath.Join(tree, "big.bin"), "cat:rcl/p8.bin", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "8M")
	st, err = e.mc.StatObject(t.Context(), "rcl", "p8.bin", minio.StatObjectOptions{})
	if err != nil || !strings.HasSuffix(st.ETag, "-2") {
		t.Fatalf("p8.bin: etag %s err %v; want a 2-part upload", st.ETag, err)
	}
	if fi, err := e.admin.Stat(t.Context(), "/s3/rcl/p8.bin"); err != nil || fi.ChunkSize != 8<<20 {
		t.Fatalf("big.bin in 8 MiB parts: chunk size %d (%v), want the parts' 8 MiB moved", fi.ChunkSize, err)
	}
	if got, err := e.readFile("/s3/rcl/p8.bin"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("big.bin in 8 MiB parts: the object differs (%v)", err)
	}
	e.mustRclone(t, "deletefile", "cat:rcl/p8.bin")
	out := e.mustRclone(t, "check", tree, "cat:rcl/t")
	if !strings.Contains(out, "0 differences found") || !strings.Contains(out, fmt.Sprintf("%d matching files", len(files))) {
		t.Fatalf("rclone check:\n%s", out)
	}
	if strings.Contains(out, "hashes could not be checked") {
		t.Fatalf("rclone check could not compare hashes:\n%s", out)
	}
	// An object changed behind rclone's back (same size) is found.
	e.writeFile("/s3/rcl/t/d0/f00", []byte("small file X\n"))
	if out, err := e.rclone(t, "check", "--download", tree, "cat:rcl/t"); err == nil {
		t.Fatalf("rclone check --download found no difference:\n%s", out)
	}
	// Sync: a change, a new file, a removal.
	files["d1/f01"] = []byte("changed\n")
	files["new"] = []byte("new\n")
	os.Remove(filepath.Join(tree, "d2", "f29"))
	delete(files, "d2/f29")
	writeTree(t, tree, files)
	e.mustRclone(t, append([]string{"sync", tree, "cat:rcl/t"}, multipart...)...)
	e.mustRclone(t, "check", "--download", tree, "cat:rcl/t")
	if got, err := e.readFile("/s3/rcl/t/d1/f01"); err != nil || !bytes.Equal(got, files["d1/f01"]) {
		t.Fatalf("the file after sync: %q %v", got, err)
	}
	keys := e.list(t, "rcl", minio.ListObjectsOptions{Recursive: true})
	if len(keys) != len(files) {
		t.Fatalf("after sync: %d objects, want %d", len(keys), len(files))
	}
	e.mustRclone(t, "delete", "cat:rcl/t")
	if out := e.mustRclone(t, "lsf", "-R", "cat:rcl"); strings.TrimSpace(out) != "" {
		t.Fatalf("after delete: %q", out)
	}
	e.mustRclone(t, "rmdir", "cat:rcl")
	if ok, err := e.mc.BucketExists(t.Context(), "rcl"); err != nil || ok {
		t.Fatalf("bucket after rmdir: %v %v", ok, err)
	}
}
