package s3

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"hash"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/catena-io/catena/internal/master"
)

const (
	testAK = "AKIAIOSFODNN7EXAMPLE"
	testSK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// sha256Hasher is the md5simd.Hasher minio-go's streaming signer wants.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

// onTheWire sends req through its wire form and parses it as a server
// would receive it.
func onTheWire(t *testing.T, req *http.Request) *http.Request {
	t.Helper()
	b, err := httputil.DumpRequestOut(req, true)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	return sr
}

// verify checks r's signature as the gateway does and returns the
// parsed claim.
func verify(t *testing.T, r *http.Request, secret string) (*sigRequest, bool) {
	t.Helper()
	var sr *sigRequest
	var aerr *APIError
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if h := r.Header.Get("Authorization"); h != "" {
		if sr, aerr = parseAuthHeader(h); aerr != nil {
			t.Fatalf("parseAuthHeader(%q): %v", h, aerr)
		}
		d, err := time.Parse(amzDateFormat, r.Header.Get("X-Amz-Date"))
		if err != nil {
			t.Fatal(err)
		}
		sr.AmzDate = d
	} else {
		if sr, aerr = parsePresigned(r.URL.Query()); aerr != nil {
			t.Fatalf("parsePresigned: %v", aerr)
		}
		payload = unsignedPayload
	}
	key := signingKey(secret, sr.Date, sr.Region, sr.Service)
	want := signature(key, stringToSign(sr.AmzDate, sr.scope(), canonicalRequest(r, sr.SignedHeaders, payload)))
	return sr, sigEqual(want, sr.Signature)
}

// TestAWSExampleGetObject is the example of the S3 documentation
// ("Example: GET Object", sig-v4-header-based-auth).
func TestAWSExampleGetObject(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://examplebucket.s3.amazonaws.com/test.txt", nil)
	r.Header.Set("Range", "bytes=0-9")
	r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	r.Header.Set("X-Amz-Date", "20130524T000000Z")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
	if _, ok := verify(t, r, testSK); !ok {
		t.Fatal("the documented example's signature does not verify")
	}
	if _, ok := verify(t, r, testSK+"x"); ok {
		t.Fatal("a wrong secret verifies")
	}
}

// TestSignaturesOfMinioGo checks header and presigned signatures made
// by minio-go's signer, an independent implementation, over keys that
// need encoding and a query string.
func TestSignaturesOfMinioGo(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1:9000/b/plain",
		"http://127.0.0.1:9000/b/with%20space/and+plus/%C3%A9t%C3%A9?x-id=GetObject",
		"http://127.0.0.1:9000/b?list-type=2&prefix=a%2Fb&delimiter=%2F&max-keys=3",
		"http://127.0.0.1:9000/b/k?uploads=",
	} {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("X-Amz-Meta-Spaced", "  a   b ")
		req.Header.Set("X-Amz-Content-Sha256", unsignedPayload) // as minio-go's client sets it
		signed := signer.SignV4(*req, testAK, testSK, "", "us-east-1")
		if _, ok := verify(t, onTheWire(t, signed), testSK); !ok {
			t.Errorf("%s: header signature of minio-go does not verify", u)
		}
		req, _ = http.NewRequest("GET", u, nil)
		pre := signer.PreSignV4(*req, testAK, testSK, "", "eu-west-3", 60)
		sr, ok := verify(t, onTheWire(t, pre), testSK)
		if !ok {
			t.Errorf("%s: presigned signature of minio-go does not verify", u)
		}
		if sr.Expires != time.Minute || sr.Region != "eu-west-3" {
			t.Errorf("%s: presigned claim %+v", u, sr)
		}
	}
}

// streamingBody signs a PUT of data as minio-go does and returns the
// request as received, with its chunk signer.
func streamingBody(t *testing.T, data []byte, trailer bool, unsigned bool) (*http.Request, *chunkSigner) {
	t.Helper()
	req, _ := http.NewRequest("PUT", "http://127.0.0.1:9000/b/k", bytes.NewReader(data))
	if trailer {
		req.Trailer = http.Header{"X-Amz-Checksum-Crc32c": []string{"sOO8/Q=="}}
	}
	now := time.Now().UTC()
	if unsigned {
		req.Header.Set("X-Amz-Content-Sha256", streamingUnsignedTrailer)
		req = signer.StreamingUnsignedV4(req, "", int64(len(data)), now)
		req = signer.SignV4Trailer(*req, testAK, testSK, "", "us-east-1", req.Trailer)
	} else {
		req = signer.StreamingSignV4(req, testAK, testSK, "", "us-east-1", int64(len(data)), now, sha256Hasher{sha256.New()})
	}
	sr := onTheWire(t, req)
	claim, ok := verify(t, sr, testSK)
	if !ok {
		t.Fatal("seed signature does not verify")
	}
	if unsigned {
		return sr, nil
	}
	return sr, &chunkSigner{key: signingKey(testSK, claim.Date, claim.Region, claim.Service), amzDate: claim.AmzDate, scope: claim.scope(), prev: claim.Signature}
}

func TestChunkedReaderMinioGo(t *testing.T) {
	for _, n := range []int{0, 1, 64 << 10, 64<<10 + 1, 200 << 10} {
		data := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		for _, mode := range []string{"signed", "signed-trailer", "unsigned-trailer"} {
			r, sg := streamingBody(t, data, mode != "signed", mode == "unsigned-trailer")
			got, err := io.ReadAll(newChunkedReader(r.Body, sg, mode != "signed"))
			if err != nil {
				t.Fatalf("%d bytes %s: %v", n, mode, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("%d bytes %s: decoded %d bytes, want %d", n, mode, len(got), n)
			}
		}
	}
}

// TestChunkedReaderTampered: a changed byte of data, a dropped chunk or
// a wrong key fails the body.
func TestChunkedReaderTampered(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 150<<10)
	r, sg := streamingBody(t, data, false, false)
	raw, _ := io.ReadAll(r.Body)
	i := bytes.Index(raw, []byte("xxxx"))
	bad := bytes.Clone(raw)
	bad[i+10] = 'y'
	if _, err := io.ReadAll(newChunkedReader(bytes.NewReader(bad), sg, false)); err != errChunkSignature {
		t.Errorf("changed byte: err %v, want %v", err, errChunkSignature)
	}
	_, sg = streamingBody(t, data, false, false)
	sg.key = signingKey("wrong", "20130524", "us-east-1", "s3")
	if _, err := io.ReadAll(newChunkedReader(bytes.NewReader(raw), sg, false)); err != errChunkSignature {
		t.Errorf("wrong key: err %v, want %v", err, errChunkSignature)
	}
	// Truncated inside a chunk.
	r, sg = streamingBody(t, data, false, false)
	raw, _ = io.ReadAll(r.Body)
	if _, err := io.ReadAll(newChunkedReader(bytes.NewReader(raw[:len(raw)/2]), sg, false)); err != errChunkTruncated {
		t.Errorf("truncated: err %v, want %v", err, errChunkTruncated)
	}
}

func TestParseAuthHeaderRejects(t *testing.T) {
	for _, h := range []string{
		"AWS AKID:sig",
		"AWS4-HMAC-SHA256",
		"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, Signature=abc",
		"AWS4-HMAC-SHA256 Credential=AK/2013052/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc",
		"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=abc",
		"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=x-amz-date, Signature=abc",
		"AWS4-HMAC-SHA256X Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc",
	} {
		if sr, err := parseAuthHeader(h); err == nil {
			t.Errorf("parseAuthHeader(%q) = %+v, want an error", h, sr)
		}
	}
}

func TestParseRange(t *testing.T) {
	for _, c := range []struct {
		h          string
		size       int64
		start, end int64
		ok         bool
		err        error
	}{
		{"bytes=0-9", 100, 0, 9, true, nil},
		{"bytes=90-", 100, 90, 99, true, nil},
		{"bytes=-10", 100, 90, 99, true, nil},
		{"bytes=-1000", 100, 0, 99, true, nil},
		{"bytes=50-1000", 100, 50, 99, true, nil},
		{"bytes=100-", 100, 0, 0, false, ErrInvalidRange},
		{"bytes=0-", 0, 0, 0, false, ErrInvalidRange},
		{"bytes=9-3", 100, 0, 0, false, nil},
		{"bytes=0-1,3-4", 100, 0, 0, false, nil},
		{"items=0-1", 100, 0, 0, false, nil},
	} {
		s, e, ok, err := parseRange(c.h, c.size)
		if s != c.start || e != c.end || ok != c.ok || err != c.err {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v, %v; want %d, %d, %v, %v", c.h, c.size, s, e, ok, err, c.start, c.end, c.ok, c.err)
		}
	}
}

func TestCheckKey(t *testing.T) {
	for k, ok := range map[string]bool{
		"a": true, "a/b/c": true, "dir/": true, "a b+c": true,
		"": false, "/a": false, "a//b": false, "a/./b": false, "../x": false, ".s3-uploads/x": false,
		strings.Repeat("k", 256): false, strings.Repeat("k/", 513): false,
	} {
		if err := checkKey(k); (err == nil) != ok {
			t.Errorf("checkKey(%q) = %v, want ok %v", k, err, ok)
		}
	}
}

// TestActAsWire: the gateway sends the identity under the key the
// master reads.
func TestActAsWire(t *testing.T) {
	if mdActAs != master.MDActAs {
		t.Fatalf("mdActAs %q, master reads %q", mdActAs, master.MDActAs)
	}
}
