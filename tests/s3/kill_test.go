package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/proctest"
)

// killAt is a minio-go progress reader that runs kill once the upload
// has sent at bytes.
type killAt struct {
	sent atomic.Int64
	at   int64
	once sync.Once
	kill func()
}

func (k *killAt) Read(p []byte) (int, error) {
	if k.sent.Add(int64(len(p))) >= k.at {
		k.once.Do(func() { go k.kill() })
	}
	return len(p), nil
}

// TestChunkserverKilledDuringMultipart: real processes (a master, four
// chunkservers, catena s3); one chunkserver is SIGKILLed in the middle
// of a 96 MiB multipart upload through minio-go, which retries what
// fails as S3 clients do; the upload completes and the object's SHA-256
// is the data's.
func TestChunkserverKilledDuringMultipart(t *testing.T) {
	t.Parallel()
	bin := catenaBin(t)
	dir := t.TempDir()
	master := proctest.FreeAddr(t)
	proctest.Start(t, bin, "catena master", "catena master: listening on", nil,
		"master", "--insecure", "--dir", filepath.Join(dir, "master"), "--listen", master, "--raft-addr", proctest.FreeAddr(t))
	var cs []*proctest.Proc
	for i := range 4 {
		cs = append(cs, proctest.Start(t, bin, fmt.Sprintf("cs%d", i+1), "catena chunkserver: id", nil,
			"chunkserver", "--insecure", "--master", master, "--dir", filepath.Join(dir, fmt.Sprintf("cs%d", i+1)), "--listen", proctest.FreeAddr(t)))
	}
	cl, err := client.New(client.Config{Masters: []string{master}})
	must(t, "client", err)
	defer cl.Close()
	alive := func(n int) func() error {
		return func() error {
			st, err := cl.Status(context.Background())
			if err != nil {
				return err
			}
			got := 0
			for _, s := range st.Chunkservers {
				if s.Alive {
					got++
				}
			}
			if got != n {
				return fmt.Errorf("%d chunkservers alive, want %d", got, n)
			}
			return nil
		}
	}
	clustertest.Eventually(t, time.Minute, alive(4))

	out, err := exec.Command(bin, "--master", master, "admin", "s3", "key", "create", "k", "--json").Output()
	must(t, "key create", err)
	var key struct {
		ID     string `json:"access_key_id"`
		Secret string `json:"secret_access_key"`
	}
	must(t, "key json", json.Unmarshal(out, &key))
	gwAddr := proctest.FreeAddr(t)
	proctest.Start(t, bin, "catena s3", "catena s3: serving", nil, "s3", "--master", master, "--listen", gwAddr)
	mc, err := minio.New(gwAddr, &minio.Options{Creds: credentials.NewStaticV4(key.ID, key.Secret, ""), Region: "us-east-1"})
	must(t, "minio", err)
	ctx := context.Background()
	must(t, "make bucket", mc.MakeBucket(ctx, "kill", minio.MakeBucketOptions{}))

	data := pattern(96<<20, 11)
	progress := &killAt{at: 40 << 20, kill: func() { cs[1].Kill() }}
	info, err := mc.PutObject(ctx, "kill", "big", bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{PartSize: 16 << 20, NumThreads: 2, Progress: progress})
	must(t, "put while a chunkserver is killed", err)
	select {
	case <-cs[1].Done():
	default:
		t.Fatal("the chunkserver was not killed during the upload")
	}
	if info.Size != int64(len(data)) {
		t.Fatalf("uploaded %d bytes", info.Size)
	}
	o, err := mc.GetObject(ctx, "kill", "big", minio.GetObjectOptions{})
	must(t, "get", err)
	h := sha256.New()
	n, err := io.Copy(h, o)
	o.Close()
	must(t, "read", err)
	if n != int64(len(data)) || !bytes.Equal(h.Sum(nil), sha(data)) {
		t.Fatalf("the object (%d bytes) does not hash as the data", n)
	}
}

func sha(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
