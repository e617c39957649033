// Package s3 tests Catena's S3 gateway: against in-process clusters with
// mutual TLS, with minio-go (from the module proxy) for every operation
// and error code and raw signed requests for what a well-behaved client
// never sends; against real processes (catena dev, catena s3, a master
// and chunkservers, one SIGKILLed during an upload); and with Debian's
// awscli, curl and rclone. A missing program skips the test that needs
// it, naming what to install, and fails it under CI=true. The tests run
// in parallel, each with its own cluster.
package s3
