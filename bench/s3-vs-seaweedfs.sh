#!/usr/bin/env bash
# S3 PUT and GET of 4 KiB and 16 MiB objects at 16 clients, Catena's
# gateway beside SeaweedFS's, same machine, same run, for
# docs/benchmarks.md ("S3 gateway"):
#
#   bench/s3-vs-seaweedfs.sh [OUT_DIR]   (default bench-results/s3-<timestamp>)
#   WEED=/path/to/weed (default: weed on PATH, else built from the module proxy)
#   SMALL=2000 LARGE=64 (objects per size), CLIENTS=16
#
# Both as real processes on loopback, data under one temp dir on this
# machine's disk, three copies of every object:
#   Catena: `catena master`, three `catena chunkserver`, `catena s3`
#     (replication 3, every write durable on all three before its answer).
#   SeaweedFS: `weed master -defaultReplication 002`, three `weed volume`,
#     `weed filer`, `weed s3` (three copies on three servers; as shipped,
#     its writes are not fsynced before the answer).
# The load is bench/s3load (minio-go): each size's PUTs, then its GETs in
# another order. Prints a table and leaves the JSON lines in OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-results/s3-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
small=${SMALL:-2000}
large=${LARGE:-64}
clients=${CLIENTS:-16}

source bench/lib.sh
start_cluster catena-s3bench
weed=${WEED:-$(command -v weed || true)}
if [ -z "$weed" ]; then
  echo "building SeaweedFS from the module proxy..." >&2
  dir=$(go mod download -json github.com/seaweedfs/seaweedfs@v0.0.0-20261109003541-7506e5f91cd6 | jq -r .Dir)
  (cd "$dir" && go build -o "$work/weed" ./weed)
  weed=$work/weed
fi
go build -o "$work/s3load" ./bench/s3load

# await_http ADDR: until something answers HTTP there.
await_http() {
  local deadline=$((SECONDS + 120))
  until curl -s -o /dev/null "http://$1/"; do
    [ $SECONDS -ge $deadline ] && { echo "nothing answers on $1" >&2; exit 1; }
    sleep 0.2
  done
}

# Catena (started above).
cs3=127.0.0.1:$((port + 7)) # the master takes the next ports (Raft)
key=$("$bin" admin s3 key create --master "$master" bench --json)
cid=$(jq -r .access_key_id <<<"$key")
csecret=$(jq -r .secret_access_key <<<"$key")
"$bin" s3 --master "$master" --listen "$cs3" >"$work/catena-s3.log" 2>&1 &
pids+=($!)
await_http "$cs3"

# SeaweedFS (gRPC ports are the HTTP ports + 10000).
wport=$((41000 + RANDOM % 8000)) # away from the Catena ports (bench/lib.sh)
wmaster=127.0.0.1:$wport
wfiler=127.0.0.1:$((wport + 5))
ws3=127.0.0.1:$((wport + 6))
mkdir -p "$work/wm" "$work/wf"
"$weed" master -ip 127.0.0.1 -port "$wport" -mdir "$work/wm" -defaultReplication 002 -volumeSizeLimitMB 1024 >"$work/weed-master.log" 2>&1 &
pids+=($!)
for i in 1 2 3; do
  mkdir -p "$work/wv$i"
  "$weed" volume -ip 127.0.0.1 -port $((wport + i)) -dir "$work/wv$i" -max 32 -mserver "$wmaster" >"$work/weed-volume$i.log" 2>&1 &
  pids+=($!)
done
"$weed" filer -ip 127.0.0.1 -port $((wport + 5)) -master "$wmaster" -defaultStoreDir "$work/wf" >"$work/weed-filer.log" 2>&1 &
pids+=($!)
cat >"$work/s3.json" <<JSON
{"identities": [{"name": "bench", "credentials": [{"accessKey": "benchaccess", "secretKey": "benchsecretbenchsecret"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
"$weed" s3 -ip.bind 127.0.0.1 -port $((wport + 6)) -filer "$wfiler" -config "$work/s3.json" >"$work/weed-s3.log" 2>&1 &
pids+=($!)
await_http "$ws3"

load() { # LABEL ENDPOINT ID SECRET SIZE OBJECTS
  local try
  for try in 1 2 3 4 5 6 7 8 9 10; do # SeaweedFS grows its first volumes on the first writes
    if "$work/s3load" -label "$1" -endpoint "$2" -access "$3" -secret "$4" -bucket bench -size "$5" -objects "$6" -clients "$clients" >>"$out/results.jsonl" 2>"$work/s3load.err"; then
      return 0
    fi
    echo "$1: $(cat "$work/s3load.err"); retrying" >&2
    sleep 1
  done
  return 1
}
echo "measuring: $small x 4 KiB and $large x 16 MiB objects, $clients clients, each gateway..." >&2
load warmup-catena "$cs3" "$cid" "$csecret" 4096 200
load warmup-seaweedfs "$ws3" benchaccess benchsecretbenchsecret 4096 200
for size in 4096 16777216; do
  n=$small
  [ $size -gt 4096 ] && n=$large
  load "catena" "$cs3" "$cid" "$csecret" $size $n
  load "seaweedfs" "$ws3" benchaccess benchsecretbenchsecret $size $n
done

echo
echo "| object size | operation | Catena ops/s (MiB/s) | SeaweedFS ops/s (MiB/s) | Catena / SeaweedFS | Catena p50 / p99 | SeaweedFS p50 / p99 |"
echo "|---|---|---|---|---|---|---|"
for size in 4096 16777216; do
  for op in put get; do
    c=$(jq -c --argjson s $size --arg op $op 'select(.label == "catena" and .size == $s) | .[$op]' "$out/results.jsonl")
    w=$(jq -c --argjson s $size --arg op $op 'select(.label == "seaweedfs" and .size == $s) | .[$op]' "$out/results.jsonl")
    ratio=$(jq -n --argjson c "$c" --argjson w "$w" '($c.ops_per_s / $w.ops_per_s * 100 | floor) / 100')
    printf '| %s | %s | %.0f (%.1f) | %.0f (%.1f) | %sx | %s / %s ms | %s / %s ms |\n' \
      "$([ $size = 4096 ] && echo "4 KiB" || echo "16 MiB")" "$op" \
      "$(jq .ops_per_s <<<"$c")" "$(jq .mib_per_s <<<"$c")" "$(jq .ops_per_s <<<"$w")" "$(jq .mib_per_s <<<"$w")" "$ratio" \
      "$(jq '.p50_us/1000' <<<"$c")" "$(jq '.p99_us/1000' <<<"$c")" "$(jq '.p50_us/1000' <<<"$w")" "$(jq '.p99_us/1000' <<<"$w")"
  done
done
