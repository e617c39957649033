//go:build invariants

package invariants

// Enabled: this binary asserts invariants (built with -tags invariants).
const Enabled = true
