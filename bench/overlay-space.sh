#!/usr/bin/env bash
# Overlay space after fio random writes on the writer and two copiers, for
# docs/benchmarks.md ("Overlays"):
#
#   bench/overlay-space.sh [OUT_DIR]     (default bench-results/overlay-space-<timestamp>)
#   DURATION=600 (seconds of fio, default 600), SPAN=1g (the region written)
#
# Real processes on loopback, data under a temp dir: `catena master`,
# three `catena chunkserver`, `catena nbd`. Volume v (2 GiB, replication
# 3) is prefilled over SPAN; overlays a and b are attached; then three fio
# processes (nbd engine, 4 KiB random writes, iodepth 4) write SPAN of v
# (the writer), v+a and v+b (the copiers) at once for DURATION seconds.
# Reported: the bytes fio wrote, the disk (allocated blocks) the chunkservers' data
# directories grew by (du), what `catena overlay ls` counts as each
# overlay's exclusive bytes, and the disk after both overlays are
# detached (their chunks deleted).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-results/overlay-space-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
duration=${DURATION:-600}
span=${SPAN:-1g}

source bench/lib.sh
start_cluster catena-ovspace
nbdaddr=127.0.0.1:$((port + 2))
disk() { du -s -B1 "$work"/cs1 "$work"/cs2 "$work"/cs3 | awk '{s += $1} END {printf "%.0f\n", s}'; }
mib() { echo $(( $1 / 1048576 )); }

"$bin" volume create --master "$master" v 2G >/dev/null
"$bin" nbd --master "$master" --listen "$nbdaddr" >"$work/nbd.out" 2>"$work/nbd.log" &
pids+=($!)
deadline=$((SECONDS + 60))
until grep -q "catena nbd: serving on" "$work/nbd.out"; do
  [ $SECONDS -ge $deadline ] && { echo "catena nbd did not start" >&2; exit 1; }
  sleep 0.1
done
fio --name=prefill --ioengine=nbd --uri="nbd://$nbdaddr/v" --rw=write --bs=1M --iodepth=4 --size="$span" \
  --output-format=json --output="$out/prefill.json" >/dev/null
d0=$(disk)
"$bin" overlay attach --master "$master" v a --lease 1h >/dev/null
"$bin" overlay attach --master "$master" v b --lease 1h >/dev/null
echo "prefilled $span; overlays a and b attached; fio for ${duration}s on v, v+a, v+b..." >&2
fpids=()
for exp in v v+a v+b; do
  fio --name="$exp" --ioengine=nbd --uri="nbd://$nbdaddr/$exp" --rw=randwrite --bs=4k --iodepth=4 --size="$span" \
    --time_based --runtime="$duration" --randrepeat=0 --output-format=json --output="$out/$exp.json" >/dev/null &
  fpids+=($!)
done
for p in "${fpids[@]}"; do wait "$p"; done
d1=$(disk)
"$bin" overlay ls --master "$master" v --json >"$out/overlay-ls.json"
written() { jq '.jobs[0].write.io_bytes' "$out/$1.json"; }
wv=$(written v); wa=$(written v+a); wb=$(written v+b)
ea=$(jq '[.[] | select(.name == "a" or .name == "v+a")][0].exclusive_bytes' "$out/overlay-ls.json")
eb=$(jq '[.[] | select(.name == "b" or .name == "v+b")][0].exclusive_bytes' "$out/overlay-ls.json")
# Detach: the overlays' chunks are deleted; wait until the disk stops
# shrinking (deletion is asynchronous: the master's collector, then each
# chunkserver's store).
"$bin" overlay detach --master "$master" v a >/dev/null
"$bin" overlay detach --master "$master" v b >/dev/null
prev=$(disk); stable=0; deadline=$((SECONDS + 300))
while [ $stable -lt 10 ] && [ $SECONDS -lt $deadline ]; do
  sleep 1
  cur=$(disk)
  if [ "$cur" -lt "$prev" ]; then stable=0; else stable=$((stable + 1)); fi
  prev=$cur
done
d2=$(disk)
echo
echo "| what | MiB |"
echo "|---|---|"
echo "| fio wrote, writer v / copier v+a / copier v+b (4 KiB random, ${duration} s) | $(mib "$wv") / $(mib "$wa") / $(mib "$wb") |"
echo "| disk after the prefill of $span (3 replicas) | $(mib "$d0") |"
echo "| disk grew during the run (3 replicas) | $(mib $((d1 - d0))) |"
echo "| \`overlay ls\` exclusive bytes, a / b | $(mib "$ea") / $(mib "$eb") |"
echo "| disk after detaching both | $(mib "$d2") (returned $(mib $((d1 - d2)))) |"
