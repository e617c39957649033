#!/usr/bin/env bash
# Mirror figures for docs/benchmarks.md ("Mirrors"):
#
#   bench/mirror.sh [OUT_DIR]     (default bench-results/mirror-<timestamp>)
#   SECONDS_PER_PHASE=30 (each phase's length, default 30)
#
# Runs BenchmarkMirror (tests/mirror/bench_test.go): two in-process
# clusters (a master and three chunkservers each, loopback, mutual TLS),
# one writer at A doing 4 KiB random writes over the first half of a
# 32 MiB volume (2 MiB chunks), first without a mirror, then with one at
# a 1 s interval. Reported: the writer's p50/p99 in both phases, the
# recovery point (age of B's checkpoint, sampled every 100 ms) p50/p99,
# bytes shipped / bytes changed (64 KiB blocks that differ between
# consecutive checkpoints, read back from A), checkpoints, fallbacks, and
# ten flush barriers (a write, then mirror.WaitApplied: catena mirror sync).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-results/mirror-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
secs=${SECONDS_PER_PHASE:-30}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/load.txt"
CATENA_MIRROR_BENCH_SECONDS=$secs go test ./tests/mirror -run '^$' -bench BenchmarkMirror -benchtime 1x -timeout 20m 2>&1 |
  grep -v '^time=' | tee "$out/bench.txt"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/load.txt"
echo "results in $out"
