// Package bench runs Catena's end-to-end benchmarks (`catena bench`) through
// the client library and reports throughput and latency.
//
// Model: a Run executes a list of workloads one after another against an FS
// (the client library, or a fake in tests), all inside one namespace
// directory that Run creates and removes afterwards:
//
//   - seqwrite: one file of Config.Size bytes written sequentially in
//     Config.Block pieces with Concurrency writes in flight, then Sync; MB/s.
//   - seqread: the same file read back the same way; MB/s. The result notes
//     whether the page cache was warm (data just written) or cold (caches
//     dropped through Config.DropCaches first).
//   - sync4k: Ops synchronous 4 KiB writes at random 4 KiB-aligned offsets of
//     a preallocated file (every WriteAt is durable on every replica when it
//     returns); ops/s and p50/p99/max latency.
//   - creates: Files small (4 KiB) files created, written and closed by
//     Concurrency workers; files/s.
//
// Invariants: a workload's figure counts only bytes and operations that
// succeeded; any error aborts the run (a benchmark that silently drops
// failures would overstate throughput). Preparation (writing the file
// seqread or sync4k needs) is never timed.
//
// Caller's duties: give a working FS and a Dir that nothing else uses; the
// machine baselines the numbers are judged against come from
// bench/baseline.sh and BenchmarkGRPCStream, see docs/benchmarks.md.
package bench
