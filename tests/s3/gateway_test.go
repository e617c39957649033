package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/catena-io/catena/client"
)

// TestGateway drives every bucket and object operation through
// minio-go, and checks that objects and files are the same data.
func TestGateway(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	ctx := context.Background()

	t.Run("buckets", func(t *testing.T) {
		// No /s3 until the first bucket: a cluster nobody uses through
		// S3 does not change.
		if _, err := e.admin.Stat(ctx, "/s3"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("/s3 before any bucket: %v", err)
		}
		if bs, err := e.mc.ListBuckets(ctx); err != nil || len(bs) != 0 {
			t.Fatalf("ListBuckets before any bucket: %v %v", bs, err)
		}
		must(t, "make bucket", e.mc.MakeBucket(ctx, "photos", minio.MakeBucketOptions{}))
		if fi, err := e.admin.Stat(ctx, "/s3"); err != nil || fi.Uid != 0 {
			t.Fatalf("/s3 after the first bucket: %+v %v", fi, err)
		}
		wantCode(t, "make it again", e.mc.MakeBucket(ctx, "photos", minio.MakeBucketOptions{}), "BucketAlreadyOwnedByYou")
		if r := e.do(t, "PUT", "/Bad_Name", nil, nil); errCode(t, r) != "InvalidBucketName" {
			t.Fatalf("bucket name Bad_Name: %d %s", r.StatusCode, r.body)
		}
		must(t, "make bucket", e.mc.MakeBucket(ctx, "docs", minio.MakeBucketOptions{}))
		ok, err := e.mc.BucketExists(ctx, "photos")
		if err != nil || !ok {
			t.Fatalf("HeadBucket photos = %v, %v", ok, err)
		}
		ok, err = e.mc.BucketExists(ctx, "nope")
		if err != nil || ok {
			t.Fatalf("HeadBucket nope = %v, %v", ok, err)
		}
		bs, err := e.mc.ListBuckets(ctx)
		must(t, "list buckets", err)
		var names []string
		for _, b := range bs {
			names = append(names, b.Name)
		}
		if !slices.Equal(names, []string{"docs", "photos"}) {
			t.Fatalf("buckets %v, want [docs photos]", names)
		}
		// A bucket is a directory of the root.
		fi, err := e.admin.Stat(ctx, "/s3/photos")
		if err != nil || !fi.IsDir {
			t.Fatalf("stat /s3/photos: %v %v", fi, err)
		}
		e.put("docs", "x", []byte("x"), minio.PutObjectOptions{})
		wantCode(t, "remove non-empty", e.mc.RemoveBucket(ctx, "docs"), "BucketNotEmpty")
		must(t, "remove object", e.mc.RemoveObject(ctx, "docs", "x", minio.RemoveObjectOptions{}))
		must(t, "remove empty bucket", e.mc.RemoveBucket(ctx, "docs"))
		wantCode(t, "remove it again", e.mc.RemoveBucket(ctx, "docs"), "NoSuchBucket")
		if _, err := e.admin.Stat(ctx, "/s3/docs"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("/s3/docs after RemoveBucket: %v", err)
		}
	})

	t.Run("put get head", func(t *testing.T) {
		data := pattern(3<<20+17, 1)
		etag := e.put("photos", "2024/summer/beach.jpg", data, minio.PutObjectOptions{
			ContentType: "image/jpeg", UserMetadata: map[string]string{"camera": "x100", "Place": "Sète"}, SendContentMd5: true})
		if etag != md5hex(data) {
			t.Fatalf("ETag %s, want MD5 %s", etag, md5hex(data))
		}
		got, err := e.get("photos", "2024/summer/beach.jpg", minio.GetObjectOptions{})
		must(t, "get", err)
		if !bytes.Equal(got, data) {
			t.Fatalf("GET returned %d bytes, not what was put", len(got))
		}
		st, err := e.mc.StatObject(ctx, "photos", "2024/summer/beach.jpg", minio.StatObjectOptions{})
		must(t, "head", err)
		if st.Size != int64(len(data)) || st.ETag != etag || st.ContentType != "image/jpeg" ||
			st.UserMetadata["Camera"] != "x100" || st.UserMetadata["Place"] != "Sète" {
			t.Fatalf("HEAD = size %d etag %s type %q meta %v", st.Size, st.ETag, st.ContentType, st.UserMetadata)
		}
		// The object is the file /s3/photos/2024/summer/beach.jpg.
		file, err := e.readFile("/s3/photos/2024/summer/beach.jpg")
		must(t, "read the file", err)
		if !bytes.Equal(file, data) {
			t.Fatal("the file does not hold the object's bytes")
		}
		// And a file written through the library is an object.
		e.writeFile("/s3/photos/2024/notes.txt", []byte("written as a file"))
		got, err = e.get("photos", "2024/notes.txt", minio.GetObjectOptions{})
		if err != nil || string(got) != "written as a file" {
			t.Fatalf("GET of a file written by the library: %q, %v", got, err)
		}
		st, err = e.mc.StatObject(ctx, "photos", "2024/notes.txt", minio.StatObjectOptions{})
		must(t, "head of a file", err)
		if !strings.HasSuffix(st.ETag, "-0") {
			t.Fatalf("ETag of a file never put through S3 = %q, want a non-MD5 ETag", st.ETag)
		}
		// Overwriting the object's file outside S3 invalidates its ETag.
		e.writeFile("/s3/photos/2024/summer/beach.jpg", []byte("changed"))
		st, err = e.mc.StatObject(ctx, "photos", "2024/summer/beach.jpg", minio.StatObjectOptions{})
		if err != nil || st.ETag == etag || st.Size != 7 || st.ContentType == "image/jpeg" {
			t.Fatalf("after the file changed: etag %s size %d type %q err %v", st.ETag, st.Size, st.ContentType, err)
		}
		_, err = e.mc.StatObject(ctx, "photos", "2024/nope", minio.StatObjectOptions{})
		wantCode(t, "head missing", err, "NoSuchKey")
		_, err = e.get("photos", "2024/nope", minio.GetObjectOptions{})
		wantCode(t, "get missing", err, "NoSuchKey")
		_, err = e.get("photos", "2024", minio.GetObjectOptions{})
		wantCode(t, "get a directory", err, "NoSuchKey")
		_, err = e.get("nobucket", "k", minio.GetObjectOptions{})
		wantCode(t, "get in a missing bucket", err, "NoSuchBucket")
		_, err = e.mc.PutObject(ctx, "nobucket", "k", bytes.NewReader(nil), 0, minio.PutObjectOptions{})
		wantCode(t, "put in a missing bucket", err, "NoSuchBucket")
		// Empty objects.
		e.put("photos", "empty", nil, minio.PutObjectOptions{})
		got, err = e.get("photos", "empty", minio.GetObjectOptions{})
		if err != nil || len(got) != 0 {
			t.Fatalf("empty object: %q %v", got, err)
		}
	})

	t.Run("ranges and conditions", func(t *testing.T) {
		data := pattern(100000, 2)
		etag := e.put("photos", "r", data, minio.PutObjectOptions{})
		for _, r := range [][2]int64{{0, 9}, {99990, 99999}, {5, 5}, {70000, 99999}} {
			o := minio.GetObjectOptions{}
			must(t, "range", o.SetRange(r[0], r[1]))
			got, err := e.get("photos", "r", o)
			must(t, "ranged get", err)
			if !bytes.Equal(got, data[r[0]:r[1]+1]) {
				t.Fatalf("range %v: %d bytes, not the object's", r, len(got))
			}
		}
		o := minio.GetObjectOptions{}
		must(t, "range", o.SetRange(0, -10)) // the last 10 bytes
		got, err := e.get("photos", "r", o)
		if err != nil || !bytes.Equal(got, data[len(data)-10:]) {
			t.Fatalf("suffix range: %d bytes, %v", len(got), err)
		}
		o = minio.GetObjectOptions{}
		must(t, "range", o.SetRange(200000, 0))
		_, err = e.get("photos", "r", o)
		wantCode(t, "range past the end", err, "InvalidRange")

		o = minio.GetObjectOptions{}
		must(t, "if-match", o.SetMatchETag(etag))
		if _, err := e.get("photos", "r", o); err != nil {
			t.Fatalf("If-Match of the ETag: %v", err)
		}
		o = minio.GetObjectOptions{}
		must(t, "if-match", o.SetMatchETag("0123"))
		_, err = e.get("photos", "r", o)
		wantCode(t, "If-Match of another ETag", err, "PreconditionFailed")
		o = minio.GetObjectOptions{}
		must(t, "unmodified since", o.SetUnmodified(time.Now().Add(-time.Hour)))
		_, err = e.get("photos", "r", o)
		wantCode(t, "If-Unmodified-Since an hour ago", err, "PreconditionFailed")
		// 304s: raw requests (minio-go turns them into errors without a code).
		for _, h := range []http.Header{
			{"If-None-Match": {`"` + etag + `"`}},
			{"If-Modified-Since": {time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}},
		} {
			resp := e.do(t, "GET", "/photos/r", h, nil)
			if resp.StatusCode != http.StatusNotModified {
				t.Fatalf("GET with %v: status %d, want 304", h, resp.StatusCode)
			}
		}
		resp := e.do(t, "GET", "/photos/r", http.Header{"If-None-Match": {`"other"`}}, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("If-None-Match of another ETag: status %d", resp.StatusCode)
		}
	})

	t.Run("content-md5", func(t *testing.T) {
		resp := e.do(t, "PUT", "/photos/md5", http.Header{"Content-Md5": {"1B2M2Y8AsgTpgAmY7PhCfg=="}}, []byte("not empty"))
		if c := errCode(t, resp); c != "BadDigest" {
			t.Fatalf("PUT with a wrong Content-MD5: %d %s", resp.StatusCode, c)
		}
		if _, err := e.admin.Stat(ctx, "/s3/photos/md5"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("an object refused for its digest exists: %v", err)
		}
		resp = e.do(t, "PUT", "/photos/md5", http.Header{"Content-Md5": {"1B2M2Y8AsgTpgAmY7PhCfg=="}}, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT with the right Content-MD5: %d", resp.StatusCode)
		}
		resp = e.do(t, "PUT", "/photos/md5", http.Header{"Content-Md5": {"bad"}}, nil)
		if c := errCode(t, resp); c != "InvalidDigest" {
			t.Fatalf("PUT with a malformed Content-MD5: %d %s", resp.StatusCode, c)
		}
	})

	t.Run("delete", func(t *testing.T) {
		e.put("photos", "del/a/b/c", []byte("c"), minio.PutObjectOptions{})
		e.put("photos", "del/a/x", []byte("x"), minio.PutObjectOptions{})
		must(t, "delete", e.mc.RemoveObject(ctx, "photos", "del/a/b/c", minio.RemoveObjectOptions{}))
		if _, err := e.admin.Stat(ctx, "/s3/photos/del/a/b"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("the emptied directory del/a/b stays: %v", err)
		}
		must(t, "delete missing", e.mc.RemoveObject(ctx, "photos", "del/nope", minio.RemoveObjectOptions{}))
		for i := range 5 {
			e.put("photos", fmt.Sprintf("del/m%d", i), []byte("m"), minio.PutObjectOptions{})
		}
		objs := make(chan minio.ObjectInfo, 10)
		for _, k := range []string{"del/m0", "del/m1", "del/m2", "del/m3", "del/a/x", "del/missing"} {
			objs <- minio.ObjectInfo{Key: k}
		}
		close(objs)
		for r := range e.mc.RemoveObjects(ctx, "photos", objs, minio.RemoveObjectsOptions{}) {
			t.Fatalf("DeleteObjects: %s: %v", r.ObjectName, r.Err)
		}
		keys := e.list(t, "photos", minio.ListObjectsOptions{Prefix: "del/", Recursive: true})
		if !slices.Equal(keys, []string{"del/m4"}) {
			t.Fatalf("after DeleteObjects: %v", keys)
		}
		if _, err := e.admin.Stat(ctx, "/s3/photos/del/a"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("the emptied directory del/a stays: %v", err)
		}
	})

	t.Run("copy is a clone", func(t *testing.T) {
		data := pattern(5<<20, 3)
		etag := e.put("photos", "orig", data, minio.PutObjectOptions{ContentType: "text/x-orig", UserMetadata: map[string]string{"k": "v"}})
		_, err := e.mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "photos", Object: "copies/one"}, minio.CopySrcOptions{Bucket: "photos", Object: "orig"})
		must(t, "copy", err)
		st, err := e.mc.StatObject(ctx, "photos", "copies/one", minio.StatObjectOptions{})
		if err != nil || st.ETag != etag || st.ContentType != "text/x-orig" || st.UserMetadata["K"] != "v" {
			t.Fatalf("copy: etag %s type %q meta %v err %v", st.ETag, st.ContentType, st.UserMetadata, err)
		}
		// No data moved: the copy names the original's chunks.
		_, a, err := e.admin.StatChunks(ctx, "/s3/photos/orig")
		must(t, "chunks", err)
		_, b, err := e.admin.StatChunks(ctx, "/s3/photos/copies/one")
		must(t, "chunks", err)
		if len(a) == 0 || len(a) != len(b) || a[0].Handle != b[0].Handle {
			t.Fatalf("copy does not share the original's chunks: %v vs %v", a, b)
		}
		// Replacing metadata, and writing the copy leaves the original.
		_, err = e.mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "photos", Object: "copies/two", ReplaceMetadata: true, UserMetadata: map[string]string{"k": "w"}},
			minio.CopySrcOptions{Bucket: "photos", Object: "orig"})
		must(t, "copy replacing metadata", err)
		st, err = e.mc.StatObject(ctx, "photos", "copies/two", minio.StatObjectOptions{})
		if err != nil || st.UserMetadata["K"] != "w" {
			t.Fatalf("copy with REPLACE: meta %v err %v", st.UserMetadata, err)
		}
		e.put("photos", "copies/one", []byte("overwritten"), minio.PutObjectOptions{})
		got, err := e.get("photos", "orig", minio.GetObjectOptions{})
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("original after its copy changed: %d bytes, %v", len(got), err)
		}
		_, err = e.mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "photos", Object: "c3"}, minio.CopySrcOptions{Bucket: "photos", Object: "nope"})
		wantCode(t, "copy of a missing key", err, "NoSuchKey")
		_, err = e.mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "photos", Object: "c3"}, minio.CopySrcOptions{Bucket: "photos", Object: "orig", MatchETag: "0000"})
		wantCode(t, "copy with a failed precondition", err, "PreconditionFailed")
	})

	t.Run("snapshots", func(t *testing.T) {
		e.put("photos", "snap/k", []byte("before"), minio.PutObjectOptions{})
		_, err := e.admin.Snapshot(ctx, "/s3/photos", "nightly")
		must(t, "snapshot", err)
		e.put("photos", "snap/k", []byte("after"), minio.PutObjectOptions{})
		got, err := e.get("photos", ".snapshot/nightly/snap/k", minio.GetObjectOptions{})
		if err != nil || string(got) != "before" {
			t.Fatalf("GET through the snapshot: %q %v", got, err)
		}
		_, err = e.mc.PutObject(ctx, "photos", ".snapshot/nightly/snap/k", bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{})
		wantCode(t, "PUT into a snapshot", err, "AccessDenied")
		for _, k := range e.list(t, "photos", minio.ListObjectsOptions{Recursive: true}) {
			if strings.Contains(k, ".snapshot") || strings.Contains(k, ".s3-uploads") {
				t.Fatalf("listing shows %s", k)
			}
		}
		must(t, "remove snapshot", e.admin.RemoveSnapshot(ctx, "/s3/photos", "nightly"))
	})

	t.Run("conflicts", func(t *testing.T) {
		e.put("photos", "conf/file", []byte("f"), minio.PutObjectOptions{})
		_, err := e.mc.PutObject(ctx, "photos", "conf/file/below", bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{})
		wantCode(t, "a key below an object", err, "InvalidArgument")
		_, err = e.mc.PutObject(ctx, "photos", "conf", bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{})
		wantCode(t, "a key naming a prefix", err, "InvalidArgument")
		_, err = e.mc.PutObject(ctx, "photos", "a//b", bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{})
		wantCode(t, "an empty segment", err, "InvalidArgument")
	})
}

// list lists keys (and common prefixes) through minio-go.
func (e *env) list(t *testing.T, bucket string, o minio.ListObjectsOptions) []string {
	t.Helper()
	var out []string
	for oi := range e.mc.ListObjects(context.Background(), bucket, o) {
		if oi.Err != nil {
			t.Fatalf("list %s %+v: %v", bucket, o, oi.Err)
		}
		out = append(out, oi.Key)
	}
	return out
}

// TestListObjects compares ListObjectsV2 with every combination of
// prefix, delimiter, start-after and page size against a model: the
// sorted keys, rolled up at the delimiter.
func TestListObjects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	ctx := context.Background()
	must(t, "make bucket", e.mc.MakeBucket(ctx, "bkt", minio.MakeBucketOptions{}))
	keys := []string{"ab", "a-b", "a/c", "a/b/c", "a/b/d", "a/b/e/f", "a0", "b/x", "b/y/z", "c d", "z+%", "é/ü"}
	for _, k := range keys {
		e.put("bkt", k, []byte(k), minio.PutObjectOptions{})
	}
	sort.Strings(keys)
	model := func(prefix, delim, after string) []string {
		var out []string
		for _, k := range keys {
			if !strings.HasPrefix(k, prefix) {
				continue
			}
			item := k
			if delim != "" {
				if i := strings.Index(k[len(prefix):], delim); i >= 0 {
					item = k[:len(prefix)+i+len(delim)]
				}
			}
			if item <= after || len(out) > 0 && out[len(out)-1] == item {
				continue
			}
			out = append(out, item)
		}
		return out
	}
	for _, prefix := range []string{"", "a", "a/", "a/b", "a/b/", "b/y/", "nope", "é"} {
		for _, delim := range []string{"", "/", "bkt"} {
			for _, after := range []string{"", "a/b/d", "a/", "bkt"} {
				for _, page := range []int{1, 2, 1000} {
					var got []string
					tok := ""
					for pages := 0; ; pages++ {
						if pages > 50 {
							t.Fatal("listing does not end")
						}
						res, err := e.core().ListObjectsV2("bkt", prefix, after, tok, delim, page)
						must(t, "list", err)
						for _, c := range res.Contents {
							got = append(got, c.Key)
						}
						for _, p := range res.CommonPrefixes {
							got = append(got, p.Prefix)
						}
						if len(res.Contents)+len(res.CommonPrefixes) > page {
							t.Fatalf("page of %d items, max-keys %d", len(res.Contents)+len(res.CommonPrefixes), page)
						}
						if !res.IsTruncated {
							break
						}
						tok = res.NextContinuationToken
					}
					// Within a page contents and prefixes come apart: sort.
					sort.Strings(got)
					if want := model(prefix, delim, after); !slices.Equal(got, want) {
						t.Fatalf("prefix %q delimiter %q start-after %q max-keys %d:\n got %q\nwant %q", prefix, delim, after, page, got, want)
					}
				}
			}
		}
	}
	// ListObjects v1 and the owner and sizes of entries.
	for oi := range e.mc.ListObjects(ctx, "bkt", minio.ListObjectsOptions{Prefix: "a/b/", Recursive: true, UseV1: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		if oi.Size != int64(len(oi.Key)) || oi.ETag != md5hex([]byte(oi.Key)) {
			t.Fatalf("v1 entry %s: size %d etag %s", oi.Key, oi.Size, oi.ETag)
		}
	}
	_, err := e.core().ListObjectsV2("nope", "", "", "", "", 10)
	wantCode(t, "list a missing bucket", err, "NoSuchBucket")
}
