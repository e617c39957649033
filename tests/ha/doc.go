// Package ha holds the in-process tests of a highly available master
// group (three Raft voters): leader kills during a storm of namespace
// operations, a partitioned leader, a restart of every master, rolling
// restarts under load. They run against internal/cluster with Masters: 3.
//
// Invariants checked: every acknowledged operation is in the namespace
// exactly once after failovers (request ids make retries idempotent); a
// leader cut off from the majority stops serving within its lease; the
// namespace is the same after every master restarted.
package ha
