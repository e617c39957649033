// Package s3 is Catena's S3 gateway: an http.Handler that serves the
// namespace below a root directory (default /s3) with the S3 REST API,
// through the client library.
//
// # Model
//
// Buckets are the root's subdirectories; an object is the file at
// ROOT/BUCKET/KEY, a key's "/" separating directories, so an object put
// through S3 is a file for `catena cat` and the FUSE mount, and a file
// written by them is an object. Requests are path-style
// (http://HOST/BUCKET/KEY).
//
// # Invariants
//
//   - An object appears whole or not at all: a PUT, a copy or a
//     multipart completion writes a temporary file in the bucket's hidden
//     directory .s3-uploads and renames it over the key in one master
//     command, which replaces the old file atomically (store.go).
//   - A multipart completion copies at most one part's bytes when the
//     parts but the last fill chunks of one size (each part's file has
//     the largest power-of-two chunk size that divides its size, so
//     parts of any multiple of 1 MiB do): their chunks are moved into
//     the object by one master command (concat.go), which names each
//     part by its inode (a part re-uploaded meanwhile is refused);
//     other uploads are copied inside the cluster.
//   - Every request is signed (AWS Signature V4: header, presigned URL,
//     or streaming chunks each with its signature) with an access key of
//     Keys; anonymous requests are refused. A request acts as the key's
//     POSIX identity: the gateway, holding an admin certificate, sends
//     it with each master call (internal/master's MDActAs), and the
//     master checks permissions for that user. On a cluster without TLS
//     there is no identity and every request acts as root.
//   - Nothing read from a request body becomes visible before the body's
//     checks passed (length, Content-MD5, x-amz-content-sha256, chunk
//     signatures): it is only renamed into place after them.
//
// # The caller's duties
//
// Call Init once before serving, and Run in a goroutine to remove
// abandoned uploads. The Server is safe for concurrent use.
package s3
