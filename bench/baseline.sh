#!/usr/bin/env bash
# Machine baselines for docs/benchmarks.md: what the disk and the loopback
# network can do without Catena, measured the same way Catena must do it.
#
#   bench/baseline.sh [DATA_DIR] [OUT_JSON]
#
# DATA_DIR must be on the same file system as the Catena data directory
# (default: a temp dir under /tmp, which is the same disk as /work here).
#
# 1. seqwrite-fdatasync: fio, 1 MiB sequential writes of a 1 GiB file with
#    --fdatasync=1, i.e. one fdatasync after EVERY 1 MiB write (what a replica
#    does before it acks a 1 MiB chain update), plus --end_fsync=1.
# 2. seqwrite-endfsync: same, buffered, one fsync at the end (upper bound).
# 3. sync4k: fio, 4 KiB random writes at 4 KiB-aligned offsets of a 256 MiB
#    preallocated file, --fdatasync=1, queue depth 1. Latency of one
#    write+fdatasync = write clat + fdatasync latency; fio reports them
#    separately, so we report both and their sum of medians, and also run the
#    same with O_DSYNC (--sync=dsync), whose clat is one durable write.
# 4. grpc-loopback: go test -bench BenchmarkGRPCStream ./internal/bench
#    (1 MiB messages over one real 127.0.0.1 TCP gRPC stream).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v fio >/dev/null || { echo "fio missing: apt-get install -y fio" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq missing: apt-get install -y jq" >&2; exit 1; }

dir=${1:-$(mktemp -d /tmp/catena-baseline.XXXXXX)}
out=${2:-bench-results/baseline-$(date +%Y%m%d-%H%M%S).json}
mkdir -p "$dir" "$(dirname "$out")"
trap 'rm -f "$dir"/catena-fio.*' EXIT
tmp=$(mktemp -d)

fiojson() { fio --output-format=json --directory="$dir" "$@"; }

echo "== fio seqwrite, bs=1M size=1G, fdatasync after every write (dir $dir)" >&2
fiojson --name=catena-fio.seq --rw=write --bs=1M --size=1G --ioengine=psync \
  --fdatasync=1 --end_fsync=1 >"$tmp/seq.json"
echo "== fio seqwrite, bs=1M size=1G, buffered + end_fsync" >&2
fiojson --name=catena-fio.seqb --rw=write --bs=1M --size=1G --ioengine=psync \
  --end_fsync=1 >"$tmp/seqb.json"
echo "== fio 4k randwrite + fdatasync, qd1, 20s" >&2
fiojson --name=catena-fio.4k --rw=randwrite --bs=4k --size=256M --ioengine=psync \
  --fdatasync=1 --runtime=20 --time_based --randrepeat=0 >"$tmp/4k.json"
echo "== fio 4k randwrite O_DSYNC, qd1, 20s" >&2
fiojson --name=catena-fio.4kd --rw=randwrite --bs=4k --size=256M --ioengine=psync \
  --sync=dsync --runtime=20 --time_based --randrepeat=0 >"$tmp/4kd.json"

echo "== go test -bench BenchmarkGRPCStream ./internal/bench" >&2
go test -run '^$' -bench BenchmarkGRPCStream -benchtime 3s -count 3 ./internal/bench | tee "$tmp/grpc.txt" >&2
# Median of three runs per direction, MB/s as go test prints it (10^6 bytes/s).
grpcdir() {
  awk -v d="$1" '$1 ~ "BenchmarkGRPCStream/"d { for (i=1;i<=NF;i++) if ($(i)=="MB/s") print $(i-1) }' "$tmp/grpc.txt" |
    sort -g | awk '{ v[NR]=$1 } END { if (NR) print v[int((NR+1)/2)] }'
}
grpc_c2s=$(grpcdir client-to-server)
grpc_s2c=$(grpcdir server-to-client)

jq -n \
  --slurpfile seq "$tmp/seq.json" --slurpfile seqb "$tmp/seqb.json" \
  --slurpfile k4 "$tmp/4k.json" --slurpfile k4d "$tmp/4kd.json" \
  --arg c2s "$grpc_c2s" --arg s2c "$grpc_s2c" --arg dir "$dir" --arg host "$(uname -srm), $(nproc) cores" '
  def us(x): (x // 0) / 1000;
  {
    host: $host, dir: $dir, when: (now | todate),
    seqwrite_fdatasync_MBps: ($seq[0].jobs[0].write.bw_bytes / 1e6),
    seqwrite_endfsync_MBps: ($seqb[0].jobs[0].write.bw_bytes / 1e6),
    sync4k_fdatasync: {
      iops: $k4[0].jobs[0].write.iops,
      write_clat_p50_us: us($k4[0].jobs[0].write.clat_ns.percentile["50.000000"]),
      write_clat_p99_us: us($k4[0].jobs[0].write.clat_ns.percentile["99.000000"]),
      fdatasync_p50_us: us($k4[0].jobs[0].sync.lat_ns.percentile["50.000000"]),
      fdatasync_p99_us: us($k4[0].jobs[0].sync.lat_ns.percentile["99.000000"]),
      p50_us: (us($k4[0].jobs[0].write.clat_ns.percentile["50.000000"]) + us($k4[0].jobs[0].sync.lat_ns.percentile["50.000000"])),
      p99_us: (us($k4[0].jobs[0].write.clat_ns.percentile["99.000000"]) + us($k4[0].jobs[0].sync.lat_ns.percentile["99.000000"]))
    },
    sync4k_dsync: {
      iops: $k4d[0].jobs[0].write.iops,
      p50_us: us($k4d[0].jobs[0].write.clat_ns.percentile["50.000000"]),
      p99_us: us($k4d[0].jobs[0].write.clat_ns.percentile["99.000000"])
    },
    grpc_stream_client_to_server_MBps: ($c2s | tonumber? // null),
    grpc_stream_server_to_client_MBps: ($s2c | tonumber? // null)
  }' | tee "$out"
echo "wrote $out" >&2
