#!/usr/bin/env bash
# Import layering, as the README's Layout table states it. Each rule is
# checked on what a package imports directly or through other packages
# (go list -deps), in its non-test files:
#   - the protocol cores, internal/chain and internal/meta, import only the
#     standard library and internal/invariants;
#   - internal/clock and internal/invariants import only the standard
#     library;
#   - api (wire types) imports no internal package;
#   - no internal package imports cmd/;
#   - internal/chunkstore imports neither the chunkserver, the master nor
#     the client;
#   - no internal package imports tests/.
# Prints every violation, with the chain of imports that makes it, and
# exits 1 if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

mod=$(go list -m)
fail=0

# nonstd PKG: the packages outside the standard library that PKG imports,
# directly or not (PKG itself left out).
nonstd() {
  local out
  out=$(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' "$1") || return 1
  grep -vx "$1" <<<"$out" || true
}

# via PKG DEP: one import path from PKG to DEP, "PKG -> ... -> DEP".
via() {
  local pkg=$1 dep=$2 path=$2 cur=$2 next
  while [ "$cur" != "$pkg" ]; do
    # A package of PKG's dependencies (or PKG) that imports cur directly.
    next=$(go list -deps -f '{{.ImportPath}} {{join .Imports " "}}' "$pkg" |
      awk -v c="$cur" '{ for (i = 2; i <= NF; i++) if ($i == c) { print $1; exit } }')
    [ -n "$next" ] || break
    path="$next -> $path"
    cur=$next
  done
  echo "${path//$mod\//}"
}

# only RULE ALLOWED PKGS...: each package may import, outside the standard
# library, only packages matching the regular expression ALLOWED.
only() {
  local rule=$1 allowed=$2 pkgs pkg deps dep
  shift 2
  pkgs=$(go list "$@") || { fail=1; return; }
  for pkg in $pkgs; do
    deps=$(nonstd "$pkg") || { fail=1; continue; }
    for dep in $deps; do
      if ! [[ $dep =~ $allowed ]]; then
        echo "layering: ${pkg#"$mod"/} imports ${dep#"$mod"/} ($rule): $(via "$pkg" "$dep")"
        fail=1
      fi
    done
  done
}

# never RULE FORBIDDEN PKGS...: no package imports a package matching the
# regular expression FORBIDDEN.
never() {
  local rule=$1 forbidden=$2 pkgs pkg deps dep
  shift 2
  pkgs=$(go list "$@") || { fail=1; return; }
  for pkg in $pkgs; do
    deps=$(nonstd "$pkg") || { fail=1; continue; }
    for dep in $deps; do
      if [[ $dep =~ $forbidden ]]; then
        echo "layering: ${pkg#"$mod"/} imports ${dep#"$mod"/} ($rule): $(via "$pkg" "$dep")"
        fail=1
      fi
    done
  done
}

m=${mod//./\\.}
only "a protocol core imports only the standard library and internal/invariants" \
  "^$m/internal/(chain|invariants)(/|$)" ./internal/chain/...
only "a protocol core imports only the standard library and internal/invariants" \
  "^$m/internal/(meta|invariants)(/|$)" ./internal/meta/...
only "the clock imports only the standard library" "^$m/internal/clock(/|$)" ./internal/clock/...
only "invariants imports only the standard library" "^$m/internal/invariants(/|$)" ./internal/invariants/...
never "wire types import no internal package" "^$m/internal/" ./api/...
never "internal packages do not import the binary" "^$m/cmd/" ./internal/...
never "the chunk store is below the chunkserver, the master and the client" \
  "^$m/(internal/chunkserver|internal/master|client)(/|$)" ./internal/chunkstore/...
never "internal packages do not import the test suites" "^$m/tests/" ./internal/...

if [ "$fail" != 0 ]; then
  echo "layering: the imports above break the README's Layout table"
  exit 1
fi
echo "layering: ok"
