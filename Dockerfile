# The catena image: one static binary on an empty file system.
#
# The binary is built outside Docker (nothing is pulled, so there is no
# golang stage) and taken from the build context:
#
#   CGO_ENABLED=0 go build -o catena ./cmd/catena && docker build -t catena .
#
# (.dockerignore sends only ./catena.) Every role runs from this image:
# `catena master`, `catena chunkserver`, `catena nbd` and the CLI
# (deploy/compose.yaml). There is no shell, no CA bundle and no time zone
# data: Catena trusts only its own cluster CA (--tls-dir, mounted at run
# time) and logs in UTC. The process runs as root inside the container;
# to run it as another user, give it a /data volume and a TLS directory
# that user owns (docker run --user UID:GID).
FROM scratch
COPY catena /catena
# Masters and chunkservers keep their state in --dir /data.
VOLUME ["/data"]
# 7070 master gRPC, 7071 master Raft, 7080 chunkserver gRPC, 7090 master
# console (--http-listen), 9100 Prometheus /metrics (--metrics-listen),
# 10809 NBD (catena nbd). Which of them a container uses is up to its
# flags.
EXPOSE 7070 7071 7080 7090 9100 10809
ENTRYPOINT ["/catena"]
CMD ["--help"]
