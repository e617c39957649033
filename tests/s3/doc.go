// Package s3 tests Catena's S3 gateway against an in-process cluster
// with mutual TLS: minio-go (from the module proxy) for every operation
// and error code, raw signed requests for the checks a well-behaved
// client never trips, and the Debian awscli and curl for the command
// line (a missing program skips those tests with its name, and fails
// them under CI=true).
package s3
