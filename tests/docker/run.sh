#!/usr/bin/env bash
# Multi-host HA test: 3 masters + 4 chunkservers in containers built FROM
# scratch, every connection mutual TLS with certificates from catena admin. Writes files, disconnects the leader's container from the
# network, checks the cluster keeps serving, reconnects it, checks it
# rejoins. Always tears the project down. Bounded by `timeout` in .ci/run.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
proj=catenaha$$
dc="docker-compose -p $proj -f docker-compose.yml"
net=${proj}_catena
cleanup() { $dc down -v --remove-orphans >/dev/null 2>&1 || true; rm -rf catena tls; }
trap cleanup EXIT

(cd "$root" && CGO_ENABLED=0 go build -o tests/docker/catena ./cmd/catena)
# The cluster's CA and a certificate per process, issued by catena admin.
rm -rf tls
./catena admin ca init tls/ca >/dev/null
for m in m1 m2 m3; do ./catena admin cert issue "$m" --ca tls/ca --role master --out "tls/$m" --host "$m" >/dev/null; done
for c in cs1 cs2 cs3 cs4; do ./catena admin cert issue "$c" --ca tls/ca --role chunkserver --out "tls/$c" --host "$c" >/dev/null; done
./catena admin cert issue admin --ca tls/ca --role admin --out tls/admin >/dev/null
docker build -q -t catena-ha:test . >/dev/null
$dc up -d m1 m2 m3 cs1 cs2 cs3 cs4
cli() { $dc run --rm -T tool --master m1:7070,m2:7070,m3:7070 --tls-dir /tls/admin "$@"; }

leader=""
for _ in $(seq 60); do
  if out=$(cli admin master list 2>/dev/null) && leader=$(echo "$out" | awk '$2=="leader"{print $1}') && [ -n "$leader" ]; then break; fi
  sleep 1
done
[ -n "$leader" ] || { echo "no leader"; $dc logs --tail 50; exit 1; }
echo "leader: $leader"
# Without credentials: refused at once, saying why.
if out=$($dc run --rm -T tool --master m1:7070,m2:7070,m3:7070 ls / 2>&1); then
  echo "a client without a certificate was served: $out"; exit 1
fi
grep -q "requires mutual TLS" <<<"$out" || { echo "unexpected refusal: $out"; exit 1; }
for i in 1 2 3; do cli mkdir -p /ha/d$i; done

docker network disconnect "$net" "${proj}_${leader}_1"
ok=""
for _ in $(seq 30); do
  if cli mkdir -p /ha/after-partition >/dev/null 2>&1; then ok=1; break; fi
  sleep 1
done
[ -n "$ok" ] || { echo "majority did not serve after the leader was cut off"; exit 1; }
# Output is captured before it is searched: grep -q exits at the first
# match, and under pipefail the writer's broken pipe would fail the test.
out=$(cli ls /ha)
grep -q after-partition <<<"$out"

docker network connect --alias "$leader" "$net" "${proj}_${leader}_1"
for _ in $(seq 30); do
  if out=$(cli admin master list 2>/dev/null) && grep -q "^$leader " <<<"$out"; then break; fi
  sleep 1
done
cli admin master list
out=$(cli ls /ha)
[ "$(grep -c d <<<"$out")" = 3 ]
echo "docker HA test passed"
echo "1 passed, 0 failed"
