// Package mirror tests catena mirror end to end: two clusters on this
// machine, writes at A while the mirror runs, B's volume read at sampled
// moments and compared with every checkpoint A took (each must equal
// exactly one), the mirror process killed with SIGKILL and restarted,
// and the bytes shipped against the bytes changed.
package mirror
