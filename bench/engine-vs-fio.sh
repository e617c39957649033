#!/usr/bin/env bash
# The chunk engine alone beside fio on the same disk, in one run:
# 4 KiB durable writes (append into the engine vs fio's sequential write and
# in-place overwrite, each followed by fdatasync), 1 MiB sequential durable
# writes, a new replica's first write, and a first write to a block shared
# with a clone. Usage: bench/engine-vs-fio.sh [DIR] (default: a temp dir
# under /var/tmp, on the disk chunkservers would use).
set -euo pipefail
cd "$(dirname "$0")/.."
D=${1:-$(mktemp -d -p /var/tmp catena-engine-bench.XXXXXX)}
command -v fio >/dev/null || { echo "fio not installed (Debian: apt-get install fio)" >&2; exit 1; }

fiop50() { # name rw bs size [extra...]: prints p50 of write+fdatasync in µs, and MB/s
  local name=$1 rw=$2 bs=$3 size=$4; shift 4
  fio --name="$name" --filename="$D/fio-$name" --rw="$rw" --bs="$bs" --size="$size" \
      --ioengine=psync --fdatasync=1 --output-format=json "$@" 2>/dev/null |
    python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
w, s = j["write"], j["sync"]
p = lambda d: d["lat_ns"]["percentile"]["50.000000"] / 1000 if "lat_ns" in d else d["clat_ns"]["percentile"]["50.000000"] / 1000
print("%.0f µs p50 (write %.0f + fdatasync %.0f), %.0f MB/s" % (w["clat_ns"]["percentile"]["50.000000"]/1000 + p(s), w["clat_ns"]["percentile"]["50.000000"]/1000, p(s), w["bw_bytes"]/1e6))'
}

echo "== fio, $D"
echo "4k sequential write + fdatasync:  $(fiop50 seq4k write 4k 64m)"
fio --name=prep --filename="$D/fio-over4k" --rw=write --bs=1m --size=64m --end_fsync=1 >/dev/null 2>&1
echo "4k random overwrite + fdatasync:  $(fiop50 over4k randwrite 4k 64m --io_size=16m)"
echo "1M sequential write + fdatasync:  $(fiop50 seq1m write 1m 256m)"
rm -f "$D"/fio-*

echo "== engine (go test -bench, TMPDIR=$D)"
TMPDIR=$D go test -run '^$' -bench 'BenchmarkEngine' -benchtime 2000x ./internal/chunkstore |
  grep '^Benchmark'
