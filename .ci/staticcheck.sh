#!/usr/bin/env bash
# staticcheck (pinned), with and without the invariants build tag (which
# compiles internal/invariants/on.go instead of off.go). Any finding fails,
# except those listed in .ci/staticcheck-pending: findings in packages
# being changed on another branch, each with the reason it waits (matched
# by file and message, not by line, so edits around them do not matter).
# A listed finding that no longer occurs fails too, so the list only
# shrinks.
set -euo pipefail
cd "$(dirname "$0")/.."

version=v0.8.2
sc="$(go env GOPATH)/bin/staticcheck"
if ! "$sc" -version 2>/dev/null | grep -q "$version"; then
  go install "honnef.co/go/tools/cmd/staticcheck@$version"
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
# staticcheck exits 1 on findings; they are judged below.
# "file:line:col: message" -> "file: message"
unplace() { sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /'; }
{ "$sc" ./... || true; "$sc" -tags invariants ./... || true; } | sort -u >"$out"

pending=$(grep -v '^#' .ci/staticcheck-pending | grep -v '^$' | unplace || true)
fail=0
while IFS= read -r line; do
  [ -n "$line" ] || continue
  if ! grep -qxF "$(unplace <<<"$line")" <<<"$pending"; then
    echo "staticcheck: $line"; fail=1
  fi
done <"$out"
while IFS= read -r line; do
  [ -n "$line" ] || continue
  if ! unplace <"$out" | grep -qxF "$line"; then
    echo "staticcheck: fixed, remove it from .ci/staticcheck-pending: $line"; fail=1
  fi
done <<<"$pending"
[ "$fail" = 0 ] || exit 1
echo "staticcheck $version: ok ($(grep -c . <<<"$pending" || true) pending in other branches' packages)"
