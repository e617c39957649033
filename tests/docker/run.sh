#!/usr/bin/env bash
# Multi-host HA test of the deployment files: the image of the root
# Dockerfile (FROM scratch, a static binary) and the cluster of
# deploy/compose.yaml (3 masters, 4 chunkservers in 3 zones, every
# connection mutual TLS with certificates from catena admin). Checks that
# a client without a certificate is refused, that a file's chains span
# distinct zones, that the leader's console and the processes' /metrics
# answer from the host, that `catena nbd` serves a volume (written and
# read back with nbdcopy); disconnects the leader's container from the
# network, checks the majority keeps serving, reconnects it, checks it
# rejoins and the data is intact. Always tears the project down. Bounded
# by `timeout 300` in .ci/run; CATENA_DOCKER_BIN runs a static binary
# built elsewhere instead of building one.
#
# A flag deploy/compose.yaml uses that the binary does not have yet
# (--http-listen, --metrics-listen, --name) is left out of a copy of the
# file, with a note, and the checks that need it are skipped.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
proj=catenaha$$
image=catena-test:$proj
work=$(mktemp -d)
compose=$root/deploy/compose.yaml
net=${proj}_catena
# The compose file's variables: this run's image and certificates, and
# every published port on a free port of the loopback address.
export CATENA_IMAGE=$image CATENA_DEPLOY_TLS=$work/tls
export CATENA_M1_CONSOLE=127.0.0.1: CATENA_M2_CONSOLE=127.0.0.1: CATENA_M3_CONSOLE=127.0.0.1: CATENA_NBD_PORT=127.0.0.1:
dc() { docker-compose -p "$proj" -f "$compose" "$@"; }
cleanup() {
  dc --profile nbd --profile tools down -v --remove-orphans >/dev/null 2>&1 || true
  docker rmi "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "tests/docker: failed at line $LINENO: $BASH_COMMAND"' ERR
fail() { echo "tests/docker: $*"; dc logs --no-color --tail 30 2>&1 | tail -150; exit 1; }

mkdir -p "$work/ctx"
if [ -n "${CATENA_DOCKER_BIN:-}" ]; then
  cp "$CATENA_DOCKER_BIN" "$work/ctx/catena"   # a static binary built elsewhere
else
  (cd "$root" && CGO_ENABLED=0 go build -o "$work/ctx/catena" ./cmd/catena)
fi
bin=$work/ctx/catena

# The cluster's CA and a certificate per process, issued by catena admin.
tls=$work/tls
"$bin" admin ca init "$tls/ca" >/dev/null
for m in m1 m2 m3; do "$bin" admin cert issue "$m" --ca "$tls/ca" --role master --out "$tls/$m" --host "$m" >/dev/null; done
for c in cs1 cs2 cs3 cs4; do "$bin" admin cert issue "$c" --ca "$tls/ca" --role chunkserver --out "$tls/$c" --host "$c" >/dev/null; done
"$bin" admin cert issue nbd --ca "$tls/ca" --role client --uid 0:0 --out "$tls/nbd" >/dev/null
"$bin" admin cert issue admin --ca "$tls/ca" --role admin --out "$tls/admin" >/dev/null

docker build -q -t "$image" -f "$root/Dockerfile" "$work/ctx" >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "docker build"; }
dc up -d m1 m2 m3 cs1 cs2 cs3 cs4
# The CLI in the tool service (the admin's credentials, every master).
cli() { dc run --rm -T --no-deps tool "$@"; }
ip() { docker inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$(dc ps -q "$1")"; }
# get URL: the page at URL if it answers 200 within 5 s (python3, which
# docker-compose runs on, rather than curl, which a machine may lack).
get() {
  python3 -c 'import sys, urllib.request as u
r = u.urlopen(sys.argv[1], timeout=5)
sys.exit(r.status != 200 or sys.stdout.write(r.read().decode()) < 0)' "$1" 2>/dev/null
}
# fetch URL PATTERN: the page at URL, once it answers 200 with a line
# matching PATTERN (30 tries).
fetch() {
  local out
  for _ in $(seq 30); do
    if out=$(get "$1") && grep -q -- "$2" <<<"$out"; then echo "$out"; return 0; fi
    sleep 1
  done
  return 1
}
leader_of() {
  local out
  out=$(cli admin master list 2>/dev/null) && awk '$2=="leader"{print $1}' <<<"$out"
}

leader=""
for _ in $(seq 60); do
  leader=$(leader_of) || true
  [ -z "$leader" ] || break
  sleep 1
done
[ -n "$leader" ] || fail "no leader"
echo "leader: $leader"

# Without credentials: refused at once, saying why.
if out=$(dc run --rm -T --no-deps -e CATENA_TLS_DIR= tool ls / 2>&1); then
  fail "a client without a certificate was served: $out"
fi
grep -q "requires mutual TLS" <<<"$out" || fail "unexpected refusal: $out"

# Every chunkserver registered, then a file of 4 chunks: each chain has
# 3 members in 3 distinct zones (cs1 and cs4 share zone a).
for _ in $(seq 60); do
  out=$(cli status --json 2>/dev/null) || true
  [ "$(grep -o '"alive": *true' <<<"$out" | wc -l)" = 4 ] && break
  sleep 1
done
[ "$(grep -o '"alive": *true' <<<"$out" | wc -l)" = 4 ] || fail "not 4 chunkservers alive: $out"
head -c 4194304 /dev/urandom >"$work/blob"
cli mkdir -p /ha
cli put --chunk-size 1MiB - /ha/blob <"$work/blob" >/dev/null
out=$(cli stat --json /ha/blob)
# A chunkserver registers the address its --listen name resolved to (or
# the name): a zone for each.
zones=""
for cz in cs1=a cs2=b cs3=c cs4=a; do zones+=" ${cz} $(ip "${cz%=*}")=${cz#*=}"; done
python3 - "$out" $zones <<'EOF' || fail "a chain without distinct zones: $out"
import json, sys
chunks = json.loads(sys.argv[1])["chunks"]
zone = dict(a.split("=") for a in sys.argv[2:])
assert len(chunks) == 4, chunks
for c in chunks:
    zones = [zone[s["addr"].rsplit(":", 1)[0]] for s in c["chain"]]
    assert len(zones) == 3 and len(set(zones)) == 3, zones
EOF
for i in 1 2 3; do cli mkdir -p /ha/d$i; done

# From the host: the leader's console, the leader's and a chunkserver's
# metrics.
port=$(dc port "$leader" 7090)
fetch "http://$port/" '<title>' >/dev/null || fail "the leader's console at http://$port/ does not answer 200"
echo "console: http://$port/ answers 200"
# (The cluster's gauges are the leader's; a stream counts once it ends,
# so the RPCs looked for are the leader's unary ones, heartbeats.)
out=$(fetch "http://$(ip "$leader"):9100/metrics" '^catena_raft_is_leader 1') || fail "the leader's /metrics has no catena_raft_is_leader 1"
for m in 'catena_chunks{state="total"}' 'catena_chunkservers{state="alive"} 4' 'catena_rpc_requests_total{' 'go_goroutines '; do
  grep -qF "$m" <<<"$out" || fail "the leader's /metrics has no $m"
done
echo "metrics: the leader's /metrics has catena_raft_is_leader 1, catena_chunks, catena_chunkservers, catena_rpc_requests_total"
out=$(fetch "http://$(ip cs1):9100/metrics" '^catena_chunkserver_write_bytes_total ') || fail "cs1's /metrics has no catena_chunkserver_write_bytes_total"
echo "metrics: cs1's /metrics has catena_chunkserver_ metrics"

# catena nbd: a volume, served over NBD on the published port.
cli volume create vol1 64M >/dev/null
dc --profile nbd up -d --no-deps nbd
nbdport=$(dc port nbd 10809)
if command -v nbdinfo >/dev/null && command -v nbdcopy >/dev/null; then
  ok=""
  for _ in $(seq 30); do
    if out=$(nbdinfo --list "nbd://$nbdport" 2>/dev/null) && grep -q vol1 <<<"$out"; then ok=1; break; fi
    sleep 1
  done
  [ -n "$ok" ] || fail "catena nbd does not list vol1 at nbd://$nbdport"
  # Its certificate may write the volume (root's) and read it back.
  head -c 4194304 /dev/urandom >"$work/vol"
  nbdcopy "$work/vol" "nbd://$nbdport/vol1" || fail "nbdcopy into vol1 failed"
  nbdcopy "nbd://$nbdport/vol1" "$work/vol.back" || fail "nbdcopy out of vol1 failed"
  cmp -s "$work/vol" <(head -c 4194304 "$work/vol.back") || fail "vol1 read back differs"
  echo "nbd: nbd://$nbdport lists vol1; 4 MiB written and read back"
elif [ "${CI:-}" = true ]; then
  fail "nbdinfo or nbdcopy not installed (Debian: apt-get install libnbd-bin)"
else
  echo "note: nbdinfo or nbdcopy not installed (Debian: apt-get install libnbd-bin): NBD I/O not checked"
fi
fetch "http://$(ip nbd):9100/metrics" '^catena_nbd_' >/dev/null || fail "catena nbd's /metrics has no catena_nbd_ metrics"
echo "metrics: catena nbd's /metrics has catena_nbd_ metrics"

# The leader cut off: the majority elects another and serves.
docker network disconnect "$net" "$(dc ps -q "$leader")"
ok=""
for _ in $(seq 30); do
  if cli mkdir -p /ha/after-partition >/dev/null 2>&1; then ok=1; break; fi
  sleep 1
done
[ -n "$ok" ] || fail "majority did not serve after the leader was cut off"
out=$(cli ls /ha)
grep -q after-partition <<<"$out" || fail "after-partition missing: $out"

# Back on the network: it rejoins.
docker network connect --alias "$leader" "$net" "$(dc ps -q "$leader")"
for _ in $(seq 30); do
  if out=$(cli admin master list 2>/dev/null) && grep -q "^$leader " <<<"$out"; then break; fi
  sleep 1
done
cli admin master list
now=$(leader_of) || true
# With metrics: the old leader is back in the group's term and has
# applied what the group committed while it was away.
metric() { { get "http://$(ip "$1"):9100/metrics" || true; } | awk -v m="$2" '$1==m{print $2}'; }
if [ -n "$now" ]; then
  commit=$(metric "$now" catena_raft_commit_index)
  ok=""
  for _ in $(seq 30); do
    term=$(metric "$now" catena_raft_term) applied=$(metric "$leader" catena_raft_applied_index) back=$(metric "$leader" catena_raft_term)
    if [ -n "$applied" ] && [ "$back" = "$term" ] && python3 -c "import sys; sys.exit(not float('$applied') >= float('$commit'))"; then ok=1; break; fi
    sleep 1
  done
  [ -n "$ok" ] || fail "$leader did not catch up after the reconnection (term $back, applied $applied; the group: term $term, committed $commit)"
  echo "rejoin: $leader in term $term, applied $applied >= $commit"
fi
out=$(cli ls /ha)
[ "$(grep -c '^d[0-9]' <<<"$out")" = 3 ] || fail "not 3 directories: $out"
cli get /ha/blob - >"$work/blob.back"
cmp -s "$work/blob" "$work/blob.back" || fail "/ha/blob read back differs"
if [ -n "$now" ]; then
  get "http://$(dc port "$now" 7090)/" >/dev/null || fail "the console of the leader $now does not answer 200"
fi
echo "docker HA test passed"
echo "1 passed, 0 failed"
