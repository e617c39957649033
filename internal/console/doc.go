// Package console is the web console a master serves over HTTP: the
// cluster's health at a glance, the masters and the leader, the
// chunkservers (state, space, load, failure domain), chunks short of
// replicas and the repairs under way, volumes and their NBD exports, the
// leader's recent events, and graphs of client throughput and latency
// over the last few minutes.
//
// Model: the caller supplies Snapshot, the cluster as its leader sees it
// (a following master fetches the leader's). Run calls it every Interval
// and derives a Sample from each: cluster-wide write and read rates and
// mean latencies from the differences of the chunkservers' cumulative
// I/O counters, chunkservers alive and dead, chunks short of replicas.
// The last History samples are kept in a ring, in this process's memory
// only: a restarted console starts with an empty history. Handler serves
// one page (HTML, script and style embedded in the binary: nothing is
// loaded from elsewhere, so it works offline) that polls /api/snapshot
// and /api/history every second and draws the graphs itself in SVG.
//
// Invariants:
//   - a counter lower than in the previous snapshot means its server
//     restarted: the difference is the new value (never negative);
//   - a chunkserver whose snapshot lacks counters (not reported yet, or
//     a new leader that has not heard from it) keeps its previous ones,
//     so the next report is measured against them, not against zero;
//   - the view served is always the last snapshot that succeeded, with
//     the latest failure's error beside it.
//
// The caller's duties: run Run (until its context ends) for the history
// to fill; serve Handler on a listener of its choice. The handler is
// read-only and does no authentication: bind it where only operators
// reach it.
package console
