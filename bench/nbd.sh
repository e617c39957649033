#!/usr/bin/env bash
# fio through NBD, healthy and degraded, for docs/benchmarks.md ("Block
# volumes (NBD)"). Every row comes from the same run and the same setup:
#
#   bench/nbd.sh [OUT_DIR]        (default bench-results/nbd-<timestamp>)
#
# Builds the catena binary and starts real processes on loopback, data
# under a temp dir: `catena master`, three `catena chunkserver`, `catena
# nbd`. Volumes r1 (replication 1) and r3 (replication 3), 1 GiB, 64 MiB
# chunks; fio's nbd engine; each measured run is 4 s (time_based) on the
# first 256 MiB, prefilled before. "local" is fio (psync) on a file in the
# same temp dir: reads, and writes with O_DSYNC (--sync=dsync) so a write's
# latency includes its durability like an NBD write's.
# Degraded: SIGKILL one chunkserver (every chain of r3 holds all three),
# wait until the master has declared it dead and reconfigured the chains
# to the two survivors (no spare server, so no repair: the chains stay at
# two members), run a 2 s warm-up so the client has the new chains, then
# the same fio runs.
# Prints a table (latency p50/p99 of fio's completion latency, clat) and
# leaves every fio JSON in OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-results/nbd-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
runtime=${RUNTIME:-4}

work=$(mktemp -d /tmp/catena-nbd.XXXXXX)
bin=$work/catena
go build -o "$bin" ./cmd/catena
port=$((20000 + RANDOM % 20000))
master=127.0.0.1:$port
nbdaddr=127.0.0.1:$((port + 2))
pids=()
cleanup() {
  rc=$?
  if [ $rc != 0 ]; then
    echo "failed (exit $rc); last log lines:" >&2
    for l in "$work"/*.log; do echo "--- $l" >&2; tail -n 15 "$l" >&2; done
  fi
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" master --insecure --dir "$work/master" --listen "$master" >"$work/master.log" 2>&1 &
pids+=($!)
cs=()
for i in 1 2 3; do
  "$bin" chunkserver --insecure --master "$master" --dir "$work/cs$i" --listen 127.0.0.1:0 >"$work/cs$i.log" 2>&1 &
  cs+=($!)
  pids+=($!)
done

status() { "$bin" status --master "$master" --json 2>/dev/null || echo '{}'; }
# await JQ_EXPR: poll `catena status --json` until the expression is true.
await() {
  local deadline=$((SECONDS + 120))
  until [ "$(status | jq "$1" 2>/dev/null)" = true ]; do
    if [ $SECONDS -ge $deadline ]; then
      echo "timed out waiting for: $1" >&2
      status >&2
      exit 1
    fi
    sleep 0.1
  done
}
await '[.chunkservers[] | select(.alive)] | length == 3'

"$bin" volume create --master "$master" r1 1G --replication 1 >/dev/null
"$bin" volume create --master "$master" r3 1G --replication 3 >/dev/null
"$bin" nbd --master "$master" --listen "$nbdaddr" >"$work/nbd.out" 2>"$work/nbd.log" &
pids+=($!)
deadline=$((SECONDS + 60))
until grep -q "catena nbd: serving on" "$work/nbd.out"; do
  [ $SECONDS -ge $deadline ] && { echo "catena nbd did not start" >&2; exit 1; }
  sleep 0.1
done

# run NAME TARGET RW BS IODEPTH [fio args...]: one fio job, JSON to $out/NAME.json.
run() {
  local name=$1 target=$2 rw=$3 bs=$4 qd=$5
  shift 5
  local tgt
  if [ "$target" = local ]; then
    tgt=(--ioengine=psync --filename="$work/local.img")
  else
    tgt=(--ioengine=nbd --uri="nbd://$nbdaddr/$target")
  fi
  fio --name="$name" "${tgt[@]}" --rw="$rw" --bs="$bs" --iodepth="$qd" --size=256m \
    --output-format=json --output="$out/$name.json" "$@" >/dev/null
}
measure() { run "$@" --time_based --runtime="$runtime"; }
prefill() { run "$1-prefill" "$1" write 1M 4; }

lat() { # NAME read|write -> "p50 p99" in µs
  jq -r --arg d "$2" '.jobs[0][$d].clat_ns.percentile | "\((."50.000000"/1000|floor)) \((."99.000000"/1000|floor))"' "$out/$1.json"
}
mibs() { jq -r --arg d "$2" '.jobs[0][$d].bw_bytes/1048576|floor' "$out/$1.json"; }
iops() { jq -r --arg d "$2" '.jobs[0][$d].iops|floor' "$out/$1.json"; }

echo "measuring (fio ${runtime}s per run)..." >&2
prefill local
measure local-randread local randread 4k 1
measure local-randwrite local randwrite 4k 1 --sync=dsync
for v in r1 r3; do
  prefill $v
  measure $v-randread $v randread 4k 1
  measure $v-randwrite $v randwrite 4k 1
done
throughput() { # PREFIX
  measure "$1-seqwrite" r3 write 1M 4
  measure "$1-seqread" r3 read 1M 4
  measure "$1-randwrite32" r3 randwrite 4k 32
  measure "$1-randread32" r3 randread 4k 32
}
throughput r3

# Degraded: SIGKILL cs1; wait until it is dead and no repair runs.
kill -9 "${cs[0]}"
t0=$SECONDS
await '([.chunkservers[] | select(.alive)] | length == 2) and .chunks.under_replicated > 0 and .chunks.re_replicating == 0'
echo "cs1 killed; declared dead, chains reconfigured after <= $((SECONDS - t0 + 1)) s: $(status | jq -c .chunks)" >&2
run warmup r3 randrw 4k 1 --time_based --runtime=2
measure deg-randread r3 randread 4k 1
measure deg-randwrite r3 randwrite 4k 1
throughput deg
status | jq -c .chunks >"$out/status-degraded.json"

row() { # LABEL READJOB WRITEJOB
  read -r rp50 rp99 <<<"$(lat "$2" read)"
  read -r wp50 wp99 <<<"$(lat "$3" write)"
  echo "| $1 | $rp50 µs | $rp99 µs | $wp50 µs | $wp99 µs |"
}
echo
echo "| 4 KiB, iodepth 1 | read p50 | read p99 | sync write p50 | sync write p99 |"
echo "|---|---|---|---|---|"
row local local-randread local-randwrite
row "single server (replication 1)" r1-randread r1-randwrite
row "replicated (replication 3)" r3-randread r3-randwrite
row "degraded (replication 3, one replica down)" deg-randread deg-randwrite
echo
echo "| replication 3 | healthy | degraded |"
echo "|---|---|---|"
echo "| sequential write, 1 MiB, iodepth 4 | $(mibs r3-seqwrite write) MiB/s | $(mibs deg-seqwrite write) MiB/s |"
echo "| sequential read, 1 MiB, iodepth 4 | $(mibs r3-seqread read) MiB/s | $(mibs deg-seqread read) MiB/s |"
echo "| random write, 4 KiB, iodepth 32 | $(iops r3-randwrite32 write) IOPS | $(iops deg-randwrite32 write) IOPS |"
echo "| random read, 4 KiB, iodepth 32 | $(iops r3-randread32 read) IOPS | $(iops deg-randread32 read) IOPS |"
echo
echo "fio JSON in $out" >&2
