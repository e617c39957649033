package s3

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// AWS Signature Version 4, as S3 uses it
// (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html):
// a request is signed in the Authorization header or in the query
// string (a presigned URL), over a canonical form of the request; the
// payload is named by its SHA-256, UNSIGNED-PAYLOAD, or a streaming
// mode whose chunks carry their own signatures (chunked.go).

const (
	sigAlgorithm     = "AWS4-HMAC-SHA256"
	amzDateFormat    = "20060102T150405Z"
	scopeDateFormat  = "20060102"
	unsignedPayload  = "UNSIGNED-PAYLOAD"
	streamingPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	// streamingUnsignedTrailer: chunks without signatures, trailing
	// checksum headers (newer SDKs over TLS).
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	// streamingTrailer: signed chunks, then signed trailing headers.
	streamingTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	emptySHA256      = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	// maxSkew is how far a header-signed request's time may be from ours.
	maxSkew = 15 * time.Minute
	// maxPresignExpiry is the longest X-Amz-Expires S3 accepts (7 days).
	maxPresignExpiry = 7 * 24 * time.Hour
)

// sigRequest is what a request's signature claims, parsed from its
// Authorization header or its query string.
type sigRequest struct {
	AccessKey     string
	Date          string // the scope's day, YYYYMMDD
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string
	AmzDate       time.Time // x-amz-date / X-Amz-Date
	Presigned     bool
	Expires       time.Duration // presigned only
}

// scope is the credential scope "DATE/REGION/SERVICE/aws4_request".
func (s *sigRequest) scope() string {
	return s.Date + "/" + s.Region + "/" + s.Service + "/aws4_request"
}

// parseAuthHeader parses "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/s3/aws4_request,
// SignedHeaders=a;b, Signature=HEX".
func parseAuthHeader(h string) (*sigRequest, *APIError) {
	rest, ok := strings.CutPrefix(h, sigAlgorithm)
	if !ok || (rest != "" && rest[0] != ' ') {
		return nil, withMsg(ErrAuthorizationMalformed, "unsupported authorization scheme (only %s)", sigAlgorithm)
	}
	var s sigRequest
	var haveCred, haveSH, haveSig bool
	for _, f := range strings.Split(rest, ",") {
		f = strings.TrimSpace(f)
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, withMsg(ErrAuthorizationMalformed, "malformed field %q", f)
		}
		switch k {
		case "Credential":
			if err := s.parseCredential(v); err != nil {
				return nil, err
			}
			haveCred = true
		case "SignedHeaders":
			s.SignedHeaders = strings.Split(v, ";")
			haveSH = true
		case "Signature":
			s.Signature = v
			haveSig = true
		default:
			return nil, withMsg(ErrAuthorizationMalformed, "unknown field %q", k)
		}
	}
	if !haveCred || !haveSH || !haveSig {
		return nil, withMsg(ErrAuthorizationMalformed, "Credential, SignedHeaders and Signature are required")
	}
	if err := s.checkSignedHeaders(); err != nil {
		return nil, err
	}
	return &s, nil
}

// parseCredential parses "AK/DATE/REGION/SERVICE/aws4_request".
func (s *sigRequest) parseCredential(v string) *APIError {
	parts := strings.Split(v, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" {
		return withMsg(ErrAuthorizationMalformed, "malformed credential %q", v)
	}
	if _, err := time.Parse(scopeDateFormat, parts[1]); err != nil {
		return withMsg(ErrAuthorizationMalformed, "malformed credential date %q", parts[1])
	}
	if parts[3] != "s3" {
		return withMsg(ErrAuthorizationMalformed, "credential service %q is not s3", parts[3])
	}
	s.AccessKey, s.Date, s.Region, s.Service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

// checkSignedHeaders requires host among the signed headers, as S3 does.
func (s *sigRequest) checkSignedHeaders() *APIError {
	host := false
	for _, h := range s.SignedHeaders {
		if h == "" || h != strings.ToLower(h) {
			return withMsg(ErrAuthorizationMalformed, "malformed SignedHeaders")
		}
		if h == "host" {
			host = true
		}
	}
	if !host {
		return withMsg(ErrAuthorizationMalformed, "host must be signed")
	}
	return nil
}

// parsePresigned parses the X-Amz-* query parameters of a presigned URL.
func parsePresigned(q url.Values) (*sigRequest, *APIError) {
	if q.Get("X-Amz-Algorithm") != sigAlgorithm {
		return nil, withMsg(ErrAuthorizationQueryParams, "X-Amz-Algorithm must be %s", sigAlgorithm)
	}
	var s sigRequest
	s.Presigned = true
	if err := s.parseCredential(q.Get("X-Amz-Credential")); err != nil {
		return nil, withMsg(ErrAuthorizationQueryParams, "%s", err.Message)
	}
	d, err := time.Parse(amzDateFormat, q.Get("X-Amz-Date"))
	if err != nil {
		return nil, withMsg(ErrAuthorizationQueryParams, "malformed X-Amz-Date")
	}
	s.AmzDate = d
	secs, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil || secs < 0 || time.Duration(secs)*time.Second > maxPresignExpiry {
		return nil, withMsg(ErrAuthorizationQueryParams, "X-Amz-Expires must be between 0 and 604800 seconds")
	}
	s.Expires = time.Duration(secs) * time.Second
	s.SignedHeaders = strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	s.Signature = q.Get("X-Amz-Signature")
	if s.Signature == "" {
		return nil, withMsg(ErrAuthorizationQueryParams, "missing X-Amz-Signature")
	}
	if err := s.checkSignedHeaders(); err != nil {
		return nil, withMsg(ErrAuthorizationQueryParams, "%s", err.Message)
	}
	return &s, nil
}

// uriEncode encodes s as SigV4 requires: every byte but the unreserved
// characters A-Z a-z 0-9 - . _ ~ as %XY (upper case), and '/' too
// unless keepSlash.
func uriEncode(s string, keepSlash bool) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		case c == '/' && keepSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexd[c>>4])
			b.WriteByte(hexd[c&15])
		}
	}
	return b.String()
}

// canonicalQuery is the query's canonical form: parameters sorted by
// name then value, each encoded; X-Amz-Signature left out (presigned).
func canonicalQuery(rawQuery string) string {
	type kv struct{ k, v string }
	var kvs []kv
	for _, part := range strings.Split(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			// Signed as sent by a client that did not escape: keep
			// the raw text so that the signature can still match.
			k, v, _ = strings.Cut(part, "=")
		}
		if k == "X-Amz-Signature" {
			continue
		}
		kvs = append(kvs, kv{uriEncode(k, false), uriEncode(v, false)})
	}
	sort.Slice(kvs, func(i, j int) bool {
		if kvs[i].k != kvs[j].k {
			return kvs[i].k < kvs[j].k
		}
		return kvs[i].v < kvs[j].v
	})
	parts := make([]string, len(kvs))
	for i, p := range kvs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// canonicalHeaderValue trims v and folds runs of spaces into one.
func canonicalHeaderValue(v string) string {
	return strings.Join(strings.Fields(v), " ")
}

// canonicalRequest builds the canonical request of r over the signed
// headers, with payload hash payload.
func canonicalRequest(r *http.Request, signed []string, payload string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(uriEncode(r.URL.Path, true))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery))
	b.WriteByte('\n')
	for _, h := range signed {
		b.WriteString(h)
		b.WriteByte(':')
		switch h {
		case "host":
			b.WriteString(r.Host)
		case "content-length":
			if v := r.Header.Values("Content-Length"); len(v) > 0 {
				b.WriteString(canonicalHeaderValue(v[0]))
			} else {
				b.WriteString(strconv.FormatInt(r.ContentLength, 10))
			}
		case "transfer-encoding":
			b.WriteString(strings.Join(r.TransferEncoding, ","))
		default:
			vs := r.Header.Values(h)
			for i, v := range vs {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(canonicalHeaderValue(v))
			}
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(payload)
	return b.String()
}

// stringToSign is what the signature signs.
func stringToSign(amzDate time.Time, scope, canonical string) string {
	h := sha256.Sum256([]byte(canonical))
	return sigAlgorithm + "\n" + amzDate.UTC().Format(amzDateFormat) + "\n" + scope + "\n" + hex.EncodeToString(h[:])
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// signingKey derives the key of a day, region and service from a secret.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

// signature is the hex HMAC of sts under key.
func signature(key []byte, sts string) string {
	return hex.EncodeToString(hmacSHA256(key, sts))
}

// sigEqual compares two hex signatures in constant time.
func sigEqual(a, b string) bool {
	return hmac.Equal([]byte(a), []byte(b))
}
