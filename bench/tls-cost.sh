#!/usr/bin/env bash
# The cost of mutual TLS, for docs/benchmarks.md: the embedded cluster
# (1 master, 3 chunkservers, replication 3) with and without --tls, runs
# alternating so both see the same machine, and the CPU each run used.
#
#   bench/tls-cost.sh [ROUNDS] [SIZE] [OPS]      (defaults: 5 256MiB 1000)
#
# Prints one line per run (mode, seqwrite MB/s, sync4k p50 µs, user and
# system CPU seconds of the whole process), then the means and the
# TLS/plain ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
size=${2:-256MiB}
ops=${3:-1000}
work=$(mktemp -d /tmp/catena-tls-cost.XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/catena" ./cmd/catena

run() { # mode flags...
  local mode=$1
  shift
  /usr/bin/time -f "%U %S" -o "$work/time" "$work/catena" bench --embedded "$@" \
    --workloads seqwrite,sync4k --size "$size" --ops "$ops" --json --out "$work/r.json" >"$work/out.json" 2>"$work/err" ||
    { cat "$work/err" >&2; exit 1; }
  python3 - "$mode" "$work/out.json" "$work/time" <<'PY'
import json, sys
mode, out, tm = sys.argv[1:]
r = {x["workload"]: x for x in json.load(open(out))["results"]}
user, sys_ = open(tm).read().split()[-2:]
print(mode, round(r["seqwrite"]["mb_per_s"], 1), round(r["sync4k"]["p50_us"]), user, sys_)
PY
}

for i in $(seq "$rounds"); do
  run plain
  run tls --tls
done | tee "$work/runs"
python3 - "$work/runs" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
m = {}
for mode in ("plain", "tls"):
    rs = [r for r in rows if r[0] == mode]
    m[mode] = [st.mean(float(r[i]) for r in rs) for i in (1, 2, 3, 4)]
    print("mean", mode, "seqwrite %.1f MB/s, sync4k p50 %.0f us, cpu user %.2f s sys %.2f s" % tuple(m[mode]))
p, t = m["plain"], m["tls"]
print("tls/plain: seqwrite %.2fx, sync4k p50 %.2fx, cpu %+.2f s" % (t[0] / p[0], t[1] / p[1], (t[2] + t[3]) - (p[2] + p[3])))
PY
