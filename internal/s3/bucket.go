package s3

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/catena-io/catena/client"
)

type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

type bucketEntry struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
}

type listBucketsResult struct {
	XMLName xml.Name      `xml:"ListAllMyBucketsResult"`
	NS      string        `xml:"xmlns,attr"`
	Owner   owner         `xml:"Owner"`
	Buckets []bucketEntry `xml:"Buckets>Bucket"`
}

// ownerOf is how an S3 answer names the owner uid.
func ownerOf(uid uint32) owner {
	id := strconv.FormatUint(uint64(uid), 10)
	return owner{ID: id, DisplayName: "uid " + id}
}

func (s *Server) listBuckets(rq *request) error {
	ents, err := s.c.ReadDir(rq.ctx, s.cfg.Root)
	if err != nil && !errors.Is(err, client.ErrNotFound) { // no root: no bucket yet
		return err
	}
	res := listBucketsResult{NS: s3NS, Owner: ownerOf(rq.key.UID), Buckets: []bucketEntry{}}
	for _, e := range ents {
		if !e.IsDir || strings.HasPrefix(e.Name, ".") {
			continue
		}
		res.Buckets = append(res.Buckets, bucketEntry{Name: e.Name, CreationDate: e.ModTime.UTC().Format(isoFormat)})
	}
	return writeXML(rq.w, res)
}

func (s *Server) createBucket(rq *request) error {
	// The body may name a LocationConstraint; any is accepted.
	if _, err := io.Copy(io.Discard, io.LimitReader(rq.body, 1<<20)); err != nil {
		var ae *APIError
		if errors.As(err, &ae) {
			return ae
		}
	}
	if err := s.ensureRoot(rq.ctx); err != nil {
		return err
	}
	err := s.c.Mkdir(rq.ctx, s.bucketPath(rq.bucket), 0o755)
	if errors.Is(err, client.ErrExist) {
		fi, serr := s.c.Stat(rq.ctx, s.bucketPath(rq.bucket))
		if serr == nil && fi.IsDir && fi.Uid == rq.key.UID {
			return ErrBucketAlreadyOwnedByYou
		}
		return ErrBucketAlreadyExists
	}
	if err != nil {
		return err
	}
	if _, err := s.uploads(rq.ctx, rq.bucket); err != nil {
		return err
	}
	rq.w.Header().Set("Location", "/"+rq.bucket)
	rq.w.WriteHeader(http.StatusOK)
	return nil
}

// deleteBucket removes an empty bucket, with its pending uploads.
func (s *Server) deleteBucket(rq *request) error {
	ctx := rq.ctx
	if err := s.checkBucket(ctx, rq.bucket); err != nil {
		return err
	}
	ents, err := s.c.ReadDir(ctx, s.bucketPath(rq.bucket))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name != uploadsDir {
			return ErrBucketNotEmpty
		}
	}
	if err := s.c.RemoveAll(ctx, s.uploadsPath(rq.bucket)); err != nil {
		return err
	}
	// Not recursive: an object put since the check keeps the bucket.
	if err := s.c.Remove(ctx, s.bucketPath(rq.bucket)); err != nil {
		if errors.Is(err, client.ErrNotEmpty) {
			return ErrBucketNotEmpty
		}
		if errors.Is(err, client.ErrNotFound) {
			return ErrNoSuchBucket
		}
		return err
	}
	rq.w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) headBucket(rq *request) error {
	if err := s.checkBucket(rq.ctx, rq.bucket); err != nil {
		return err
	}
	rq.w.Header().Set("x-amz-bucket-region", s.cfg.Region)
	rq.w.WriteHeader(http.StatusOK)
	return nil
}

type locationResult struct {
	XMLName xml.Name `xml:"LocationConstraint"`
	NS      string   `xml:"xmlns,attr"`
	Region  string   `xml:",chardata"`
}

func (s *Server) bucketLocation(rq *request) error {
	if err := s.checkBucket(rq.ctx, rq.bucket); err != nil {
		return err
	}
	region := s.cfg.Region
	if region == "us-east-1" {
		region = "" // as S3 answers for us-east-1
	}
	return writeXML(rq.w, locationResult{NS: s3NS, Region: region})
}

type versioningResult struct {
	XMLName xml.Name `xml:"VersioningConfiguration"`
	NS      string   `xml:"xmlns,attr"`
}

func (s *Server) bucketVersioning(rq *request) error {
	if err := s.checkBucket(rq.ctx, rq.bucket); err != nil {
		return err
	}
	return writeXML(rq.w, versioningResult{NS: s3NS})
}
