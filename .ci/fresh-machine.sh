#!/usr/bin/env bash
# The README's test command on a machine without the external programs the
# suites drive: with nbdinfo, qemu-img, fio, fusermount3, sqlite3 and their
# kin hidden from PATH, and CI unset, `go test` of the suites that need
# them must pass, each test skipped with one line naming its package and
# what to install (internal/testtools). Under CI=true the same absence is a
# failure, so CI itself never passes by skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

hidden=(nbdinfo nbdcopy qemu-img qemu-io fio fusermount3 fusermount sqlite3 setfacl getfacl prometheus chromium)
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
# Every program on PATH but the hidden ones, first found first.
IFS=: read -r -a dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  [ -d "$d" ] || continue
  for f in "$d"/*; do
    name=$(basename "$f")
    [ -x "$f" ] && [ ! -e "$bin/$name" ] || continue
    for h in "${hidden[@]}"; do [ "$name" = "$h" ] && continue 2; done
    ln -s "$f" "$bin/$name"
  done
done
for h in "${hidden[@]}"; do
  if PATH="$bin" command -v "$h" >/dev/null; then echo "fresh-machine: $h still visible"; exit 1; fi
done

out=$(mktemp)
if ! env -u CI PATH="$bin" go test -count=1 -v -timeout 10m ./tests/nbd ./tests/fuse ./internal/fusefs ./tests/metrics ./tests/console >"$out" 2>&1; then
  grep -E '^(--- FAIL|FAIL|ok)|_test.go' "$out" | head -40
  echo "fresh-machine: the suites fail without their programs"; exit 1
fi
fail=0
for pkg in tests/nbd tests/fuse internal/fusefs tests/metrics tests/console; do
  skips=$(grep -c "$pkg: skipped: " "$out" || true)
  echo "fresh-machine: $pkg: $skips tests skipped with a named reason"
  [ "$skips" -gt 0 ] || fail=1
done
# Every skip says why, on the line before it: the package and what is
# missing, or that the test is only a helper process of another.
bad=$(awk '/^ *--- SKIP/ { if (prev !~ /(tests\/nbd|tests\/fuse|internal\/fusefs|tests\/metrics|tests\/console): skipped: |only as the exerciser|the child of/) print } { prev = $0 }' "$out")
if [ -n "$bad" ]; then
  echo "fresh-machine: skips without a named reason:"; echo "$bad"
  fail=1
fi
rm -f "$out"
[ "$fail" = 0 ] || exit 1
echo "fresh-machine: ok"
