#!/usr/bin/env bash
# Resident memory of real Catena processes under sustained writes, for
# docs/benchmarks.md.
#
#   bench/memory.sh [SIZE] [FILES] [OUT_JSON]      (defaults: 2GiB 5000)
#
# Builds the catena binary, starts `catena master` and three `catena
# chunkserver` processes on loopback with data under a temp dir, then:
#   phase "traffic":   catena bench --workloads seqwrite --size SIZE
#   phase "namespace": catena bench --workloads creates --files FILES
# and reports, per process, the peak resident set (VmHWM from
# /proc/PID/status, exact) after each phase, plus VmRSS sampled every 0.2 s.
# The master should grow with the namespace phase, not the traffic phase;
# a chunkserver should stay under 128 MiB + its configured buffers.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-2GiB}
files=${2:-5000}
out=${3:-bench-results/memory-$(date +%Y%m%d-%H%M%S).json}
mkdir -p "$(dirname "$out")"

work=$(mktemp -d /tmp/catena-mem.XXXXXX)
bin=$work/catena
go build -o "$bin" ./cmd/catena
port=$((20000 + RANDOM % 20000))
master=127.0.0.1:$port
pids=()
cleanup() {
  rc=$?
  if [ $rc != 0 ]; then
    echo "failed (exit $rc); last log lines:" >&2
    for l in "$work"/*.log; do echo "--- $l" >&2; tail -n 15 "$l" >&2; done
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${sampler:-}" ] && kill "$sampler" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" master --insecure --dir "$work/master" --listen "$master" >"$work/master.log" 2>&1 &
pids+=($!)
for i in 1 2 3; do
  "$bin" chunkserver --insecure --master "$master" --dir "$work/cs$i" --listen 127.0.0.1:0 >"$work/cs$i.log" 2>&1 &
  pids+=($!)
done
names=(master cs1 cs2 cs3)

# Wait (with a deadline) until the master reports three live chunkservers.
deadline=$((SECONDS + 60))
until [ "$("$bin" status --master "$master" --json 2>/dev/null | jq '[.chunkservers[] | select(.alive)] | length' 2>/dev/null || echo 0)" = 3 ]; do
  if [ $SECONDS -ge $deadline ]; then
    echo "cluster did not come up; logs in $work" >&2
    tail -n 20 "$work"/*.log >&2
    trap - EXIT; exit 1
  fi
  sleep 0.2
done

kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
snapshot() { # phase -> JSON object {name: {rss_kib, hwm_kib}}
  local first=1
  printf '{'
  for i in "${!pids[@]}"; do
    [ $first = 1 ] || printf ','
    first=0
    printf '"%s":{"rss_kib":%s,"hwm_kib":%s}' "${names[$i]}" "$(kib "${pids[$i]}" VmRSS)" "$(kib "${pids[$i]}" VmHWM)"
  done
  printf '}'
}

# Sampler: max VmRSS per process over the whole run.
( while :; do
    line=""
    for p in "${pids[@]}"; do line+="$(kib "$p" VmRSS) "; done
    echo "$line"
    sleep 0.2
  done ) >"$work/samples.txt" 2>/dev/null &
sampler=$!

idle=$(snapshot)
echo "== phase traffic: catena bench --workloads seqwrite --size $size" >&2
"$bin" bench --master "$master" --workloads seqwrite --size "$size" --out "$work/traffic.json" >&2
traffic=$(snapshot)
echo "== phase namespace: catena bench --workloads creates --files $files" >&2
"$bin" bench --master "$master" --workloads creates --files "$files" --out "$work/namespace.json" >&2
namespace=$(snapshot)
kill "$sampler"; wait "$sampler" 2>/dev/null || true; sampler=""

maxes=$(awk '{ for (i=1;i<=NF;i++) if ($i > m[i]) m[i] = $i } END { printf "[%d,%d,%d,%d]", m[1], m[2], m[3], m[4] }' "$work/samples.txt")
jq -n --argjson idle "$idle" --argjson traffic "$traffic" --argjson namespace "$namespace" \
  --argjson maxes "$maxes" --arg size "$size" --argjson files "$files" \
  --slurpfile tr "$work/traffic.json" --slurpfile ns "$work/namespace.json" '
  { size: $size, files: $files,
    after_idle: $idle, after_traffic: $traffic, after_namespace: $namespace,
    sampled_max_rss_kib: { master: $maxes[0], cs1: $maxes[1], cs2: $maxes[2], cs3: $maxes[3] },
    max_chunkserver_hwm_mib: ([$namespace.cs1.hwm_kib, $namespace.cs2.hwm_kib, $namespace.cs3.hwm_kib] | max / 1024),
    master_hwm_mib: { idle: ($idle.master.hwm_kib / 1024), after_traffic: ($traffic.master.hwm_kib / 1024), after_namespace: ($namespace.master.hwm_kib / 1024) },
    seqwrite: $tr[0].results[0], creates: $ns[0].results[0] }' | tee "$out"
echo "wrote $out" >&2
