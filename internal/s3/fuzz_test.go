package s3

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// The parsers of what a client sends, fuzzed: none may panic, hang or
// return more than it was given.

func FuzzParseAuthHeader(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
	f.Add("AWS4-HMAC-SHA256 Credential=A/20130524/r/s3/aws4_request, SignedHeaders=host, Signature=")
	f.Add("AWS4-HMAC-SHA256 ,,,=")
	f.Fuzz(func(t *testing.T, h string) {
		sr, err := parseAuthHeader(h)
		if err == nil && (sr.AccessKey == "" || len(sr.SignedHeaders) == 0) {
			t.Fatalf("accepted %q without a key or signed headers: %+v", h, sr)
		}
	})
}

func FuzzParsePresigned(f *testing.F) {
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=-1")
	f.Fuzz(func(t *testing.T, q string) {
		v, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		sr, aerr := parsePresigned(v)
		if aerr == nil && (sr.Expires < 0 || sr.Expires > maxPresignExpiry) {
			t.Fatalf("accepted expiry %v", sr.Expires)
		}
		canonicalQuery(q)
	})
}

// chunkedSeed is a valid signed body of data, with its signer.
func chunkedSeed(data [][]byte, sg chunkSigner) []byte {
	var b bytes.Buffer
	for _, d := range append(data, nil) {
		sum := sha256Sum(d)
		sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + sg.amzDate.UTC().Format(amzDateFormat) + "\n" + sg.scope + "\n" + sg.prev + "\n" + emptySHA256 + "\n" + hexString(sum)
		sig := signature(sg.key, sts)
		sg.prev = sig
		b.WriteString(hexInt(len(d)) + ";chunk-signature=" + sig + "\r\n")
		b.Write(d)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

func fuzzSigner() chunkSigner {
	return chunkSigner{key: signingKey(testSK, "20130524", "us-east-1", "s3"), amzDate: time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC),
		scope: "20130524/us-east-1/s3/aws4_request", prev: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"}
}

func FuzzChunkedReader(f *testing.F) {
	f.Add(chunkedSeed([][]byte{[]byte("hello "), []byte("world")}, fuzzSigner()), false)
	f.Add(chunkedSeed(nil, fuzzSigner()), false)
	f.Add([]byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"), true)
	f.Add([]byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\n\r\n\r\n"), true)
	f.Add([]byte("ffffffffffffffff;chunk-signature=x\r\n"), false)
	f.Fuzz(func(t *testing.T, body []byte, unsigned bool) {
		var r *chunkedReader
		if unsigned {
			r = newChunkedReader(bytes.NewReader(body), nil, true)
		} else {
			sg := fuzzSigner()
			r = newChunkedReader(bytes.NewReader(body), &sg, false)
		}
		out, err := io.ReadAll(r)
		if len(out) > len(body) {
			t.Fatalf("decoded %d bytes from %d", len(out), len(body))
		}
		if err == nil && !r.done {
			t.Fatalf("EOF before the last chunk")
		}
	})
}

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func hexString(b []byte) string { return hex.EncodeToString(b) }

func hexInt(n int) string { return strconv.FormatInt(int64(n), 16) }

func FuzzXMLBodies(f *testing.F) {
	f.Add([]byte(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"a"</ETag></Part></CompleteMultipartUpload>`))
	f.Add([]byte(`<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object></Delete>`))
	f.Add([]byte(`<Delete><Object><Key>&#x0;</Key>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c completeRequest
		if xml.Unmarshal(b, &c) == nil {
			for _, p := range c.Parts {
				_ = p.PartNumber
			}
		}
		var d deleteRequest
		if xml.Unmarshal(b, &d) == nil {
			for _, o := range d.Objects {
				checkKey(o.Key)
			}
		}
	})
}

func FuzzParseRange(f *testing.F) {
	f.Add("bytes=0-9", int64(100))
	f.Add("bytes=-5", int64(3))
	f.Add("bytes=5-", int64(0))
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return
		}
		s, e, ok, err := parseRange(h, size)
		if ok && (err != nil || s < 0 || s > e || e >= size) {
			t.Fatalf("parseRange(%q, %d) = %d, %d, %v, %v", h, size, s, e, ok, err)
		}
	})
}
