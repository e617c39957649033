package s3

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/catena-io/catena/client"
)

// Listing walks the bucket's directory tree in the order of the keys it
// holds: a directory D sorts as "D/" among its siblings, so a depth-first
// walk yields keys in byte order ("a-b" < "a/c" since '-' < '/'). A
// directory none of whose keys can matter (outside the prefix, or all
// before the marker) is not read; with the delimiter "/" a directory
// below the prefix is one common prefix, not walked.

// listItem is a key or a common prefix.
type listItem struct {
	key    string
	prefix bool
	fi     client.FileInfo
}

// lister collects up to max+1 items of a listing.
type lister struct {
	s      *Server
	ctx    context.Context
	bucket string
	prefix string
	delim  string
	after  string // only items after this
	max    int
	items  []listItem
}

// full reports whether the lister has found max+1 items (enough to
// know the listing is truncated).
func (l *lister) full() bool { return len(l.items) > l.max }

// add adds an item unless it is not after the marker or repeats the last.
func (l *lister) add(it listItem) {
	if it.key <= l.after {
		return
	}
	if n := len(l.items); n > 0 && l.items[n-1].key == it.key {
		return
	}
	l.items = append(l.items, it)
}

// walk lists directory dir, whose keys begin with keyPrefix.
func (l *lister) walk(dir, keyPrefix string) error {
	ents, err := l.s.c.ReadDir(l.ctx, dir)
	if err != nil {
		if keyPrefix != "" && (errors.Is(err, client.ErrNotFound) || errors.Is(err, client.ErrNotDir)) {
			return nil // removed while listed
		}
		return err
	}
	sortKey := func(e client.FileInfo) string {
		if e.IsDir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(ents, func(i, j int) bool { return sortKey(ents[i]) < sortKey(ents[j]) })
	for _, e := range ents {
		if l.full() {
			return nil
		}
		if keyPrefix == "" && e.Name == uploadsDir {
			continue
		}
		if !e.IsDir {
			k := keyPrefix + e.Name
			if !strings.HasPrefix(k, l.prefix) {
				continue
			}
			if l.delim != "" {
				if i := strings.Index(k[len(l.prefix):], l.delim); i >= 0 {
					l.add(listItem{key: k[:len(l.prefix)+i+len(l.delim)], prefix: true})
					continue
				}
			}
			l.add(listItem{key: k, fi: e})
			continue
		}
		dk := keyPrefix + e.Name + "/"
		if !strings.HasPrefix(dk, l.prefix) && !strings.HasPrefix(l.prefix, dk) {
			continue // no key below can have the prefix
		}
		if l.after >= dk && !strings.HasPrefix(l.after, dk) {
			continue // every key below sorts before the marker
		}
		if l.delim == "/" && len(dk) > len(l.prefix) && strings.HasPrefix(dk, l.prefix) {
			if dk <= l.after {
				continue
			}
			// One common prefix, if any object is below.
			sub, err := l.s.c.ReadDir(l.ctx, path.Join(dir, e.Name))
			if err != nil && !errors.Is(err, client.ErrNotFound) {
				return err
			}
			if len(sub) > 0 {
				l.add(listItem{key: dk, prefix: true})
			}
			continue
		}
		if err := l.walk(path.Join(dir, e.Name), dk); err != nil {
			return err
		}
	}
	return nil
}

type listEntry struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
	Owner        *owner `xml:"Owner,omitempty"`
}

type commonPrefix struct {
	Prefix string `xml:"Prefix"`
}

type listResult struct {
	XMLName               xml.Name       `xml:"ListBucketResult"`
	NS                    string         `xml:"xmlns,attr"`
	Name                  string         `xml:"Name"`
	Prefix                string         `xml:"Prefix"`
	Marker                *string        `xml:"Marker,omitempty"`
	NextMarker            string         `xml:"NextMarker,omitempty"`
	StartAfter            string         `xml:"StartAfter,omitempty"`
	ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	KeyCount              *int           `xml:"KeyCount,omitempty"`
	MaxKeys               int            `xml:"MaxKeys"`
	Delimiter             string         `xml:"Delimiter,omitempty"`
	EncodingType          string         `xml:"EncodingType,omitempty"`
	IsTruncated           bool           `xml:"IsTruncated"`
	Contents              []listEntry    `xml:"Contents"`
	CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
}

// listObjects answers ListObjectsV2 (v2) or ListObjects (v1).
func (s *Server) listObjects(rq *request, v2 bool) error {
	q := rq.r.URL.Query()
	maxKeys := 1000
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return withMsg(ErrInvalidArgument, "max-keys must be a non-negative integer")
		}
		maxKeys = min(n, 1000)
	}
	enc := q.Get("encoding-type")
	if enc != "" && enc != "url" {
		return withMsg(ErrInvalidArgument, "encoding-type must be url")
	}
	l := &lister{s: s, ctx: rq.ctx, bucket: rq.bucket, prefix: q.Get("prefix"), delim: q.Get("delimiter"), max: maxKeys}
	res := listResult{NS: s3NS, Name: rq.bucket, Prefix: l.prefix, MaxKeys: maxKeys, Delimiter: l.delim, EncodingType: enc}
	if v2 {
		res.StartAfter = q.Get("start-after")
		l.after = res.StartAfter
		if tok := q.Get("continuation-token"); tok != "" {
			b, err := base64.RawURLEncoding.DecodeString(tok)
			if err != nil {
				return withMsg(ErrInvalidArgument, "The continuation token provided is incorrect")
			}
			res.ContinuationToken = tok
			l.after = max(l.after, string(b))
		}
	} else {
		m := q.Get("marker")
		res.Marker = &m
		l.after = m
	}
	if err := s.checkBucket(rq.ctx, rq.bucket); err != nil {
		return err
	}
	if maxKeys > 0 {
		if err := l.walk(s.bucketPath(rq.bucket), ""); err != nil {
			return err
		}
	}
	items := l.items
	if len(items) > maxKeys {
		items = items[:maxKeys]
		res.IsTruncated = true
		last := items[len(items)-1].key
		if v2 {
			res.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(last))
		} else {
			res.NextMarker = encodeName(last, enc)
		}
	}
	for _, it := range items {
		if it.prefix {
			res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{Prefix: encodeName(it.key, enc)})
			continue
		}
		o := s.describe(rq.ctx, &it.fi)
		e := listEntry{Key: encodeName(it.key, enc), LastModified: o.mtime.UTC().Format(isoFormat), ETag: `"` + o.etag + `"`, Size: o.size, StorageClass: "STANDARD"}
		if !v2 || q.Get("fetch-owner") == "true" {
			ow := ownerOf(it.fi.Uid)
			e.Owner = &ow
		}
		res.Contents = append(res.Contents, e)
	}
	if v2 {
		n := len(items)
		res.KeyCount = &n
	}
	res.Prefix = encodeName(res.Prefix, enc)
	res.Delimiter = encodeName(res.Delimiter, enc)
	res.StartAfter = encodeName(res.StartAfter, enc)
	return writeXML(rq.w, res)
}

// encodeName URL-encodes a key for encoding-type=url.
func encodeName(s, enc string) string {
	if enc != "url" {
		return s
	}
	return uriEncode(s, true)
}
