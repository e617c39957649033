#!/usr/bin/env bash
# Drain and rebalance rates against the disk's bandwidth, for
# docs/benchmarks.md: fio's sequential write+fdatasync on this disk, then
# BenchmarkDrain (4 chunkservers, a server in the most chains drained)
# and BenchmarkRebalance (two servers join three ~70% full), each with a
# client overwriting a file in 1 MiB durable writes throughout; real
# processes, replication 3.
#
#   bench/replicaset.sh [ROUNDS] [MOVESIZE]    (defaults: 2 805306368)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
size=${2:-805306368}
command -v fio >/dev/null || { echo "bench/replicaset.sh: needs fio (apt-get install fio)" >&2; exit 1; }
work=$(mktemp -d /tmp/catena-replicaset.XXXXXX)
trap 'rm -rf "$work"' EXIT

fio --name=seqw --filename="$work/seq" --rw=write --bs=1M --size=1g --ioengine=psync --end_fsync=1 \
  --output-format=json >"$work/fio.json"
python3 - "$work/fio.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]["write"]
print("fio sequential write+fdatasync: %.0f MB/s" % (j["bw_bytes"] / 1e6))
PY
rm -f "$work/seq"
go test -run XXX -bench 'BenchmarkDrain$|BenchmarkRebalance$' -benchtime 1x -count "$rounds" -timeout 60m \
  ./internal/bench/ -args -catena.bench.movesize "$size" | grep -E 'Benchmark|drained|rebalanced'
