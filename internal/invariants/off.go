//go:build !invariants

package invariants

// Enabled: this binary does not assert invariants (no -tags invariants).
const Enabled = false
