#!/usr/bin/env bash
# Record appends per second, for docs/benchmarks.md: the embedded cluster
# (1 master, 3 chunkservers, replication 3), 4 KiB records appended to
# one file by 1, 8 and 32 producers (each its own File), each append
# durable on every replica, exactly once, and the size reported before it
# returns (catena bench --workloads appends).
#
#   bench/append.sh [ROUNDS] [OPS]      (defaults: 3 2000)
#
# Prints one line per run (producers, appends/s, p50 and p99 µs), then
# the median of each.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
ops=${2:-2000}
work=$(mktemp -d /tmp/catena-append.XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/catena" ./cmd/catena

for i in $(seq "$rounds"); do
  for c in 1 8 32; do
    "$work/catena" bench --embedded --workloads appends --ops "$ops" --concurrency "$c" --json >"$work/out.json" 2>"$work/err" ||
      { cat "$work/err" >&2; exit 1; }
    python3 - "$c" "$work/out.json" <<'PY'
import json, sys
c, out = sys.argv[1:]
r = json.load(open(out))["results"][0]
print(c, round(r["ops_per_s"]), round(r["p50_us"]), round(r["p99_us"]))
PY
  done
done | tee "$work/runs"
python3 - "$work/runs" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
for c in ("1", "8", "32"):
    rs = [r for r in rows if r[0] == c]
    print("median %2s producers: %5.0f appends/s, p50 %6.0f us, p99 %6.0f us" % (int(c), *(st.median(float(r[i]) for r in rs) for i in (1, 2, 3))))
PY
