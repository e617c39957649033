package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	s3gw "github.com/catena-io/catena/internal/s3"
)

// multipartETag is S3's ETag of an object made of parts.
func multipartETag(parts ...[]byte) string {
	h := md5.New()
	for _, p := range parts {
		s := md5.Sum(p)
		h.Write(s[:])
	}
	return fmt.Sprintf("%s-%d", hex.EncodeToString(h.Sum(nil)), len(parts))
}

func TestMultipart(t *testing.T) {
	t.Parallel()
	const minPart = 1 << 20
	e := newEnv(t, minPart)
	ctx := context.Background()
	core := e.core()
	must(t, "make bucket", e.mc.MakeBucket(ctx, "mpb", minio.MakeBucketOptions{}))

	p1, p2, p3 := pattern(minPart, 1), pattern(minPart+5, 2), pattern(1000, 3)
	upload := func(key string) string {
		id, err := core.NewMultipartUpload(ctx, "mpb", key, minio.PutObjectOptions{ContentType: "application/x-mp", UserMetadata: map[string]string{"part": "y"}})
		must(t, "create upload", err)
		return id
	}
	part := func(key, id string, n int, data []byte) minio.CompletePart {
		p, err := core.PutObjectPart(ctx, "mpb", key, id, n, bytes.NewReader(data), int64(len(data)), minio.PutObjectPartOptions{})
		must(t, fmt.Sprintf("upload part %d", n), err)
		if p.ETag != md5hex(data) {
			t.Fatalf("part %d ETag %s, want %s", n, p.ETag, md5hex(data))
		}
		return minio.CompletePart{PartNumber: n, ETag: p.ETag}
	}

	t.Run("complete", func(t *testing.T) {
		id := upload("dir/big")
		// Out of order, and part 2 uploaded twice: the last one counts.
		c3 := part("dir/big", id, 3, p3)
		part("dir/big", id, 2, pattern(minPart+5, 9))
		c2 := part("dir/big", id, 2, p2)
		c1 := part("dir/big", id, 1, p1)
		lp, err := core.ListObjectParts(ctx, "mpb", "dir/big", id, 0, 2)
		must(t, "list parts", err)
		if len(lp.ObjectParts) != 2 || !lp.IsTruncated || lp.ObjectParts[0].PartNumber != 1 || lp.ObjectParts[1].Size != int64(len(p2)) {
			t.Fatalf("ListParts page 1: %+v", lp)
		}
		lp, err = core.ListObjectParts(ctx, "mpb", "dir/big", id, lp.NextPartNumberMarker, 2)
		must(t, "list parts", err)
		if len(lp.ObjectParts) != 1 || lp.IsTruncated || lp.ObjectParts[0].PartNumber != 3 {
			t.Fatalf("ListParts page 2: %+v", lp)
		}
		lu, err := core.ListMultipartUploads(ctx, "mpb", "dir/", "", "", "", 100)
		must(t, "list uploads", err)
		if len(lu.Uploads) != 1 || lu.Uploads[0].UploadID != id || lu.Uploads[0].Key != "dir/big" {
			t.Fatalf("ListMultipartUploads: %+v", lu.Uploads)
		}
		// Not visible before Complete.
		if _, err := e.mc.StatObject(ctx, "mpb", "dir/big", minio.StatObjectOptions{}); code(err) != "NoSuchKey" {
			t.Fatalf("the object before Complete: %v", err)
		}
		// Errors first: order, a wrong ETag, a missing part, a small part.
		_, err = core.CompleteMultipartUpload(ctx, "mpb", "dir/big", id, []minio.CompletePart{c2, c1, c3}, minio.PutObjectOptions{})
		wantCode(t, "parts out of order", err, "InvalidPartOrder")
		_, err = core.CompleteMultipartUpload(ctx, "mpb", "dir/big", id, []minio.CompletePart{c1, {PartNumber: 2, ETag: md5hex(nil)}, c3}, minio.PutObjectOptions{})
		wantCode(t, "a wrong ETag", err, "InvalidPart")
		_, err = core.CompleteMultipartUpload(ctx, "mpb", "dir/big", id, []minio.CompletePart{c1, c2, {PartNumber: 4, ETag: c3.ETag}}, minio.PutObjectOptions{})
		wantCode(t, "a part never uploaded", err, "InvalidPart")
		_, err = core.CompleteMultipartUpload(ctx, "mpb", "dir/big", id, []minio.CompletePart{c1, c3, c2}, minio.PutObjectOptions{})
		wantCode(t, "a small part not last", err, "EntityTooSmall")

		info, err := core.CompleteMultipartUpload(ctx, "mpb", "dir/big", id, []minio.CompletePart{c1, c2, c3}, minio.PutObjectOptions{})
		must(t, "complete", err)
		want := append(append(bytes.Clone(p1), p2...), p3...)
		if info.ETag != multipartETag(p1, p2, p3) {
			t.Fatalf("ETag %s, want %s", info.ETag, multipartETag(p1, p2, p3))
		}
		got, err := e.readFile("/s3/mpb/dir/big")
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("the assembled file: %d bytes, %v", len(got), err)
		}
		st, err := e.mc.StatObject(ctx, "mpb", "dir/big", minio.StatObjectOptions{})
		if err != nil || st.ETag != info.ETag || st.ContentType != "application/x-mp" || st.UserMetadata["Part"] != "y" {
			t.Fatalf("HEAD after complete: %+v %v", st, err)
		}
		// The upload is gone.
		_, err = core.ListObjectParts(ctx, "mpb", "dir/big", id, 0, 10)
		wantCode(t, "list parts of a completed upload", err, "NoSuchUpload")
		ents, err := e.admin.ReadDir(ctx, "/s3/mpb/.s3-uploads")
		if err != nil || len(ents) != 0 {
			t.Fatalf("upload directory after complete: %v %v", ents, err)
		}
	})

	// Parts that fill their chunks (a power of two each) are moved into
	// the object, not copied: the object has their 1 MiB chunk size (a
	// copy would have the default 64 MiB) and the cluster holds the
	// same chunks but the upload's info file's. A last part of another
	// chunk size is copied alone first (into two chunks, here).
	t.Run("moved", func(t *testing.T) {
		for _, last := range []int{1000, minPart + minPart/2} {
			key := fmt.Sprintf("moved-%d", last)
			id := upload(key)
			q1, q2, q3 := pattern(minPart, 4), pattern(minPart, 5), pattern(last, 6)
			cs := []minio.CompletePart{part(key, id, 1, q1), part(key, id, 2, q2), part(key, id, 3, q3)}
			before, err := e.admin.Status(ctx)
			must(t, "status", err)
			info, err := core.CompleteMultipartUpload(ctx, "mpb", key, id, cs, minio.PutObjectOptions{})
			must(t, "complete", err)
			after, err := e.admin.Status(ctx)
			must(t, "status", err)
			if info.ETag != multipartETag(q1, q2, q3) {
				t.Fatalf("last part of %d bytes: ETag %s, want %s", last, info.ETag, multipartETag(q1, q2, q3))
			}
			got, err := e.readFile("/s3/mpb/" + key)
			if want := append(append(bytes.Clone(q1), q2...), q3...); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("last part of %d bytes: the assembled file: %d bytes, %v", last, len(got), err)
			}
			fi, err := e.admin.Stat(ctx, "/s3/mpb/"+key)
			if err != nil || fi.ChunkSize != minPart {
				t.Fatalf("last part of %d bytes: the object's chunk size %d (%v), want the parts' %d", last, fi.ChunkSize, err, minPart)
			}
			// The info file's chunk goes; so does the last part's when it
			// is copied, into as many chunks as it fills of 1 MiB.
			want := before.ChunksTotal - 1
			if last > minPart {
				want = want - 1 + (uint64(last)+minPart-1)/minPart
			}
			if after.ChunksTotal != want {
				t.Fatalf("last part of %d bytes: %d chunks before Complete, %d after, want %d: the parts moved", last, before.ChunksTotal, after.ChunksTotal, want)
			}
		}
	})

	// A last part smaller than part 1, sent after it, gets part 1's
	// chunk size (2 MiB here, its own would be 1 MiB): moved with the
	// others, nothing copied; the cluster loses only the info file's
	// chunk.
	t.Run("a last part takes part 1's chunk size", func(t *testing.T) {
		key := "moved-last"
		id := upload(key)
		q1, q2, q3 := pattern(2*minPart, 12), pattern(2*minPart, 13), pattern(minPart, 14)
		cs := []minio.CompletePart{part(key, id, 1, q1), part(key, id, 2, q2), part(key, id, 3, q3)}
		before, err := e.admin.Status(ctx)
		must(t, "status", err)
		_, err = core.CompleteMultipartUpload(ctx, "mpb", key, id, cs, minio.PutObjectOptions{})
		must(t, "complete", err)
		after, err := e.admin.Status(ctx)
		must(t, "status", err)
		got, err := e.readFile("/s3/mpb/" + key)
		if want := bytes.Join([][]byte{q1, q2, q3}, nil); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("the object: %d bytes, %v", len(got), err)
		}
		fi, err := e.admin.Stat(ctx, "/s3/mpb/"+key)
		if err != nil || fi.ChunkSize != 2*minPart {
			t.Fatalf("the object's chunk size %d (%v), want the parts' %d", fi.ChunkSize, err, 2*minPart)
		}
		if after.ChunksTotal != before.ChunksTotal-1 {
			t.Fatalf("%d chunks before Complete, %d after, want %d: all parts moved", before.ChunksTotal, after.ChunksTotal, before.ChunksTotal-1)
		}
	})

	// A completion that moved the parts and died before its rename left
	// the object file in the upload's directory, carrying the upload's
	// ETag and size: here made as the gateway makes it. A retry with
	// another part list is refused; the client's retry commits it.
	t.Run("retried after the move", func(t *testing.T) {
		key := "moved-retried"
		id := upload(key)
		q1, q2 := pattern(minPart, 7), pattern(300, 8)
		cs := []minio.CompletePart{part(key, id, 1, q1), part(key, id, 2, q2)}
		dir := "/s3/mpb/.s3-uploads/mp-" + id
		f, err := e.admin.Create(ctx, dir+"/assembly-0123456789abcdef", client.CreateOptions{ChunkSize: minPart})
		must(t, "create the object file", err)
		fi, err := f.Stat()
		must(t, "stat", err)
		must(t, "close", f.Close())
		meta := fmt.Sprintf(`{"etag":%q,"size":%d}`, multipartETag(q1, q2), len(q1)+len(q2))
		must(t, "xattr", e.admin.SetXattr(ctx, fi.Inode, "user.s3", []byte(meta), client.XattrAny))
		_, err = e.admin.Concat(ctx, dir+"/assembly-0123456789abcdef", []string{dir + "/part-00001", dir + "/part-00002"}, nil)
		must(t, "concat", err)

		_, err = core.CompleteMultipartUpload(ctx, "mpb", key, id, cs[:1], minio.PutObjectOptions{})
		wantCode(t, "another part list", err, "InvalidPart")
		info, err := core.CompleteMultipartUpload(ctx, "mpb", key, id, cs, minio.PutObjectOptions{})
		must(t, "complete again", err)
		if info.ETag != multipartETag(q1, q2) {
			t.Fatalf("ETag %s, want %s", info.ETag, multipartETag(q1, q2))
		}
		got, err := e.readFile("/s3/mpb/" + key)
		if want := append(bytes.Clone(q1), q2...); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("the object: %d bytes, %v", len(got), err)
		}
		if _, err := e.admin.Stat(ctx, dir); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("the upload's directory after the completion: %v", err)
		}
	})

	// A completion refused after the move (the key is a prefix of
	// another key's) keeps the moved parts: once the conflict is gone,
	// the same completion succeeds.
	t.Run("refused after the move, then retried", func(t *testing.T) {
		e.put("mpb", "cf/y", []byte("y"), minio.PutObjectOptions{})
		id := upload("cf")
		q1, q2 := pattern(minPart, 10), pattern(700, 11)
		cs := []minio.CompletePart{part("cf", id, 1, q1), part("cf", id, 2, q2)}
		_, err := core.CompleteMultipartUpload(ctx, "mpb", "cf", id, cs, minio.PutObjectOptions{})
		wantCode(t, "a key that is another's prefix", err, "InvalidArgument")
		_, err = e.mc.StatObject(ctx, "mpb", "cf", minio.StatObjectOptions{})
		wantCode(t, "the refused object", err, "NoSuchKey")
		must(t, "remove the conflict", e.mc.RemoveObject(ctx, "mpb", "cf/y", minio.RemoveObjectOptions{}))
		_, err = core.CompleteMultipartUpload(ctx, "mpb", "cf", id, cs, minio.PutObjectOptions{})
		must(t, "complete again", err)
		got, err := e.readFile("/s3/mpb/cf")
		if want := append(bytes.Clone(q1), q2...); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("the object: %d bytes, %v", len(got), err)
		}
	})

	t.Run("abort", func(t *testing.T) {
		id := upload("aborted")
		c1 := part("aborted", id, 1, p3)
		must(t, "abort", core.AbortMultipartUpload(ctx, "mpb", "aborted", id))
		wantCode(t, "abort again", core.AbortMultipartUpload(ctx, "mpb", "aborted", id), "NoSuchUpload")
		_, err := core.CompleteMultipartUpload(ctx, "mpb", "aborted", id, []minio.CompletePart{c1}, minio.PutObjectOptions{})
		wantCode(t, "complete an aborted upload", err, "NoSuchUpload")
		_, err = core.PutObjectPart(ctx, "mpb", "aborted", id, 2, bytes.NewReader(p3), int64(len(p3)), minio.PutObjectPartOptions{})
		wantCode(t, "a part of an aborted upload", err, "NoSuchUpload")
		_, err = core.PutObjectPart(ctx, "mpb", "aborted", "00000000000000000000000000000000", 1, bytes.NewReader(p3), int64(len(p3)), minio.PutObjectPartOptions{})
		wantCode(t, "a part of an unknown upload", err, "NoSuchUpload")
		// A part number out of range.
		id = upload("aborted")
		r := e.do(t, "PUT", "/mpb/aborted?partNumber=10001&uploadId="+id, nil, []byte("x"))
		if errCode(t, r) != "InvalidArgument" {
			t.Fatalf("part 10001: %d %s", r.StatusCode, r.body)
		}
		must(t, "abort", core.AbortMultipartUpload(ctx, "mpb", "aborted", id))
	})

	t.Run("minio-go PutObject multipart", func(t *testing.T) {
		// minio-go cuts 17 MiB in parts of its own size (16 MiB), with
		// streaming signatures.
		data := pattern(17<<20, 5)
		info, err := e.mc.PutObject(ctx, "mpb", "auto", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{PartSize: 16 << 20})
		must(t, "put", err)
		if !strings.HasSuffix(info.ETag, "-2") {
			t.Fatalf("ETag %s of a 2-part upload", info.ETag)
		}
		got, err := e.get("mpb", "auto", minio.GetObjectOptions{})
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("GET of a multipart object: %d bytes, %v", len(got), err)
		}
	})

	t.Run("upload part copy", func(t *testing.T) {
		src := pattern(3*minPart+77, 8)
		e.put("mpb", "copy-src", src, minio.PutObjectOptions{})
		id := upload("copy-dst")
		cut := int64(minPart + 10)
		c1, err := core.CopyObjectPart(ctx, "mpb", "copy-src", "mpb", "copy-dst", id, 1, 0, cut, nil)
		must(t, "copy part 1", err)
		c2, err := core.CopyObjectPart(ctx, "mpb", "copy-src", "mpb", "copy-dst", id, 2, cut, int64(len(src))-cut, nil)
		must(t, "copy part 2", err)
		c1.ETag, c2.ETag = strings.Trim(c1.ETag, `"`), strings.Trim(c2.ETag, `"`)
		if c1.ETag != md5hex(src[:cut]) || c2.ETag != md5hex(src[cut:]) {
			t.Fatalf("copied parts' ETags %s %s", c1.ETag, c2.ETag)
		}
		_, err = core.CopyObjectPart(ctx, "mpb", "nope", "mpb", "copy-dst", id, 3, 0, 10, nil)
		wantCode(t, "copy a part of a missing key", err, "NoSuchKey")
		info, err := core.CompleteMultipartUpload(ctx, "mpb", "copy-dst", id, []minio.CompletePart{c1, c2}, minio.PutObjectOptions{})
		must(t, "complete", err)
		if info.ETag != multipartETag(src[:cut], src[cut:]) {
			t.Fatalf("ETag %s", info.ETag)
		}

		got, err := e.get("mpb", "copy-dst", minio.GetObjectOptions{})
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("the object made of copied parts: %d bytes, %v", len(got), err)
		}
	})

	t.Run("abandoned uploads are swept", func(t *testing.T) {
		id := upload("abandoned")
		part("abandoned", id, 1, p3)
		// A single PUT's temporary file left by a gateway that died.
		e.writeFile("/s3/mpb/.s3-uploads/tmp-left-behind", []byte("partial"))
		n, err := e.gw.SweepUploads(ctx)
		if err != nil || n != 0 {
			t.Fatalf("sweep of fresh uploads removed %d, %v", n, err)
		}
		e.clock.advance(2 * time.Hour) // MultipartExpiry is 1h in env
		n, err = e.gw.SweepUploads(ctx)
		e.clock.advance(-2 * time.Hour)
		if err != nil || n != 2 {
			t.Fatalf("sweep of expired uploads removed %d, %v; want 2", n, err)
		}
		lu, err := core.ListMultipartUploads(ctx, "mpb", "", "", "", "", 100)
		if err != nil || len(lu.Uploads) != 0 {
			t.Fatalf("uploads after the sweep: %+v %v", lu.Uploads, err)
		}
		if _, err := e.admin.Stat(ctx, "/s3/mpb/.s3-uploads/tmp-left-behind"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("temporary file after the sweep: %v", err)
		}
	})
}

// TestAtomicOverwrite: readers of a key being overwritten or deleted
// see one whole version or another, never a mix or a short object: an
// object of more than one read is held open by the GET, which finishes
// with the version it began with.
func TestAtomicOverwrite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	ctx := context.Background()
	must(t, "make bucket", e.mc.MakeBucket(ctx, "atomic", minio.MakeBucketOptions{}))
	const size = 9<<20 + 123 // two reads of the gateway's 8 MiB
	versions := map[string]bool{}
	var mu sync.Mutex
	v0 := pattern(size, 0)
	versions[md5hex(v0)] = true
	e.put("atomic", "k", v0, minio.PutObjectOptions{})
	done := make(chan struct{})
	var wg sync.WaitGroup
	var reads int
	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			got, err := e.get("atomic", "k", minio.GetObjectOptions{})
			if code(err) == "NoSuchKey" {
				continue // deleted between two versions
			}
			if err != nil {
				readErr = fmt.Errorf("GET during overwrites: %v", err)
				return
			}
			mu.Lock()
			ok := len(got) == size && versions[md5hex(got)]
			mu.Unlock()
			if !ok {
				readErr = fmt.Errorf("read %d bytes that are no version", len(got))
				return
			}
			reads++
		}
	}()
	for i := 1; i <= 4; i++ {
		v := pattern(size, byte(i))
		mu.Lock()
		versions[md5hex(v)] = true
		mu.Unlock()
		if i == 3 {
			must(t, "delete", e.mc.RemoveObject(ctx, "atomic", "k", minio.RemoveObjectOptions{}))
		}
		e.put("atomic", "k", v, minio.PutObjectOptions{})
	}
	close(done)
	wg.Wait()
	if readErr != nil {
		t.Fatal(readErr)
	}
	if reads == 0 {
		t.Fatal("no read completed while the key was overwritten")
	}
	// A refused PUT leaves the old object.
	r := e.do(t, "PUT", "/atomic/k", http.Header{"Content-Md5": {"1B2M2Y8AsgTpgAmY7PhCfg=="}}, []byte("short"))
	if r.StatusCode == 200 {
		t.Fatal("PUT with a wrong digest succeeded")
	}
	got, err := e.get("atomic", "k", minio.GetObjectOptions{})
	if err != nil || md5hex(got) != md5hex(pattern(size, 4)) {
		t.Fatalf("after a refused PUT: %d bytes, %v", len(got), err)
	}
}

// TestCompleteKeepAlive: a completion that outlasts KeepAlive answers
// 200 at once and sends spaces until its result, which clients still
// read (minio-go), and whose raw body is XML after the spaces.
func TestCompleteKeepAlive(t *testing.T) {
	t.Parallel()
	const minPart = 1 << 20
	e := newEnvWith(t, minPart, cluster.Config{}, func(c *s3gw.Config) { c.KeepAlive = time.Millisecond })
	ctx := context.Background()
	core := e.core()
	must(t, "make bucket", e.mc.MakeBucket(ctx, "keep", minio.MakeBucketOptions{}))
	var parts []minio.CompletePart
	var all []byte
	id, err := core.NewMultipartUpload(ctx, "keep", "k", minio.PutObjectOptions{})
	must(t, "create", err)
	for n := 1; n <= 3; n++ {
		data := pattern(minPart, byte(n))
		p, err := core.PutObjectPart(ctx, "keep", "k", id, n, bytes.NewReader(data), int64(len(data)), minio.PutObjectPartOptions{})
		must(t, "part", err)
		parts = append(parts, minio.CompletePart{PartNumber: n, ETag: p.ETag})
		all = append(all, data...)
	}
	// Raw, to see the spaces.
	var body bytes.Buffer
	body.WriteString("<CompleteMultipartUpload>")
	for _, p := range parts {
		fmt.Fprintf(&body, "<Part><PartNumber>%d</PartNumber><ETag>%q</ETag></Part>", p.PartNumber, p.ETag)
	}
	body.WriteString("</CompleteMultipartUpload>")
	r := e.do(t, "POST", "/keep/k?uploadId="+id, nil, body.Bytes())
	rest := strings.TrimLeft(strings.TrimPrefix(string(r.body), `<?xml version="1.0" encoding="UTF-8"?>`+"\n"), " ")
	if r.StatusCode != 200 || !strings.HasPrefix(rest, "<CompleteMultipartUploadResult") || !strings.Contains(string(r.body), "\n ") {
		t.Fatalf("completion: %d %q", r.StatusCode, r.body)
	}
	got, err := e.get("keep", "k", minio.GetObjectOptions{})
	if err != nil || !bytes.Equal(got, all) {
		t.Fatalf("the object: %d bytes, %v", len(got), err)
	}
	// An error found once the 200 has begun (here: the key names a
	// directory, found when the assembled file is renamed) is an
	// <Error> in its body, which minio-go reports as the error it is.
	e.put("keep", "k2/below", []byte("x"), minio.PutObjectOptions{})
	id, err = core.NewMultipartUpload(ctx, "keep", "k2", minio.PutObjectOptions{})
	must(t, "create", err)
	p, err := core.PutObjectPart(ctx, "keep", "k2", id, 1, bytes.NewReader(all), int64(len(all)), minio.PutObjectPartOptions{})
	must(t, "part", err)
	_, err = core.CompleteMultipartUpload(ctx, "keep", "k2", id, []minio.CompletePart{{PartNumber: 1, ETag: p.ETag}}, minio.PutObjectOptions{})
	if code(err) != "InvalidArgument" {
		t.Fatalf("completion onto a directory: %v", err)
	}
}

// TestPartReplacedDuringComplete: a part uploaded again between the
// completion's check of the parts and their assembly is not taken into
// an object whose ETag names the part it replaced: the completion
// fails with InvalidPart, whether its parts were to be moved (1 MiB
// parts, 1 MiB chunks) or copied (parts of no power-of-two multiple),
// and changes nothing; the client's retry with the new part's ETag
// completes with the new part's bytes.
func TestPartReplacedDuringComplete(t *testing.T) {
	t.Parallel()
	const minPart = 1 << 20
	var e *env
	var replace struct {
		sync.Mutex
		data map[string][]byte // key -> part 2's new bytes, uploaded once
	}
	replace.data = map[string][]byte{}
	e = newEnvWith(t, minPart, cluster.Config{}, func(c *s3gw.Config) {
		c.BeforeAssemble = func(bucket, key, id string) {
			replace.Lock()
			data := replace.data[key]
			delete(replace.data, key)
			replace.Unlock()
			if data == nil {
				return
			}
			if _, err := e.core().PutObjectPart(context.Background(), bucket, key, id, 2, bytes.NewReader(data), int64(len(data)), minio.PutObjectPartOptions{}); err != nil {
				t.Errorf("replacing part 2 of %s: %v", key, err)
			}
		}
	})
	ctx := context.Background()
	core := e.core()
	must(t, "make bucket", e.mc.MakeBucket(ctx, "rpl", minio.MakeBucketOptions{}))
	for _, c := range []struct {
		name string
		size int // of parts 1 and 2
	}{{"moved", minPart}, {"copied", minPart + 4096}} {
		key := "obj-" + c.name
		id, err := core.NewMultipartUpload(ctx, "rpl", key, minio.PutObjectOptions{})
		must(t, "create upload", err)
		q1, q2, q3, q2new := pattern(c.size, 1), pattern(c.size, 2), pattern(777, 3), pattern(c.size, 4)
		var parts []minio.CompletePart
		for n, data := range [][]byte{q1, q2, q3} {
			p, err := core.PutObjectPart(ctx, "rpl", key, id, n+1, bytes.NewReader(data), int64(len(data)), minio.PutObjectPartOptions{})
			must(t, "upload part", err)
			parts = append(parts, minio.CompletePart{PartNumber: n + 1, ETag: p.ETag})
		}
		replace.Lock()
		replace.data[key] = q2new
		replace.Unlock()
		_, err = core.CompleteMultipartUpload(ctx, "rpl", key, id, parts, minio.PutObjectOptions{})
		wantCode(t, c.name+": a completion whose part 2 was replaced meanwhile", err, "InvalidPart")
		if _, err := e.mc.StatObject(ctx, "rpl", key, minio.StatObjectOptions{}); code(err) != "NoSuchKey" {
			t.Fatalf("%s: the object after the refused completion: %v", c.name, err)
		}
		// The upload is intact: its parts are those uploaded last.
		lp, err := core.ListObjectParts(ctx, "rpl", key, id, 0, 10)
		must(t, "list parts", err)
		if len(lp.ObjectParts) != 3 || strings.Trim(lp.ObjectParts[1].ETag, `"`) != md5hex(q2new) {
			t.Fatalf("%s: the parts after the refused completion: %+v", c.name, lp.ObjectParts)
		}
		parts[1].ETag = md5hex(q2new)
		info, err := core.CompleteMultipartUpload(ctx, "rpl", key, id, parts, minio.PutObjectOptions{})
		must(t, c.name+": the retry", err)
		if info.ETag != multipartETag(q1, q2new, q3) {
			t.Fatalf("%s: ETag %s, want %s", c.name, info.ETag, multipartETag(q1, q2new, q3))
		}
		got, err := e.get("rpl", key, minio.GetObjectOptions{})
		if want := bytes.Join([][]byte{q1, q2new, q3}, nil); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: the object: %d bytes, %v", c.name, len(got), err)
		}
	}
}
