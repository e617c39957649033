package s3

import (
	"bytes"
	"crypto/sha256"
	"encoding/xml"
	"hash"
	"io"
	"net/http"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// core is minio-go's lower-level API over the env's client.
func (e *env) core() minio.Core { return minio.Core{Client: e.mc} }

// do sends a request signed with the env's root key (header auth,
// UNSIGNED-PAYLOAD) and returns the answer, its body read.
func (e *env) do(t *testing.T, method, path string, h http.Header, body []byte) *response {
	t.Helper()
	return e.doAs(t, e.key.AccessKeyID, e.key.SecretAccessKey, method, path, h, body)
}

// response is an answer with its body.
type response struct {
	*http.Response
	body []byte
}

func (e *env) doAs(t *testing.T, id, secret, method, path string, h http.Header, body []byte) *response {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+e.addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if req.Header.Get("X-Amz-Content-Sha256") == "" {
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	}
	if id != "" {
		req = signer.SignV4(*req, id, secret, "", "us-east-1")
	}
	return send(t, req)
}

func send(t *testing.T, req *http.Request) *response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &response{resp, b}
}

// errCode is the S3 error code of an answer ("" when it is none).
func errCode(t *testing.T, r *response) string {
	t.Helper()
	var e struct {
		Code string `xml:"Code"`
	}
	if len(r.body) == 0 {
		return ""
	}
	if err := xml.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("answer %d with a body that is no XML: %q", r.StatusCode, r.body)
	}
	return e.Code
}

// sha256Hasher is the md5simd.Hasher minio-go's streaming signer wants.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

func hasher() sha256Hasher { return sha256Hasher{sha256.New()} }
